"""Large-index kinds: IVF-SQ8 chosen by size, trained on a sample, parameters recorded, nprobe honoured.

Vectors are small (32 dimensions) clustered unit vectors, so k-means and exact search take
milliseconds; the 100k / 1M measurements on real embeddings are in bench/index.py.
"""

from __future__ import annotations

import json

import numpy as np
from sqlalchemy import select

from assistant.database import session_scope
from assistant.database.models import KnowledgeBase
from assistant.retrieval.vector_index import DENSE_FILE, TRAIN_PER_LIST, VectorIndex, generation_dir, ivf_lists, read_dense
from tests.conftest import SHARED, require


def _clustered(n: int, dim: int = 32, centres: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centres, dim)).astype(np.float32)
    vectors = middle[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)]))


def test_list_count_grows_with_the_square_root_of_the_size():
    assert ivf_lists(10_000) == 512
    assert ivf_lists(100_000) == 1024
    assert ivf_lists(1_000_000) == 4096
    assert ivf_lists(10**10) == 65_536


def test_kind_is_chosen_by_size_and_ivf_finds_what_exact_search_finds(tmp_path):
    vectors = _clustered(13_000)
    ids = np.arange(1000, 1000 + len(vectors), dtype=np.int64)
    queries = _clustered(200, seed=1)

    flat = VectorIndex.build(ids, vectors, exact_index_max=20_000)
    assert flat.kind == "Flat" and flat.params["kind"] == "Flat"
    ivf = VectorIndex.build(ids, vectors, exact_index_max=10_000)
    assert ivf.kind == "IVF333,SQ8" and ivf.size == len(ids)
    assert ivf.params["nlist"] == 333  # at most n // 39: every list gets 39 training vectors
    # k-means sees TRAIN_PER_LIST * nlist = 13,320 samples at most, so here the whole collection.
    assert ivf.params["trained_on"] == min(len(ids), TRAIN_PER_LIST * 333) == 13_000
    assert ivf.params["sized_for"] == 13_000

    _, exact = flat.search(queries, 10)
    _, one_list = ivf.search(queries, 10, nprobe=1)
    _, some = ivf.search(queries, 10, nprobe=16)
    _, every = ivf.search(queries, 10, nprobe=333)
    assert _recall(one_list, exact) < _recall(some, exact) <= _recall(every, exact)  # nprobe is honoured
    assert _recall(some, exact) >= 0.9
    assert _recall(every, exact) >= 0.97  # only 8-bit quantisation stands between it and exact search

    # Written with its parameters beside it, read back with them.
    ivf.write(tmp_path / DENSE_FILE)
    recorded = json.loads((tmp_path / "dense.json").read_text())
    assert recorded["kind"] == "IVF333,SQ8" and recorded["ntotal"] == len(ids) and recorded["dim"] == 32
    again = VectorIndex.read(tmp_path / DENSE_FILE)
    assert again.params["trained_on"] == 13_000 and again.kind == ivf.kind
    np.testing.assert_array_equal(again.search(queries, 10, nprobe=16)[1], some)


def test_ivf_removes_by_id_lists_its_vectors_and_retrains_when_it_outgrows_its_lists():
    vectors = _clustered(13_000)
    ids = np.arange(len(vectors), dtype=np.int64) * 7
    index = VectorIndex.build(ids, vectors, exact_index_max=10_000)
    assert index.remove(ids[:100]) == 100 and index.size == 12_900
    _, found = index.search(vectors[:5], 1, nprobe=333)
    assert not set(found.ravel()) & set(ids[:100].tolist())
    listed_ids, listed = index.vectors()
    order = np.argsort(listed_ids)
    np.testing.assert_array_equal(listed_ids[order], ids[100:])
    np.testing.assert_allclose(listed[order], vectors[100:], atol=0.02)  # decoded from 8 bits

    assert index.fit_kind(10_000) is index  # same size: kept
    more = _clustered(40_000, seed=2)
    index.add(np.arange(10**6, 10**6 + len(more), dtype=np.int64), more)
    refit = index.fit_kind(10_000)  # 52,900 vectors, 4x what its lists were sized for
    assert refit is not index and refit.kind == "IVF1024,SQ8" and refit.size == index.size
    assert refit.params["sized_for"] == index.size
    assert refit.params["trained_on"] == TRAIN_PER_LIST * 1024 == 40_960  # a sample of the 52,900, 40 per list


def test_ingestion_switches_to_ivf_and_retrieval_searches_it(settings, embedder, tmp_path):
    from assistant.retrieval.retriever import Retriever
    from ingest.pipeline import Ingestor

    corpus = SHARED / "datasets" / "scifact" / "corpus.jsonl"
    require(corpus.exists(), "shared SciFact corpus not present")
    small = tmp_path / "corpus.jsonl"
    small.write_text("\n".join(corpus.read_text().splitlines()[:120]) + "\n")
    settings.exact_index_max = 100
    settings.ivf_nprobe = 64
    summary = Ingestor("sci", settings, embedder, show_progress=False).run([small])
    assert summary.chunks_added > 100 and summary.index_kind.startswith("IVF")
    with session_scope(settings) as session:
        kb = session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == "sci"))
        assert kb.index_kind == summary.index_kind
        generation = kb.index_generation
    recorded = json.loads((generation_dir(settings, "sci", generation) / "dense.json").read_text())
    assert recorded["kind"] == summary.index_kind and recorded["ntotal"] == summary.chunks_added
    params = read_dense(settings, "sci", generation, embedder.dim).params
    assert params["trained_on"] == min(summary.chunks_added, TRAIN_PER_LIST * params["nlist"]) == recorded["trained_on"]

    first = corpus.read_text().splitlines()[0]
    title = json.loads(first)["title"]
    for mode in ("dense", "hybrid"):
        hits = Retriever(settings, embedder).search(title, "sci", k=3, mode=mode)
        assert hits[0].source.endswith("#" + json.loads(first)["_id"]), mode
