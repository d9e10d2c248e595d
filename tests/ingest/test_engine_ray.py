"""The Ray ingestion engine against the local one, on a real local Ray instance.

Both engines ingest the same files into separate data directories; the resulting documents,
failures and chunks must be identical, and searches must return the same documents (vectors may
differ in the last float bits between processes, so vectors are compared with a tolerance).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from assistant.config import Settings
from assistant.database import dispose_engines, session_scope
from assistant.database.models import Chunk, Document, IngestionRun, KnowledgeBase
from assistant.embeddings import get_embedder
from assistant.retrieval.vector_index import read_dense
from ingest.engines import LocalEngine, RayEngine
from ingest.pipeline import Ingestor
from tests.conftest import REPO, SHARED, require
from tests.helpers import make_helpcenter

try:
    import ray
except ImportError as error:
    ray, pytestmark = None, pytest.mark.needs(False, reason=f"ray is not importable: {error}")

QUERIES = ["How much is express delivery?", "How long is the return window?", "Can I pay with bitcoin?",
           "How many extra years of warranty do tents get?", "When is the Munich store open?"]


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray instance with 2 CPUs (this machine's), shut down after the module."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False,
                 object_store_memory=300 * 1024 * 1024)
    yield
    if started:
        ray.shutdown()


@pytest.fixture
def two_dirs(tmp_path, monkeypatch):
    """Settings for two fresh SQLite data directories: one per engine.

    Both embed in float32. The engines are compared to 1e-4, and bfloat16's rounding (the default where the
    CPU has it) depends on how texts are batched, which is what differs between Ray's slices and one local
    batch: up to 7e-4 in a vector element and 0.005 in a sentiment score (2026-11-30), far below what moves
    a search or a label, and above what would show a real difference between the engines."""
    monkeypatch.delenv("HELPMATE_DATABASE_URL", raising=False)
    monkeypatch.setenv("HELPMATE_EMBEDDING_BACKEND", "torch")  # Ray's workers read their settings from it too
    yield Settings(data_dir=tmp_path / "local"), Settings(data_dir=tmp_path / "ray")
    dispose_engines()


@pytest.fixture(scope="module")
def embedder():
    """The packaged embedding model in float32 (``two_dirs``: why)."""
    return get_embedder(Settings(data_dir=Path("/tmp"), embedding_backend="torch"))


def _state(settings: Settings, kb: str) -> dict:
    """Everything an ingestion leaves behind, in a comparable form (database ids left out)."""
    with session_scope(settings) as session:
        row = session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == kb))
        docs = sorted((d.source, d.status, d.error, d.content_hash, d.file_hash, d.chunk_count, d.format, d.title)
                      for d in session.scalars(select(Document).where(Document.kb_id == row.id)))
        chunks = session.execute(select(Document.source, Chunk.ordinal, Chunk.text, Chunk.title, Chunk.section, Chunk.page,
                                        Chunk.token_count, Chunk.id).join(Document, Chunk.document_id == Document.id)
                                 .where(Chunk.kb_id == row.id)).all()
        runs = [(r.status, r.documents_added, r.documents_updated, r.documents_unchanged, r.documents_failed,
                 r.documents_pruned, r.chunks_added, r.chunks_removed)
                for r in session.scalars(select(IngestionRun).where(IngestionRun.kb_id == row.id).order_by(IngestionRun.id))]
        generation, kind = row.index_generation, row.index_kind
    index = read_dense(settings, kb, generation, 384)
    ids, vectors = index.vectors()
    by_id = dict(zip(ids.tolist(), vectors))
    keyed = sorted((source, ordinal, text, title, section, page, tokens) for source, ordinal, text, title, section, page, tokens, _ in chunks)
    chunk_vectors = {(c.source, c.ordinal): by_id[c.id] for c in chunks}
    return {"docs": docs, "chunks": keyed, "runs": runs, "generation": generation, "kind": kind,
            "index_size": index.size, "vectors": chunk_vectors}


def _summary(summary) -> dict:
    result = summary.as_dict()
    for volatile in ("run_id", "seconds", "documents_per_s", "chunks_per_s"):
        result.pop(volatile)
    return result


def _top(settings: Settings, kb: str, embedder, queries: list[str], k: int) -> list[list[tuple[str, float]]]:
    """(document source, score) of the top-k dense hits per query."""
    with session_scope(settings) as session:
        generation = session.scalar(select(KnowledgeBase.index_generation).where(KnowledgeBase.name == kb))
        index = read_dense(settings, kb, generation, embedder.dim)
        scores, ids = index.search(embedder.encode(queries), k)
        source_of = dict(session.execute(select(Chunk.id, Document.source).join(Document, Chunk.document_id == Document.id)).all())
    return [[(source_of[int(i)], float(s)) for s, i in zip(row_scores, row) if i >= 0] for row_scores, row in zip(scores, ids)]


def _top_sources(settings: Settings, kb: str, embedder, queries: list[str], k: int) -> list[list[str]]:
    return [[source for source, _ in hits] for hits in _top(settings, kb, embedder, queries, k)]


def _assert_same(local: dict, remote: dict) -> None:
    for key in ("docs", "chunks", "runs", "generation", "kind", "index_size"):
        assert local[key] == remote[key], key
    assert local["vectors"].keys() == remote["vectors"].keys()
    for key, vector in local["vectors"].items():
        np.testing.assert_allclose(vector, remote["vectors"][key], atol=1e-4)


def test_ray_engine_ingests_like_the_local_engine_with_bad_files_and_incremental_runs(ray_cluster, two_dirs, embedder, tmp_path):
    local_settings, ray_settings = two_dirs
    folder = make_helpcenter(tmp_path / "kb")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")
    (folder / "empty.txt").write_text("")
    engine = RayEngine(ray_settings, batch_documents=2, disable_bars=True)  # small batches: spread over both actors
    try:
        assert engine.actors == 2
        local = Ingestor("help", local_settings, embedder, show_progress=False)
        remote = Ingestor("help", ray_settings, embedder, show_progress=False, engine=engine)
        assert isinstance(local.engine, LocalEngine)

        first = (local.run([folder]), remote.run([folder]))
        assert _summary(first[0]) == _summary(first[1])
        assert {Path(f["path"]).name for f in first[1].failed} == {"broken.pdf", "empty.txt"}
        assert first[1].added == 6 and first[1].exit_code == 2
        _assert_same(_state(local_settings, "help"), _state(ray_settings, "help"))

        # Incremental: one file changed, one new, one deleted (pruned), the rest untouched.
        (folder / "returns.md").write_text("# Returns\n\nReturns are accepted within 45 days.\n")
        (folder / "new.md").write_text("# Pets\n\nDogs are welcome in every store.\n")
        (folder / "hours.txt").unlink()
        second = (local.run([folder], prune=True), remote.run([folder], prune=True))
        assert _summary(second[0]) == _summary(second[1])
        assert (second[1].added, second[1].updated, second[1].pruned) == (1, 1, 1)
        _assert_same(_state(local_settings, "help"), _state(ray_settings, "help"))

        # Unchanged: nothing is parsed or embedded by either engine.
        third = remote.run([folder])
        assert (third.added, third.updated, third.chunks_added) == (0, 0, 0) and third.unchanged == 6

        assert (_top_sources(local_settings, "help", embedder, QUERIES, 3)
                == _top_sources(ray_settings, "help", embedder, QUERIES, 3))
        assert _top_sources(ray_settings, "help", embedder, ["How long is the return window?"], 1)[0][0].endswith("returns.md")

        # --strict stops at the same file with either engine.
        shutil.copy(folder / "returns.md", folder / "a_copy.pdf")
        strict = (local.run([folder], strict=True), remote.run([folder], strict=True))
        assert _summary(strict[0]) == _summary(strict[1]) and strict[1].stopped_early
    finally:
        engine.close()


def test_cli_ingest_with_the_ray_engine(ray_cluster, settings, tmp_path):
    from typer.testing import CliRunner

    from ui.cli import app

    folder = make_helpcenter(tmp_path / "kb")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(folder), "--kb", "help", "--json", "--engine", "ray"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 6
    assert ray.is_initialized()  # the test's Ray instance was used, not shut down
    result = runner.invoke(app, ["ingest", str(folder), "--kb", "help", "--engine", "spark"])
    assert result.exit_code == 1 and "unknown engine 'spark'" in result.output
    result = runner.invoke(app, ["ingest", str(folder), "--kb", "help", "--address", "127.0.0.1:1"])
    assert result.exit_code == 1 and "use it with --engine ray" in result.output


# SciFact abstracts compared. The whole corpus (5,183) took about 30 minutes on 2 AVX2 cores, the
# suite's whole budget; HELPMATE_TEST_SCIFACT_DOCUMENTS=0 compares all of it (passed on 2026-11-29).
SCIFACT_DOCUMENTS = int(os.environ.get("HELPMATE_TEST_SCIFACT_DOCUMENTS", "1500"))


@pytest.mark.slow
def test_ray_engine_ingests_scifact_to_the_same_chunks_and_search_results(ray_cluster, two_dirs, embedder, tmp_path):
    full = SHARED / "datasets" / "scifact" / "corpus.jsonl"
    queries_file = SHARED / "datasets" / "scifact" / "queries.jsonl"
    require(full.exists(), "shared SciFact corpus not present")
    records = [line for line in full.read_text().splitlines(keepends=True) if line.strip()]
    records = records[:SCIFACT_DOCUMENTS] if SCIFACT_DOCUMENTS > 0 else records
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(records))
    local_settings, ray_settings = two_dirs
    local_summary = Ingestor("scifact", local_settings, embedder, show_progress=False).run([corpus])
    engine = RayEngine(ray_settings, disable_bars=True)
    try:
        ray_summary = Ingestor("scifact", ray_settings, embedder, show_progress=False, engine=engine).run([corpus])
    finally:
        engine.close()
    assert _summary(local_summary) == _summary(ray_summary)
    assert ray_summary.added == len(records) and not ray_summary.failed
    local, remote = _state(local_settings, "scifact"), _state(ray_settings, "scifact")
    _assert_same(local, remote)
    queries = [json.loads(line)["text"] for line in queries_file.read_text().splitlines()[:300]]
    local_top = _top(local_settings, "scifact", embedder, queries, 11)
    ray_top = _top(ray_settings, "scifact", embedder, queries, 11)
    compared = 0
    for local_hits, ray_hits in zip(local_top, ray_top):
        # The top 10 documents as sets, unless the 10th and 11th hit tie to within float noise.
        if local_hits[9][1] - local_hits[10][1] > 1e-4:
            assert {s for s, _ in local_hits[:10]} == {s for s, _ in ray_hits[:10]}
            compared += 1
        np.testing.assert_allclose([x for _, x in local_hits], [x for _, x in ray_hits], atol=1e-4)
    assert compared >= 0.9 * len(queries)
    exact_order = sum(l_[:10] == r_[:10] for l_, r_ in zip(_top_sources(local_settings, "scifact", embedder, queries, 10),
                                                         _top_sources(ray_settings, "scifact", embedder, queries, 10)))
    assert exact_order >= 0.95 * len(queries)


def test_ray_sentiment_scorer_imports_conversations_like_the_local_model(ray_cluster, two_dirs):
    from assistant.conversations.store import import_conversations
    from assistant.database.models import Conversation, Message
    from assistant.sentiment.model import get_sentiment_model
    from assistant.sentiment.batch import RaySentimentScorer
    from tests.conftest import REPO

    local_settings, ray_settings = two_dirs
    demo = REPO / "demo" / "conversations.csv"
    local = import_conversations(demo, settings=local_settings, batch_size=128)
    with RaySentimentScorer(ray_settings, slice_size=16) as scorer:
        assert scorer.version == get_sentiment_model(ray_settings).version
        remote = import_conversations(demo, settings=ray_settings, batch_size=128, scorer=scorer)
        again = import_conversations(demo, settings=ray_settings, batch_size=128, scorer=scorer)
    assert remote.customer_messages > 100 and remote.negative > 10
    for field in ("rows", "messages_added", "conversations_added", "customer_messages", "negative", "alerts"):
        assert getattr(local, field) == getattr(remote, field), field
    assert (again.messages_added, again.duplicates) == (0, remote.messages_added)

    def scored(settings):
        with session_scope(settings) as session:
            return session.execute(select(Conversation.external_id, Message.created_at, Message.role, Message.sentiment_label,
                                          Message.sentiment_score, Message.sentiment_model)
                                   .join(Conversation, Message.conversation_id == Conversation.id)
                                   .order_by(Conversation.external_id, Message.created_at, Message.id)).all()

    local_rows, ray_rows = scored(local_settings), scored(ray_settings)
    assert [r[:4] + r[5:] for r in local_rows] == [r[:4] + r[5:] for r in ray_rows]
    scores = [(a[4], b[4]) for a, b in zip(local_rows, ray_rows) if a[4] is not None]
    assert len(scores) == remote.customer_messages
    np.testing.assert_allclose([a for a, _ in scores], [b for _, b in scores], atol=2e-4)


def test_cli_import_conversations_scores_on_ray(ray_cluster, settings):
    from typer.testing import CliRunner

    from ui.cli import app

    demo = REPO / "demo" / "conversations.csv"
    result = CliRunner().invoke(app, ["import-conversations", str(demo), "--kb", "demo", "--json", "--engine", "ray",
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["customer_messages"] > 100 and report["negative"] > 0 and not report["bad_rows"]
    assert ray.is_initialized()  # the test's Ray instance was used and left running
    result = CliRunner().invoke(app, ["import-conversations", str(demo), "--engine", "spark"])
    assert result.exit_code == 1 and "choose local or ray" in result.output
