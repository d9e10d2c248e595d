"""Search on a real knowledge base: real embedding model, FAISS, BM25 and database."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from langchain_core.documents import Document as LangChainDocument
from sqlalchemy import select
from typer.testing import CliRunner

from assistant.database import session_scope
from assistant.database.models import Chunk, KnowledgeBase
from assistant.retrieval.langchain import HelpmateRetriever
from assistant.retrieval.bm25_index import LexicalIndex
from assistant.retrieval import retriever as retriever_module
from assistant.retrieval.retriever import RRF_K, Retriever, fuse
from assistant.retrieval.types import heading_path
from assistant.retrieval.evaluation import (
    load_qrels,
    mrr_at_k,
    ndcg_at_k,
    rank_documents,
    recall_at_k,
    score_rankings,
)
from assistant.retrieval.types import Hit
from assistant.retrieval.vector_index import generation_dir, read_dense
from ingest.pipeline import Ingestor
from tests.conftest import SHARED
from tests.helpers import make_helpcenter

MODES = ["dense", "bm25", "hybrid"]


@pytest.fixture
def helpcenter(settings, embedder, tmp_path):
    """The help-center folder ingested into knowledge base "help"; returns (folder, ingestor, retriever)."""
    folder = make_helpcenter(tmp_path / "kb")
    ingestor = Ingestor("help", settings, embedder, show_progress=False)
    ingestor.run([folder])
    return folder, ingestor, Retriever(settings, embedder)


def _names(hits: list[Hit]) -> list[str]:
    return [Path(hit.source).name for hit in hits]


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_finds_the_passage_that_holds_the_fact(helpcenter, mode):
    folder, _, retriever = helpcenter
    hits = retriever.search("How much does express shipping cost?", "help", k=3, mode=mode)
    assert "14.90 EUR" in hits[0].text and hits[0].source == str(folder / "shipping.html")
    assert hits[0].title == "Shipping costs"

    hits = retriever.search("How many extra years of warranty do tents get?", "help", k=3, mode=mode)
    assert _names(hits)[0] == "warranty.pdf" and hits[0].page == 2 and "three extra years" in hits[0].text

    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert len(set(_names(hits))) == len(hits)  # one hit per document
    assert (hits[0].dense_score is not None) == (mode != "bm25")
    assert (hits[0].bm25_score is not None) == (mode != "dense")


def test_k_documents_are_returned_and_search_many_matches_search(helpcenter):
    _, _, retriever = helpcenter
    queries = ["Can I pay with bitcoin?", "When is the Munich store open?", "How much is the rental deposit?"]
    batched = retriever.search_many(queries, "help", k=6, mode="hybrid")
    assert [len(hits) for hits in batched] == [6, 6, 6]  # k documents even where chunks of one document rank high
    for query, hits in zip(queries, batched):
        assert [h.chunk_id for h in hits] == [h.chunk_id for h in retriever.search(query, "help", k=6)]
    assert "cryptocurrency" in batched[0][0].text
    assert _names(batched[1])[0] == "hours.txt"
    assert "100 EUR" in batched[2][0].text


def test_answers_may_take_two_chunks_of_one_document(helpcenter):
    """per_document=2 (the assistant's default): the k best chunks, at most two of a document, best first;
    with 1 the same search gives one chunk per document, and every chunk of it ranks among the chosen."""
    _, _, retriever = helpcenter
    query = "How long is the warranty on tents, and how do I register a tent?"
    one = retriever.search(query, "help", k=4, per_document=1)
    two = retriever.search(query, "help", k=4, per_document=2)
    assert len(one) == len(two) == 4 and len({h.document_id for h in one}) == 4
    per_document = {d: sum(h.document_id == d for h in two) for d in {h.document_id for h in two}}
    assert max(per_document.values()) == 2 and all(n <= 2 for n in per_document.values())
    assert [h.score for h in two] == sorted((h.score for h in two), reverse=True)
    assert two[0].chunk_id == one[0].chunk_id  # the best chunk leads either way
    assert {h.chunk_id for h in one} - {h.chunk_id for h in two} <= {one[-1].chunk_id, one[-2].chunk_id}
    with pytest.raises(ValueError, match="per_document must be at least 1, got 0"):
        retriever.search(query, "help", per_document=0)


def test_bad_requests_say_what_to_fix(helpcenter):
    _, _, retriever = helpcenter
    with pytest.raises(ValueError, match=r"'nope' does not exist.*helpmate ingest PATH --kb nope"):
        retriever.search("shipping", "nope")
    with pytest.raises(ValueError, match="unknown search mode"):
        retriever.search("shipping", "help", mode="sparse")
    with pytest.raises(ValueError, match="empty query"):
        retriever.search("  ", "help")
    with pytest.raises(ValueError, match="unknown fusion 'mean'"):
        retriever.search("shipping", "help", fusion="mean")
    with pytest.raises(ValueError, match="dense_weight must be between 0 and 1, got 1.5"):
        retriever.search("shipping", "help", dense_weight=1.5)


@pytest.mark.parametrize("mode", MODES)
def test_source_filter_keeps_only_the_given_documents(helpcenter, mode):
    folder, _, retriever = helpcenter
    hits = retriever.search("How much does express shipping cost?", "help", k=5, mode=mode,
                            sources=[str(folder / "rental.docx"), str(folder / "faq.csv")])
    assert hits and set(_names(hits)) <= {"rental.docx", "faq.csv"}
    assert not any("14.90" in hit.text for hit in hits)
    # A folder is a prefix of every file in it.
    assert len(retriever.search("shipping", "help", k=10, mode="dense", sources=[str(folder)])) == 6
    assert retriever.search("shipping", "help", mode=mode, sources=[str(folder / "missing.md")]) == []


@pytest.mark.parametrize("mode", MODES)
def test_knowledge_bases_are_kept_apart(helpcenter, settings, embedder, tmp_path, mode):
    _, _, retriever = helpcenter
    other = tmp_path / "other"
    other.mkdir()
    (other / "pets.md").write_text("# Pets\n\nDogs are welcome in every store, cats stay home.\n")
    Ingestor("other", settings, embedder, show_progress=False).run([other])

    hits = retriever.search("How much does express shipping cost?", "other", k=5, mode=mode)
    assert _names(hits) in ([], ["pets.md"])  # BM25 finds nothing in common; dense still ranks the only document
    hits = retriever.search("Are dogs welcome in the store?", "help", k=5, mode=mode)
    assert "pets.md" not in _names(hits)
    assert _names(retriever.search("Are dogs welcome in the store?", "other", mode=mode)) == ["pets.md"]


def test_fuse_adds_reciprocal_ranks_or_weighted_min_max_scores():
    dense = np.array([0.90, 0.50, 0.49, 0.10])
    bm25 = np.array([0.0, 7.0, 9.0, 0.0])  # ties (no shared term) share the better rank: 3
    expected = [1 / (RRF_K + 1) + 1 / (RRF_K + 3), 1 / (RRF_K + 2) + 1 / (RRF_K + 2),
                1 / (RRF_K + 3) + 1 / (RRF_K + 1), 1 / (RRF_K + 4) + 1 / (RRF_K + 3)]
    np.testing.assert_allclose(fuse(dense, bm25, "rrf"), expected)
    # Min-max keeps the dense side's gap (0.90 far above 0.50) that ranks alone throw away.
    np.testing.assert_allclose(fuse(dense, bm25, "minmax", 0.5), [0.5, 0.5 * 0.5 + 0.5 * 7 / 9, 0.5 * 0.39 / 0.8 + 0.5, 0.0], rtol=1e-6)
    np.testing.assert_allclose(fuse(dense, bm25, "minmax", 1.0), (dense - 0.10) / 0.80, rtol=1e-6)
    np.testing.assert_allclose(fuse(dense, bm25, "minmax", 0.0), bm25 / 9, rtol=1e-6)


def test_rrf_ranks_documents_by_reciprocal_ranks_over_every_chunk(helpcenter, settings, embedder):
    """The help center has fewer chunks than a search's candidates, so every chunk is a candidate on both sides:
    the expected order follows from every chunk's exact dense and BM25 score, read from the real indexes."""
    _, _, retriever = helpcenter
    lexical, _ = _lexical_of_current_generation(settings)
    with session_scope(settings) as session:
        kb = session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == "help"))
        dense_index = read_dense(settings, "help", kb.index_generation, kb.dimension)
    assert lexical.size < 50  # _MIN_CANDIDATES: all of them are candidates
    for query in ["How much does express shipping cost?", "Is there a deposit when I rent a tent?", "warranty on tent poles"]:
        vector = embedder.encode([query])[0]
        dense = dense_index.index.reconstruct_batch(lexical.chunk_ids) @ vector
        bm25 = lexical.scores(query)
        rank = lambda scores, i: 1 + int(np.sum(scores > scores[i]))  # noqa: E731
        rrf = {int(lexical.chunk_ids[i]): 1 / (RRF_K + rank(dense, i)) + 1 / (RRF_K + rank(bm25, i))
               for i in range(lexical.size)}
        best: dict[int, int] = {}  # document id -> its best chunk
        for i in sorted(range(lexical.size), key=lambda i: -rrf[int(lexical.chunk_ids[i])]):
            best.setdefault(int(lexical.document_ids[i]), int(lexical.chunk_ids[i]))
        hits = retriever.search(query, "help", k=6, mode="hybrid", fusion="rrf")
        assert [h.chunk_id for h in hits] == list(best.values())[:6]
        assert [h.score for h in hits] == pytest.approx([rrf[c] for c in list(best.values())[:6]])
        assert hits[0].score <= 2 / (RRF_K + 1)
    # The passage that holds the fact is first on both sides here, so it scores the most RRF gives.
    top = retriever.search("How much does express shipping cost?", "help", k=1, fusion="rrf")[0]
    assert "14.90 EUR" in top.text and top.score == pytest.approx(2 / (RRF_K + 1))


