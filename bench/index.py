"""Large FAISS indexes: build time, memory, single-query latency and recall@10 at 100k and 1M vectors.

Embedding a million texts on 2 CPU cores takes hours, so the vectors are derived from real ones:

1. Base vectors: every chunk of BEIR SciFact's ``corpus.jsonl`` (5,183 abstracts), chunked and
   embedded exactly as ``helpmate ingest`` does (all-MiniLM-L6-v2, 384 dimensions, chunk settings
   from ``Settings``), and the 1,109 SciFact queries embedded the same way. Both are computed once
   and cached as ``data/bench/scifact_chunks.npy`` and ``data/bench/scifact_queries.npy``.
2. Vector i of an index of N is a perturbed copy of base vector ``i mod B`` (B base vectors):
   ``normalise(base + sigma * g / sqrt(384))`` with ``g`` standard normal (seeded), so the noise
   has norm ~``sigma`` and the copy's cosine to its original is ~``1 / sqrt(1 + sigma^2)``. With
   the default ``sigma = 0.5`` that cosine is ~0.89 (printed as measured): copies are close
   neighbours of their original and of each other (~0.80), like paraphrases, but not duplicates,
   and copies of different but related chunks interleave with them, so the top 10 are a real
   ranking problem.
3. Queries: (a) ``--queries`` held-out perturbed copies (fresh noise, not in the index) of random
   base vectors, (b) the SciFact query embeddings. Recall@10 is against exact inner-product search
   over the same N vectors (``faiss.knn``).

For each size the index kind is the one Helpmate chooses (``VectorIndex.build`` with
``HELPMATE_EXACT_INDEX_MAX``; Flat up to it, IVF-SQ8 above), with the parameters it records;
where that is Flat, the IVF index a lower limit would give is measured too, for comparison, and
with ``--hnsw`` FAISS's HNSW graph index (``HNSW{M},Flat``, efConstruction 40) beside them, over an
``efSearch`` sweep. Latency is per single query (one ``VectorIndex.search`` call, as the chat path
searches), k=10, p50/p95 over the queries, after a warm-up; the FAISS/OpenMP thread count is
printed. An nprobe sweep shows the recall/latency trade-off of IVF indexes.

    python bench/index.py [--sizes 100000 1000000] [--sigma 0.5] [--queries 1000] [--sweep 8 16 32 64] [--hnsw] [--json]
    python bench/index.py --sizes 10000 25000 50000 100000 --sweep 16 32 64   # where exact search passes 5 ms
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))
SCIFACT = REPO.parent / "shared" / "datasets" / "scifact"
CACHE = REPO / "data" / "bench"

import faiss  # noqa: E402
import numpy as np  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def base_embeddings(corpus: Path, queries_file: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """SciFact chunk and query embeddings, from the cache or computed (minutes on 2 cores)."""
    chunks_file, queries_npy, meta_file = CACHE / "scifact_chunks.npy", CACHE / "scifact_queries.npy", CACHE / "scifact.json"
    if chunks_file.exists() and queries_npy.exists() and meta_file.exists():
        return np.load(chunks_file), np.load(queries_npy), json.loads(meta_file.read_text())
    from assistant.config import Settings
    from assistant.embeddings import get_embedder
    from ingest.chunking import tokenizer_chunker
    from ingest.loaders import load_file

    settings = Settings(data_dir=CACHE)
    embedder = get_embedder(settings)
    chunker = tokenizer_chunker(embedder.tokenizer, settings.chunk_tokens, settings.chunk_overlap)
    started = time.perf_counter()
    documents = load_file(corpus)
    texts = [d.embedding_text for drafts in chunker.chunk(documents) for d in drafts]
    print(f"embedding {len(texts)} SciFact chunks of {len(documents)} documents (once; cached in {CACHE})", file=sys.stderr)
    chunks = embedder.encode(texts, show_progress=True)
    queries = embedder.encode([json.loads(line)["text"] for line in queries_file.read_text().splitlines() if line.strip()])
    meta = {"model": embedder.name, "documents": len(documents), "chunks": len(texts), "queries": len(queries),
            "chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap,
            "seconds": round(time.perf_counter() - started, 1)}
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(chunks_file, chunks)
    np.save(queries_npy, queries)
    meta_file.write_text(json.dumps(meta, indent=2) + "\n")
    return chunks, queries, meta


def perturbed(base: np.ndarray, rows: np.ndarray, sigma: float, seed: int, block: int = 100_000) -> np.ndarray:
    """normalise(base[rows] + sigma * N(0, I) / sqrt(d)), generated in blocks to bound memory."""
    rng = np.random.default_rng(seed)
    dim = base.shape[1]
    out = np.empty((len(rows), dim), dtype=np.float32)
    for start in range(0, len(rows), block):
        part = base[rows[start:start + block]] + (sigma / np.sqrt(dim)) * rng.standard_normal(
            (min(block, len(rows) - start), dim), dtype=np.float32)
        out[start:start + block] = part / np.linalg.norm(part, axis=1, keepdims=True)
    return out


def _latencies(index, queries: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
    for q in queries[:20]:  # warm-up: page in lists, start threads
        index.search(q[None, :], k, nprobe)
    times, found = [], []
    for q in queries:
        started = time.perf_counter()
        _, ids = index.search(q[None, :], k, nprobe)
        times.append(time.perf_counter() - started)
        found.append(ids[0])
    return np.asarray(times) * 1000, np.asarray(found)


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(e)) / len(e) for f, e in zip(found, exact)]))


def measure(n: int, base: np.ndarray, scifact_queries: np.ndarray, args, settings) -> dict:
    from assistant.retrieval.vector_index import VectorIndex

    b = len(base)
    rows = np.arange(n) % b
    vectors = perturbed(base, rows, args.sigma, seed=n)
    cosine = float(np.mean(np.einsum("ij,ij->i", vectors[:20_000], base[rows[:20_000]])))
    same_base = float(np.mean(np.einsum("ij,ij->i", vectors[:5000], vectors[b:b + 5000]))) if n >= b + 5000 else None
    rng = np.random.default_rng(n + 1)
    held_out = perturbed(base, rng.integers(0, b, args.queries), args.sigma, seed=n + 2)
    query_sets = {"held_out_copies": held_out, "scifact_queries": scifact_queries}

    exact = {}
    started = time.perf_counter()
    for name, queries in query_sets.items():
        _, exact[name] = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
    exact_seconds = time.perf_counter() - started

    result = {
        "vectors": n, "base_vectors": b, "sigma": args.sigma, "mean_cosine_copy_to_original": round(cosine, 4),
        "mean_cosine_between_copies_of_one_chunk": None if same_base is None else round(same_base, 4),
        "exact_search_s": round(exact_seconds, 1), "omp_threads": faiss.omp_get_max_threads(), "indexes": [],
    }
    limits = [settings.exact_index_max]
    if n <= settings.exact_index_max and args.compare_ivf:
        limits.append(0)  # what IVF would give at this size (as with HELPMATE_EXACT_INDEX_MAX below it)
    for limit in limits:
        gc.collect()
        rss_before = _rss_mb()
        started = time.perf_counter()
        index = VectorIndex.build(np.arange(n, dtype=np.int64), vectors, limit)
        build_seconds = time.perf_counter() - started
        entry = {"kind": index.kind, "chosen": limit == settings.exact_index_max, "params": index.params,
                 "build_s": round(build_seconds, 1), "index_mb": round(len(faiss.serialize_index(index.index)) / 2**20, 1),
                 "rss_growth_mb": round(_rss_mb() - rss_before, 1), "runs": []}
        probes = [settings.ivf_nprobe] + [p for p in args.sweep if p != settings.ivf_nprobe] if index.kind != "Flat" else [0]
        for nprobe in probes:
            run = {"nprobe": nprobe or None, "default": nprobe in (0, settings.ivf_nprobe)}
            for name, queries in query_sets.items():
                times, found = _latencies(index, queries, 10, nprobe or 1)
                run[name] = {"queries": len(queries), "p50_ms": round(float(np.percentile(times, 50)), 3),
                             "p95_ms": round(float(np.percentile(times, 95)), 3),
                             "recall_at_10": round(_recall(found, exact[name]), 4)}
            entry["runs"].append(run)
        result["indexes"].append(entry)
        del index
    if args.hnsw:
        gc.collect()
        result["indexes"].append(_hnsw(vectors, query_sets, exact, args))
    del vectors
    gc.collect()
    return result


class _HNSW:
    """FAISS's HNSW graph over the vectors, searched like ``VectorIndex.search`` (efSearch per call).

    Measured only: Helpmate's indexes must remove vectors by id (incremental ingestion), which HNSW cannot.
    """

    def __init__(self, vectors: np.ndarray, m: int):
        self.index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        self.index.add(vectors)

    def search(self, queries: np.ndarray, k: int, ef_search: int):
        return self.index.search(queries, k, params=faiss.SearchParametersHNSW(efSearch=ef_search))


def _hnsw(vectors: np.ndarray, query_sets: dict, exact: dict, args) -> dict:
    rss_before = _rss_mb()
    started = time.perf_counter()
    index = _HNSW(vectors, args.hnsw_m)
    entry = {"kind": f"HNSW{args.hnsw_m},Flat", "chosen": False,
             "params": {"M": args.hnsw_m, "efConstruction": index.index.hnsw.efConstruction},
             "build_s": round(time.perf_counter() - started, 1),
             "index_mb": round(len(faiss.serialize_index(index.index)) / 2**20, 1),
             "rss_growth_mb": round(_rss_mb() - rss_before, 1), "runs": []}
    for ef in args.ef_search:
        run = {"nprobe": None, "efSearch": ef, "default": False}
        for name, queries in query_sets.items():
            times, found = _latencies(index, queries, 10, ef)
            run[name] = {"queries": len(queries), "p50_ms": round(float(np.percentile(times, 50)), 3),
                         "p95_ms": round(float(np.percentile(times, 95)), 3),
                         "recall_at_10": round(_recall(found, exact[name]), 4)}
        entry["runs"].append(run)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--sigma", type=float, default=0.5, help="noise norm added to each copy before re-normalising")
    parser.add_argument("--queries", type=int, default=1000, help="held-out perturbed queries")
    parser.add_argument("--sweep", type=int, nargs="*", default=[8, 16, 32, 64], help="nprobe values to measure for IVF")
    parser.add_argument("--no-compare-ivf", dest="compare_ivf", action="store_false",
                        help="at sizes that get a flat index, do not also measure the IVF index a lower limit would give")
    parser.add_argument("--hnsw", action="store_true", help="also measure FAISS's HNSW index at each size")
    parser.add_argument("--hnsw-m", type=int, default=32, help="HNSW links per vector (M)")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[16, 32, 64, 128], help="HNSW efSearch values")
    parser.add_argument("--json", action="store_true", help="print one JSON object per size")
    args = parser.parse_args()

    from assistant.config import Settings

    settings = Settings(data_dir=CACHE)
    base, scifact_queries, meta = base_embeddings(SCIFACT / "corpus.jsonl", SCIFACT / "queries.jsonl")
    print(f"# base: {meta['chunks']} SciFact chunk embeddings ({meta['model']}, {meta['documents']} documents); "
          f"{len(scifact_queries)} SciFact queries; exact_index_max={settings.exact_index_max}, "
          f"ivf_nprobe={settings.ivf_nprobe}; FAISS {faiss.__version__}, {faiss.omp_get_max_threads()} OpenMP threads, "
          f"{os.cpu_count()} CPUs")
    for n in args.sizes:
        result = measure(n, base, scifact_queries, args, settings)
        if args.json:
            print(json.dumps(result))
            continue
        print(f"\n## {n:,} vectors: copies with sigma={args.sigma}: mean cosine copy->original "
              f"{result['mean_cosine_copy_to_original']}, between two copies of one chunk "
              f"{result['mean_cosine_between_copies_of_one_chunk']}; exact ground truth in {result['exact_search_s']} s")
        for entry in result["indexes"]:
            print(f"   {entry['kind']} ({'chosen at this size' if entry['chosen'] else 'not chosen: for comparison'})  "
                  f"params={json.dumps(entry['params'])}")
            print(f"   build {entry['build_s']} s, index {entry['index_mb']} MB serialized, RSS +{entry['rss_growth_mb']} MB")
            print(f"   {'nprobe':>7}  {'held-out copies: p50 / p95 ms, recall@10':>42}  {'SciFact queries: p50 / p95 ms, recall@10':>42}")
            for run in entry["runs"]:
                cells = [f"{run[q]['p50_ms']:7.3f} / {run[q]['p95_ms']:7.3f} ms, {run[q]['recall_at_10']:.4f}"
                         for q in ("held_out_copies", "scifact_queries")]
                label = (f"ef {run['efSearch']}" if run.get("efSearch")
                         else f"{run['nprobe'] or 'exact'}{'*' if run['default'] and run['nprobe'] else ''}")
                print(f"   {label:>7}  {cells[0]:>42}  {cells[1]:>42}")
    print("\n(* = HELPMATE_IVF_NPROBE default; latency: one query per call, k=10)")


if __name__ == "__main__":
    main()
