"""Embedding backends side by side: speed and quality in one run, on the same texts, and the default they call for.

For each backend of ``HELPMATE_EMBEDDING_BACKEND`` (``assistant/embeddings.py``; default: all of them):

- speed, in texts per second: short real messages (Banking77 requests, VADER's tweets and review
  snippets) and SciFact chunks of up to 200 word pieces (cut as ``helpmate ingest`` cuts them), each
  in batches (``HELPMATE_EMBEDDING_BATCH_SIZE``) and one text per call (the chat path); the backends
  take turns for ``--rounds`` rounds and the best round counts, so a burst of load on a shared machine
  hits them alike. Also the sentiment model's one-message median: ``score`` (the chat path's, a traced
  encoder) and ``score_batch`` of one text (eager transformers, the chat path before the trace);
- the largest cosine distance (1 - cosine) of its vectors to float32 ``torch`` over the same texts;
- SST-2 dev accuracy of the sentiment model (its merged encoder on the backend, head unchanged), scored
  in batches and one message at a time (int8's activation scales are set per call, so the two differ);
- BEIR SciFact test nDCG@10, hybrid (the default search) and dense: the corpus is ingested with the
  backend into ``--work``/scifact-BACKEND (kept: a later run reuses it and prints 0 s of ingestion).

The default is then the fastest backend on 200-word-piece chunks in batches (what ingestion does)
whose SciFact hybrid nDCG@10 and SST-2 accuracy are each at most 0.005 below float32 torch's; the
sentiment model's one-message default (``HELPMATE_SENTIMENT_BACKEND``) the fastest at scoring one message
(what the chat does) whose SST-2 accuracy, scored that way, is at most 0.005 below float32's.

    python bench/embed.py [--backends torch torch-bf16 torch-int8] [--rounds 2] [--no-scifact] [--json]

A full run ingests SciFact (12,875 chunks) once per backend: most of an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]  # bench/ingest.py would shadow ingest/
sys.path.insert(0, str(REPO))
DATASETS = REPO.parent / "shared" / "datasets"
MAX_DROP = 0.005  # SciFact hybrid nDCG@10 and SST-2 accuracy a faster default may lose against float32


def short_messages(n: int) -> list[str]:
    """Real short texts: Banking77 customer requests and VADER's tweets and product-review snippets."""
    from assistant.sentiment.data import read_vader_groundtruth

    with (DATASETS / "banking77" / "train.csv").open(newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    for name in ("tweets_GroundTruth.txt", "amazonReviewSnippets_GroundTruth.txt"):
        texts += read_vader_groundtruth(DATASETS / "vader_groundtruth" / name)[0]
    random.Random(0).shuffle(texts)
    return texts[:n]


def scifact_chunks(embedder, settings, n: int) -> list[str]:
    """The first ``n`` chunk texts of SciFact's corpus, cut and titled as ingestion cuts them."""
    from ingest.chunking import tokenizer_chunker
    from ingest.loaders import load_file

    chunker = tokenizer_chunker(embedder.tokenizer, settings.chunk_tokens, settings.chunk_overlap)
    documents = load_file(DATASETS / "scifact" / "corpus.jsonl")[: n]
    texts = [d.embedding_text for drafts in chunker.chunk(documents) for d in drafts]
    return texts[:n]


def rate(work, count: int) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def speed(embedder, sentiment, texts: dict[str, list[str]], single: int) -> dict:
    """Texts per second of one round, per kind of text and way of calling; the sentiment one-message median."""
    out = {}
    for kind, items in texts.items():
        out[f"{kind}_batch"] = rate(lambda: embedder.encode(items), len(items))
        ones = items[:single]
        out[f"{kind}_one_at_a_time"] = rate(lambda: [embedder.encode([t]) for t in ones], len(ones))
    for key, score in (("sentiment_one_message_ms", sentiment.score), ("sentiment_eager_ms", lambda t: sentiment.score_batch([t]))):
        times = []
        for text in texts["short"][:single]:
            started = time.perf_counter()
            score(text)
            times.append((time.perf_counter() - started) * 1000)
        out[key] = statistics.median(times)
    return out


def scifact(settings, work: Path, backend: str) -> dict:
    """Ingest SciFact with ``backend`` into its own data directory (reused when there) and score the test split."""
    from assistant.database import dispose_engines
    from assistant.retrieval.evaluation import evaluate_beir
    from assistant.retrieval.retriever import Retriever
    from ingest.pipeline import ingest_paths

    data = settings.model_copy(update={"data_dir": work / f"scifact-{backend}", "models_dir": work / "models",
                                       "database_url": "", "embedding_backend": backend})
    data.data_dir.mkdir(parents=True, exist_ok=True)
    summary = ingest_paths([DATASETS / "scifact" / "corpus.jsonl"], "scifact", data, show_progress=False)
    retriever = Retriever(data)
    if retriever.embedder.backend != backend:
        raise SystemExit(f"SciFact was queried with the {retriever.embedder.backend} backend, not {backend}")
    hybrid = evaluate_beir(retriever, "scifact", DATASETS / "scifact", "test", "hybrid")
    dense = evaluate_beir(retriever, "scifact", DATASETS / "scifact", "test", "dense")
    dispose_engines()
    return {"hybrid_ndcg_at_10": round(hybrid.ndcg_at_10, 4), "dense_ndcg_at_10": round(dense.ndcg_at_10, 4),
            "ingest_s": round(summary.seconds, 1), "chunks_ingested": summary.chunks_added}


# Per workload: the SST-2 accuracy that judges it, the speed that ranks it, whether more or less is faster.
RULES = {
    "embedding": ("sst2_accuracy", "chunks_batch", max, "slower on batched chunks"),
    "sentiment": ("sst2_one_at_a_time", "sentiment_one_message_ms", min, "slower at one message"),
}


def choose(results: dict[str, dict], workload: str = "embedding") -> tuple[str, dict[str, str]]:
    """The fastest backend whose quality is within ``MAX_DROP`` of torch's, and why each other lost.

    ``embedding``: fastest on batched chunks, judged on SST-2 (scored in batches) and SciFact; ``sentiment``:
    fastest at one message, judged on SST-2 scored one message at a time, as the chat scores (sentiment
    vectors never meet an index)."""
    accuracy, speed_key, fastest, slower = RULES[workload]
    base = results["torch"]
    why: dict[str, str] = {}
    eligible = []
    for backend, r in results.items():
        drops = {"SST-2": base[accuracy] - r[accuracy]}
        if workload == "embedding" and "scifact" in r and "scifact" in base:
            drops["SciFact hybrid nDCG@10"] = base["scifact"]["hybrid_ndcg_at_10"] - r["scifact"]["hybrid_ndcg_at_10"]
        failed = [f"{name} -{drop:.4f}" for name, drop in drops.items() if drop > MAX_DROP]
        if failed:
            why[backend] = "quality: " + ", ".join(failed)
        else:
            eligible.append(backend)
    best = fastest(eligible, key=lambda b: results[b]["speed"][speed_key])
    for backend in eligible:
        if backend != best:
            why[backend] = slower
    return best, why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=None, help="default: every backend (torch first)")
    parser.add_argument("--short", type=int, default=512, help="short messages timed")
    parser.add_argument("--chunks", type=int, default=256, help="SciFact chunks timed")
    parser.add_argument("--single", type=int, default=64, help="texts of each kind timed one per call")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the speed measures (the best counts)")
    parser.add_argument("--no-scifact", dest="scifact", action="store_false", help="skip the SciFact ingestion and nDCG")
    parser.add_argument("--work", type=Path, default=REPO / "data" / "bench" / "embed", help="SciFact data directories")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    import torch

    from assistant.config import Settings
    from assistant.embeddings import BACKENDS, cpu_has_bf16, distance, get_embedder
    from assistant.sentiment.data import read_labelled
    from assistant.sentiment.evaluation import evaluate, metrics
    from assistant.sentiment.model import get_sentiment_model

    backends = list(dict.fromkeys(["torch", *(args.backends or BACKENDS)]))
    base = Settings(data_dir=args.work)
    loaded = {b: (get_embedder(base.model_copy(update={"embedding_backend": b})),
                  get_sentiment_model(base.model_copy(update={"embedding_backend": b, "sentiment_backend": b})))
              for b in backends}
    texts = {"short": short_messages(args.short), "chunks": scifact_chunks(loaded["torch"][0], base, args.chunks)}
    for embedder, sentiment in loaded.values():  # warm-up: first calls allocate and pick kernels
        embedder.encode(texts["chunks"][:32])
        sentiment.score_batch(texts["short"][:32])

    rounds: dict[str, list[dict]] = {b: [] for b in backends}
    for number in range(args.rounds):
        for backend in backends:
            rounds[backend].append(speed(*loaded[backend], texts, args.single))
            print(f"round {number + 1} {backend}: " + ", ".join(f"{k} {v:.1f}" for k, v in rounds[backend][-1].items()),
                  file=sys.stderr)
    reference = {kind: loaded["torch"][0].encode(items) for kind, items in texts.items()}
    sst2 = read_labelled(DATASETS / "sst2" / "dev.tsv", "tsv")
    results: dict[str, dict] = {}
    for backend in backends:
        embedder, sentiment = loaded[backend]
        best = {key: (min if key.endswith("_ms") else max)(r[key] for r in rounds[backend]) for key in rounds[backend][0]}
        results[backend] = {
            "speed": {k: round(v, 2) for k, v in best.items()},
            "max_cosine_distance_to_float32": round(max(distance(reference[k], embedder.encode(v)) for k, v in texts.items()), 6),
            "sst2_accuracy": round(evaluate(sst2, [sentiment])["helpmate"]["accuracy"], 4),
            "sst2_one_at_a_time": round(metrics(sst2.labels, [sentiment.score(t) for t in sst2.texts], binary=True)["accuracy"], 4),
        }
        if args.scifact:
            print(f"SciFact with {backend} ...", file=sys.stderr)
            results[backend]["scifact"] = scifact(base, args.work, backend)
    default, why = choose(results)
    sentiment_default, sentiment_why = choose(results, "sentiment")
    output = {"backends": results, "default": default, "not_chosen": why, "sentiment_default": sentiment_default,
              "sentiment_one_message_vs_float32_eager": round(results[sentiment_default]["speed"]["sentiment_one_message_ms"]
                                                              / results["torch"]["speed"]["sentiment_eager_ms"], 3),
              "sentiment_not_chosen": sentiment_why, "max_drop": MAX_DROP,
              "texts": {k: len(v) for k, v in texts.items()}, "single": args.single, "rounds": args.rounds,
              "cpu_bf16": cpu_has_bf16(), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "load_average_1m": round(os.getloadavg()[0], 2)}
    if args.json:
        print(json.dumps(output, indent=2))
        return
    ref = results["torch"]["speed"]
    print(f"{len(texts['short'])} short messages, {len(texts['chunks'])} SciFact chunks; {args.single} of each one per call; "
          f"best of {args.rounds} rounds; torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: "
          f"{cpu_has_bf16()}, load {output['load_average_1m']}")
    print(f"{'backend':11} {'short/s':>8} {'short 1x/s':>10} {'chunks/s':>9} {'chunk 1x/s':>10} {'senti ms':>8} {'eager':>6} "
          f"{'cos dist':>9} {'SST-2':>7} {'1x':>7} {'SciFact hybrid':>14} {'dense':>7}")
    for backend, r in results.items():
        s, sci = r["speed"], r.get("scifact", {})
        print(f"{backend:11} {s['short_batch']:8.1f} {s['short_one_at_a_time']:10.1f} {s['chunks_batch']:9.1f} "
              f"{s['chunks_one_at_a_time']:10.1f} {s['sentiment_one_message_ms']:8.2f} {s['sentiment_eager_ms']:6.2f} "
              f"{r['max_cosine_distance_to_float32']:9.2e} "
              f"{r['sst2_accuracy']:7.4f} {r['sst2_one_at_a_time']:7.4f} {sci.get('hybrid_ndcg_at_10', float('nan')):14.4f} {sci.get('dense_ndcg_at_10', float('nan')):7.4f}"
              f"   ({s['chunks_batch'] / ref['chunks_batch']:.2f}x torch on batched chunks)")
    print(f"default: {default}" + "".join(f"; {b}: {reason}" for b, reason in why.items()))
    print(f"sentiment default: {sentiment_default}" + "".join(f"; {b}: {reason}" for b, reason in sentiment_why.items()))
    print(f"sentiment, one message: {sentiment_default} {output['sentiment_one_message_vs_float32_eager']:.2f}x float32 "
          "eager (the chat path before the trace)")


if __name__ == "__main__":
    main()