def test_dense_weight_one_ranks_like_dense_and_zero_like_bm25(helpcenter):
    _, _, retriever = helpcenter
    for query in ["How much does express shipping cost?", "Can I return a tent late?", "tent deposit refund"]:
        dense = retriever.search(query, "help", k=6, mode="dense")
        weighted = retriever.search(query, "help", k=6, mode="hybrid", dense_weight=1.0)
        assert [h.chunk_id for h in weighted] == [h.chunk_id for h in dense]
        assert [h.dense_score for h in weighted] == pytest.approx([h.score for h in dense], abs=1e-5)

        bm25 = retriever.search(query, "help", k=6, mode="bm25")
        weighted = retriever.search(query, "help", k=6, mode="hybrid", dense_weight=0.0)
        # Chunks sharing no term with the query are candidates only through the dense side; they score 0 and come last.
        lexical = [h for h in weighted if h.bm25_score > 0]
        assert weighted[:len(lexical)] == lexical and all(h.score == 0 for h in weighted[len(lexical):])
        assert len(bm25) >= 2 and [h.chunk_id for h in lexical] == [h.chunk_id for h in bm25]
        assert [h.bm25_score for h in lexical] == pytest.approx([h.score for h in bm25])


def test_eval_retrieval_command_checks_its_fusion_options(settings, tmp_path):
    from ui import eval_cli
    from ui.cli import app

    assert get_args(eval_cli.Mode) == retriever_module.MODES and get_args(eval_cli.Fusion) == retriever_module.FUSIONS
    assert eval_cli.DENSE_WEIGHT == retriever_module.DENSE_WEIGHT
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "Express shipping costs 14.90 EUR."}\n')
    runner = CliRunner()
    command = ["eval", "retrieval", "--beir", str(beir)]
    result = runner.invoke(app, [*command, "--dense-weight", "1.5"])
    assert result.exit_code == 2 and "--dense-weight" in result.output
    result = runner.invoke(app, [*command, "--fusion", "mean"])
    assert result.exit_code == 2 and "--fusion" in result.output
    result = runner.invoke(app, [*command, "--mode", "dense", "--dense-weight", "0.3"])
    assert result.exit_code == 1 and "only apply to --mode hybrid, not --mode dense" in result.output
    result = runner.invoke(app, [*command, "--mode", "bm25", "--fusion", "rrf"])
    assert result.exit_code == 1 and "only apply to --mode hybrid" in result.output
    result = runner.invoke(app, [*command, "--fusion", "rrf", "--dense-weight", "0.3"])
    assert result.exit_code == 1 and "rrf has no weight" in result.output
    assert not settings.index_dir.exists()  # rejected before anything was ingested


