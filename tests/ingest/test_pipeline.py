"""Batch ingestion on real files with the real embedding model, FAISS and database."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from assistant.database import session_scope
from assistant.database.models import Chunk, Document, IngestionRun, KnowledgeBase
from assistant.retrieval.vector_index import read_dense
from ingest import pipeline
from ingest.locking import IngestionLockedError, kb_lock
from ingest.pipeline import Ingestor
from tests.conftest import SHARED, require
from tests.helpers import make_helpcenter


def _state(settings, kb_name="help"):
    with session_scope(settings) as session:
        kb = session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == kb_name))
        chunk_ids = set(session.scalars(select(Chunk.id).where(Chunk.kb_id == kb.id)))
        docs = {d.source: d for d in session.scalars(select(Document).where(Document.kb_id == kb.id))}
        return kb, chunk_ids, docs


def _search(settings, embedder, query, kb_name="help"):
    kb, _, _ = _state(settings, kb_name)
    index = read_dense(settings, kb_name, kb.index_generation, embedder.dim)
    _, ids = index.search(embedder.encode([query]), 3)
    with session_scope(settings) as session:
        return [session.get(Chunk, int(i)) for i in ids[0] if i >= 0]


def test_ingests_every_format_and_reports_the_corrupt_pdf(db_settings, embedder, tmp_path):
    folder = make_helpcenter(tmp_path / "kb")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")
    summary = Ingestor("help", db_settings, embedder, show_progress=False).run([folder])

    assert summary.exit_code == 2
    assert [f["path"].rsplit("/", 1)[-1] for f in summary.failed] == ["broken.pdf"]
    assert summary.added == 6
    kb, chunk_ids, docs = _state(db_settings)
    index = read_dense(db_settings, "help", kb.index_generation, embedder.dim)
    assert index.size == len(chunk_ids) == summary.chunks_added
    assert docs[str(folder / "broken.pdf")].status == "failed"
    assert "PDF" in docs[str(folder / "broken.pdf")].error

    hits = _search(db_settings, embedder, "How much is express delivery?")
    assert "14.90 EUR" in hits[0].text
    assert "secret-script-text" not in hits[0].text and "footer-text" not in hits[0].text
    hits = _search(db_settings, embedder, "How many extra years of warranty do tents get?")
    assert hits[0].page == 2 and "three extra years" in hits[0].text
    hits = _search(db_settings, embedder, "How much is the deposit for renting a tent?")
    assert hits[0].section and "Deposit" in hits[0].section
    with session_scope(db_settings) as session:
        faq_chunks = session.scalars(select(Chunk).join(Document).where(Document.format == "faq")).all()
        assert len(faq_chunks) == 2  # one chunk per FAQ entry


def test_unchanged_rerun_embeds_nothing(settings, embedder, tmp_path, monkeypatch):
    folder = make_helpcenter(tmp_path / "kb")
    Ingestor("help", settings, embedder, show_progress=False).run([folder])
    calls = []
    monkeypatch.setattr(embedder, "encode", lambda texts, **kw: calls.append(texts) or np.zeros((len(texts), embedder.dim), np.float32))
    summary = Ingestor("help", settings, embedder, show_progress=False).run([folder])
    assert calls == []
    assert (summary.added, summary.updated, summary.unchanged, summary.chunks_added) == (0, 0, 6, 0)


def test_changed_file_replaces_its_chunks_and_prune_removes_deleted_files(db_settings, embedder, tmp_path):
    folder = make_helpcenter(tmp_path / "kb")
    ingestor = Ingestor("help", db_settings, embedder, show_progress=False)
    ingestor.run([folder])
    _, before, docs = _state(db_settings)
    old_returns_chunks = _chunk_ids_of(db_settings, docs[str(folder / "returns.md")].id)

    (folder / "returns.md").write_text("# Returns policy\n\n## Return window\n\nYou can return any item within 60 days.\n")
    (folder / "hours.txt").unlink()
    summary = ingestor.run([folder])
    assert (summary.updated, summary.unchanged, summary.pruned) == (1, 4, 0)  # no --prune: hours.txt stays
    summary = ingestor.run([folder], prune=True)
    assert (summary.updated, summary.pruned) == (0, 1)

    kb, after, docs = _state(db_settings)
    assert str(folder / "hours.txt") not in docs
    assert not (old_returns_chunks & after)
    index = read_dense(db_settings, "help", kb.index_generation, embedder.dim)
    assert index.size == len(after)
    assert "60 days" in _search(db_settings, embedder, "How long is the return window?")[0].text


def _chunk_ids_of(settings, doc_id):
    with session_scope(settings) as session:
        return set(session.scalars(select(Chunk.id).where(Chunk.document_id == doc_id)))


def test_crash_between_embedding_and_index_write_keeps_the_old_index(settings, embedder, tmp_path, monkeypatch):
    folder = make_helpcenter(tmp_path / "kb")
    ingestor = Ingestor("help", settings, embedder, show_progress=False)
    ingestor.run([folder])
    kb_before, chunks_before, _ = _state(settings)

    (folder / "returns.md").write_text("# Returns\n\nReturns are accepted within 45 days.\n")
    (folder / "new.md").write_text("# Pets\n\nDogs are welcome in every store.\n")

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(pipeline, "publish_generation", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        ingestor.run([folder])

    kb_after, chunks_after, docs = _state(settings)
    assert kb_after.index_generation == kb_before.index_generation
    assert chunks_after == chunks_before
    assert str(folder / "new.md") not in docs
    assert "30 days" in _search(settings, embedder, "How long is the return window?")[0].text
    with session_scope(settings) as session:
        assert session.scalars(select(IngestionRun.status).order_by(IngestionRun.id.desc())).first() == "failed"

    monkeypatch.undo()
    summary = ingestor.run([folder])
    assert (summary.added, summary.updated) == (1, 1)
    assert "45 days" in _search(settings, embedder, "How long is the return window?")[0].text


def test_bad_inputs_are_reported_and_skipped(settings, embedder, tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nThis document is fine.\n")
    (folder / "empty.txt").write_text("")
    (folder / "big.txt").write_text("x" * 3000)
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    settings.max_file_mb = 0.002
    summary = Ingestor("help", settings, embedder, show_progress=False).run([folder])
    reasons = {f["path"].rsplit("/", 1)[-1]: f["error"] for f in summary.failed}
    assert set(reasons) == {"empty.txt", "big.txt", "binary.txt"}
    assert reasons["empty.txt"] == "empty file" and reasons["big.txt"].startswith("oversized")
    assert summary.added == 1


def test_strict_stops_at_the_first_failure(settings, embedder, tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "a_broken.pdf").write_bytes(b"not a pdf")
    (folder / "b_good.md").write_text("# Good\n\nFine.\n")
    summary = Ingestor("help", settings, embedder, show_progress=False).run([folder], strict=True)
    assert summary.stopped_early and summary.added == 0 and summary.exit_code == 2


def test_one_job_at_a_time_per_knowledge_base(settings, embedder, tmp_path):
    folder = make_helpcenter(tmp_path / "kb")
    with kb_lock(settings.index_dir / "help" / ".lock", "help"):
        with pytest.raises(IngestionLockedError, match="being ingested"):
            Ingestor("help", settings, embedder, show_progress=False).run([folder])


def test_include_and_exclude_globs(settings, embedder, tmp_path):
    folder = make_helpcenter(tmp_path / "kb")
    summary = Ingestor("help", settings, embedder, show_progress=False).run([folder], include=["*.md", "*.txt"], exclude=["hours*"])
    assert summary.files == 1 and summary.added == 1


def test_beir_corpus_is_one_document_per_record(settings, embedder, tmp_path):
    corpus = SHARED / "datasets" / "scifact" / "corpus.jsonl"
    require(corpus.exists(), "shared SciFact corpus not present")
    small = tmp_path / "corpus.jsonl"
    lines = corpus.read_text().splitlines()[:60]
    small.write_text("\n".join(lines) + "\n")
    ingestor = Ingestor("scifact", settings, embedder, show_progress=False)
    assert ingestor.run([small]).added == 60
    assert ingestor.run([small]).unchanged == 60
    # Drop one record and change another: only those two documents are touched.
    records = [json.loads(line) for line in lines]
    records[0]["text"] += " Revised."
    small.write_text("".join(json.dumps(r) + "\n" for r in records[:-1]))
    summary = ingestor.run([small])
    assert (summary.updated, summary.pruned, summary.unchanged) == (1, 1, 58)


def test_a_beir_folder_ingests_its_corpus_and_reports_queries_jsonl_as_not_ingested(settings, tmp_path):
    """`helpmate ingest` on a whole BEIR folder: queries.jsonl has `_id` and `text` like the corpus,
    but its records are questions; they are listed as skipped, with the reason, and never indexed."""
    from ui.cli import app

    folder = (tmp_path / "beir").resolve()
    (folder / "qrels").mkdir(parents=True)
    corpus = [{"_id": "d1", "title": "Aspirin", "text": "Aspirin lowers fever in adults.", "metadata": {}},
              {"_id": "d2", "title": "Vitamin C", "text": "Vitamin C does not prevent the common cold.", "metadata": {}}]
    queries = [{"_id": "q1", "text": "Does aspirin lower a fever?", "metadata": {}},
               {"_id": "q2", "text": "Can vitamin C prevent colds?", "metadata": {}}]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(record) + "\n" for record in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(record) + "\n" for record in queries))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")

    result = CliRunner().invoke(app, ["ingest", str(folder), "--kb", "beir", "--json"])
    assert result.exit_code == 2, result.output  # 2: a file was skipped
    summary = json.loads(result.stdout)
    assert (summary["files"], summary["added"]) == (2, 2)  # qrels/test.tsv is no document type
    assert [failure["path"] for failure in summary["failed"]] == [str(folder / "queries.jsonl")]
    assert summary["failed"][0]["error"].startswith("BEIR queries file, not ingested")
    _, chunk_ids, docs = _state(settings, "beir")
    assert {source for source, doc in docs.items() if doc.status == "indexed"} == {
        f"{folder / 'corpus.jsonl'}#d1", f"{folder / 'corpus.jsonl'}#d2"}
    with session_scope(settings) as session:
        texts = [session.get(Chunk, chunk_id).text for chunk_id in chunk_ids]
    assert len(texts) == 2 and not any("?" in text for text in texts)

    result = CliRunner().invoke(app, ["ingest", str(folder), "--kb", "beir"])
    assert result.exit_code == 2
    assert f"skipped {folder / 'queries.jsonl'}: BEIR queries file, not ingested" in result.output


def test_cli_prints_json_summary_and_exit_codes(settings, tmp_path):
    from ui.cli import app

    folder = make_helpcenter(tmp_path / "kb")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(folder), "--kb", "help", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["added"] == 6 and summary["failed"] == []
    shutil.copy(folder / "returns.md", folder / "copy.pdf")  # wrong content for its type
    result = runner.invoke(app, ["ingest", str(folder), "--kb", "help", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["failed"][0]["path"].endswith("copy.pdf")
    result = runner.invoke(app, ["ingest", str(tmp_path / "missing"), "--kb", "help"])
    assert result.exit_code == 1 and "no such file" in result.output


def test_reparse_reads_unchanged_files_again_and_embeds_only_documents_whose_text_changed(settings, embedder, tmp_path,
                                                                                         monkeypatch):
    from ingest.loaders import pdf
    from tests.helpers import make_pdf

    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "returns.md").write_text("# Returns\n\nYou can return items within 30 days of delivery.\n")
    make_pdf(folder / "warranty.pdf", [f"ACME | Help Center\n{body}\nWarranty Policy - page {n} of 2" for n, body in enumerate(
        ["Repairs are free for two years.", "Tents get three more years of warranty."], start=1)])

    def chunks(name: str) -> dict[int, str]:
        _, _, docs = _state(settings)
        document = next(d for source, d in docs.items() if source.endswith(name))
        with session_scope(settings) as session:
            return {c.id: c.text for c in session.scalars(select(Chunk).where(Chunk.document_id == document.id))}

    with monkeypatch.context() as older:  # an earlier loader that kept running headers and footers
        older.setattr(pdf, "without_running_lines", lambda pages: [page.strip() for page in pages])
        Ingestor("help", settings, embedder, show_progress=False).run([folder])
    returns = chunks("returns.md")
    assert any("page 1 of 2" in text for text in chunks("warranty.pdf").values())

    again = Ingestor("help", settings, embedder, show_progress=False).run([folder])
    assert (again.unchanged, again.updated, again.chunks_added) == (2, 0, 0)  # unchanged bytes are not read again

    reparsed = Ingestor("help", settings, embedder, show_progress=False).run([folder], reparse=True)
    assert (reparsed.unchanged, reparsed.updated) == (1, 1) and reparsed.chunks_added == len(chunks("warranty.pdf"))
    assert not any("Help Center" in text or "of 2" in text for text in chunks("warranty.pdf").values())
    assert chunks("returns.md") == returns  # its text did not change: not embedded again


def test_reparse_embeds_again_what_a_new_chunk_size_cuts_differently(settings, embedder, tmp_path):
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "returns.md").write_text("# Returns\n\nYou can return items within 30 days of delivery.\n")
    Ingestor("help", settings, embedder, show_progress=False).run([folder])
    same = Ingestor("help", settings, embedder, show_progress=False).run([folder], reparse=True)
    assert (same.unchanged, same.updated) == (1, 0)
    smaller = settings.model_copy(update={"chunk_tokens": 120})
    again = Ingestor("help", smaller, embedder, show_progress=False).run([folder], reparse=True)
    assert (again.unchanged, again.updated, again.chunks_added) == (0, 1, 1)