def _lexical_of_current_generation(settings, kb_name="help") -> tuple[LexicalIndex, set[int]]:
    with session_scope(settings) as session:
        kb = session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == kb_name))
        chunk_ids = set(session.scalars(select(Chunk.id).where(Chunk.kb_id == kb.id)))
        generation = kb.index_generation
    return LexicalIndex.read(generation_dir(settings, kb_name, generation)), chunk_ids


def test_bm25_stays_in_step_with_changes_and_prune(helpcenter, settings):
    folder, ingestor, retriever = helpcenter
    lexical, chunk_ids = _lexical_of_current_generation(settings)
    assert set(lexical.chunk_ids.tolist()) == chunk_ids
    assert _names(retriever.search("Munich opening hours", "help", mode="bm25"))[0] == "hours.txt"

    (folder / "returns.md").write_text("# Returns policy\n\n## Return window\n\nYou can return any item within 60 days.\n")
    ingestor.run([folder])
    hits = retriever.search("return window days", "help", k=6, mode="bm25")
    assert "60 days" in hits[0].text
    assert not any("30 days" in hit.text for hit in hits)

    (folder / "hours.txt").unlink()
    ingestor.run([folder], prune=True)
    lexical, chunk_ids = _lexical_of_current_generation(settings)
    assert set(lexical.chunk_ids.tolist()) == chunk_ids
    assert retriever.search("Munich opening hours", "help", mode="bm25") == []
    assert "hours.txt" not in _names(retriever.search("Munich opening hours", "help", k=10, mode="hybrid"))


def test_retriever_reloads_after_a_new_generation(helpcenter):
    folder, ingestor, retriever = helpcenter
    query = "Are dogs allowed in the store?"
    assert "pets.md" not in _names(retriever.search(query, "help", k=10))
    (folder / "pets.md").write_text("# Pets\n\nDogs are welcome in every store.\n")
    ingestor.run([folder])
    for mode in MODES:
        assert _names(retriever.search(query, "help", mode=mode))[0] == "pets.md"


def test_concurrent_searches_share_the_loaded_indexes(helpcenter):
    _, _, retriever = helpcenter
    queries = ["How much does express shipping cost?", "Can I pay with bitcoin?"] * 20
    with ThreadPoolExecutor(4) as pool:
        tops = list(pool.map(lambda q: _names(retriever.search(q, "help", k=2))[0], queries))
    assert tops == ["shipping.html", "faq.csv"] * 20


def test_query_time_cache_gives_the_same_vectors_and_skips_known_texts(embedder, monkeypatch):
    embedder.clear_cache()
    texts = ["Where is my parcel?", "Express shipping costs 12 euros.", "Where is my parcel?"]
    fresh = embedder.encode(texts)
    encoded: list[list[str]] = []
    original = embedder._encode
    monkeypatch.setattr(embedder, "_encode", lambda t, progress: encoded.append(list(t)) or original(t, progress))
    first = embedder.encode(texts, cache=True)
    again = embedder.encode(["Express shipping costs 12 euros.", "Can I pay with bitcoin?"], cache=True)
    np.testing.assert_allclose(first, fresh, atol=1e-5)
    np.testing.assert_allclose(again[0], fresh[1], atol=1e-5)
    assert encoded == [["Where is my parcel?", "Express shipping costs 12 euros."], ["Can I pay with bitcoin?"]]
    embedder.encode(texts[:1])  # without cache=True: always embedded
    assert encoded[-1] == ["Where is my parcel?"]
    embedder.clear_cache()


def test_generation_written_before_bm25_existed_is_indexed_from_the_database(helpcenter, settings, embedder):
    _, _, retriever = helpcenter
    with session_scope(settings) as session:
        generation = session.scalar(select(KnowledgeBase.index_generation).where(KnowledgeBase.name == "help"))
    for file in generation_dir(settings, "help", generation).glob("bm25.*"):
        file.unlink()
    hits = Retriever(settings, embedder).search("express shipping cost", "help", mode="bm25")
    assert "14.90 EUR" in hits[0].text


def test_langchain_retriever_returns_documents_with_citations(helpcenter):
    folder, _, retriever = helpcenter
    langchain = HelpmateRetriever(kb="help", k=2, retriever=retriever)
    documents = langchain.invoke("How many extra years of warranty do tents get?")
    assert len(documents) == 2 and all(isinstance(d, LangChainDocument) for d in documents)
    top = documents[0]
    assert "three extra years" in top.page_content
    assert top.metadata["source"] == str(folder / "warranty.pdf") and top.metadata["page"] == 2
    assert {"chunk_id", "title", "section", "score"} <= set(top.metadata)
    only_faq = HelpmateRetriever(kb="help", mode="bm25", sources=[str(folder / "faq.csv")], retriever=retriever)
    assert {d.metadata["source"] for d in only_faq.invoke("gift cards expire")} == {str(folder / "faq.csv")}


def test_metrics_on_a_hand_made_example(tmp_path):
    relevance = {"d1": 1, "d2": 2, "d7": 1}
    ranking = ["d3", "d1", "d9", "d2"]
    dcg = 1 / math.log2(3) + 2 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(ranking, relevance, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(ranking, relevance, 2) == pytest.approx((1 / math.log2(3)) / (2 + 1 / math.log2(3)))
    assert ndcg_at_k(["d2", "d1", "d7"], relevance, 10) == pytest.approx(1.0)
    assert recall_at_k(ranking, relevance, 100) == pytest.approx(2 / 3)
    assert recall_at_k(ranking, relevance, 2) == pytest.approx(1 / 3)
    assert mrr_at_k(ranking, relevance, 10) == 0.5 and mrr_at_k(ranking, relevance, 1) == 0.0
    assert ndcg_at_k([], relevance) == recall_at_k([], relevance) == mrr_at_k([], relevance) == 0.0

    def hit(source, score):
        return Hit(chunk_id=0, document_id=0, text="", source=source, title=None, section=None, page=None, score=score)

    # Chunks aggregate to their document by the best chunk's score.
    hits = [hit("/c.jsonl#d3", 0.9), hit("/c.jsonl#d1", 0.8), hit("/c.jsonl#d3", 0.95), hit("/c.jsonl#d2", 0.85)]
    assert rank_documents(hits) == ["d3", "d2", "d1"]

    qrels_file = tmp_path / "test.tsv"
    qrels_file.write_bytes(b"query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq1\td2\t2\r\nq1\td7\t1\r\nq2\td5\t1\r\n")
    qrels = load_qrels(qrels_file)
    assert qrels == {"q1": relevance, "q2": {"d5": 1}}
    ndcg, recall, mrr = score_rankings({"q1": ranking}, qrels)  # q2 has no ranking: it scores zero
    assert (ndcg, recall, mrr) == pytest.approx((dcg / idcg / 2, 1 / 3, 0.25))


def _tiny_beir(folder: Path, documents: int = 200) -> int:
    """The first SciFact documents and the test queries whose relevant documents are all among them."""
    scifact = SHARED / "datasets" / "scifact"
    if not (scifact / "corpus.jsonl").exists():
        pytest.fail(f"the shared SciFact dataset is missing from {scifact}")
    (folder / "qrels").mkdir(parents=True)
    lines = (scifact / "corpus.jsonl").read_text().splitlines()[:documents]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    kept = {json.loads(line)["_id"] for line in lines}
    qrels = load_qrels(scifact / "qrels" / "test.tsv")
    chosen = {q for q, docs in qrels.items() if set(docs) <= kept}
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\r\n" + "".join(f"{q}\t{d}\t{r}\r\n" for q in sorted(chosen) for d, r in qrels[q].items()))
    queries = [line for line in (scifact / "queries.jsonl").read_text().splitlines() if json.loads(line)["_id"] in chosen]
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n")
    return len(chosen)


@pytest.mark.slow  # embeds 200 SciFact abstracts (about 500 chunks)
def test_eval_retrieval_command_prints_scores(settings, tmp_path):
    from ui.cli import app

    beir = tmp_path / "tiny-scifact"
    queries = _tiny_beir(beir)
    assert queries >= 5
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "retrieval", "--beir", str(beir), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert {"ndcg_at_10", "recall_at_100", "mrr_at_10", "mode", "queries"} <= set(scores)
    assert scores["mode"] == "hybrid" and scores["queries"] == queries and scores["kb"] == "beir-tiny-scifact"
    assert scores["documents_ingested"] == 200
    assert scores["ndcg_at_10"] > 0.6 and scores["recall_at_100"] > 0.9  # 200 documents: the right ones rank high

    assert scores["fusion"] == "minmax" and scores["dense_weight"] == 0.5

    result = runner.invoke(app, ["eval", "retrieval", "--beir", str(beir), "--fusion", "rrf", "--json"])
    assert result.exit_code == 0, result.output
    rrf = json.loads(result.stdout)
    assert rrf["fusion"] == "rrf" and rrf["dense_weight"] is None and rrf["documents_ingested"] == 0
    assert rrf["ndcg_at_10"] > 0.6
    result = runner.invoke(app, ["eval", "retrieval", "--beir", str(beir), "--dense-weight", "0.4"])
    assert result.exit_code == 0, result.output
    assert "mode hybrid, minmax fusion, dense weight 0.4" in result.stdout

    result = runner.invoke(app, ["eval", "retrieval", "--beir", str(beir), "--mode", "bm25", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["fusion"] is None
    result = runner.invoke(app, ["eval", "retrieval", "--beir", str(beir), "--mode", "bm25"])
    assert result.exit_code == 0, result.output
    assert "nDCG@10" in result.stdout and "bm25" in result.stdout
    result = runner.invoke(app, ["eval", "retrieval", "--beir", str(beir), "--split", "dev"])
    assert result.exit_code == 1 and "dev.tsv does not exist" in result.output
    lexical, _ = _lexical_of_current_generation(settings, "beir-tiny-scifact")
    assert lexical.size >= 200 and np.all(np.diff(lexical.chunk_ids) > 0)


def test_a_heading_says_the_document_title_once():
    """Markdown section paths start with the document's title; citations and prompts say it once."""
    assert heading_path("Returns", "Returns > Refunds") == "Returns > Refunds"
    assert heading_path("Returns", "Refunds") == "Returns > Refunds"
    assert heading_path("Returns", "Returns policy > Window") == "Returns > Returns policy > Window"  # another heading
    assert heading_path("Returns", None) == "Returns" and heading_path(None, "Refunds") == "Refunds"
    assert heading_path(None, None) == ""
