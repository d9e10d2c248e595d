"""Serving throughput: how much Helpmate adds on top of vLLM, and what vLLM gains over in-process generation.

The first ``--questions`` (default 32) of the 40 answerable questions of ``demo/questions.jsonl``
(help center in ``demo/helpcenter``, ingested into a fresh data directory; beyond 40 the questions
come round again after a greeting, "Hello! ...", so that no text repeats within a run) are sent at
each concurrency through:

(a) ``full``:   the whole Helpmate path with the ``vllm`` backend (``SupportAgent.respond``: store the
                message with its sentiment, route, retrieve, prompt, generate, support check, store
                the reply), one new conversation per question;
(b) ``direct``: the same prompts (built once from the same retrieval) straight to the vLLM server;
(c) ``local``:  the same prompts of the same questions through the ``local`` backend (transformers in
                this process), one at a time (concurrency 1 only: the in-process model serves one
                request at a time), so that (a)/(c) compares the same work.

The query-time embedding cache is emptied before each run of the full path: a run starts cold,
and the sentences of passages warm up as questions about the same documents come in. Each mode
runs with the torch threads Helpmate would use in that deployment (``use_answering_threads``):
one beside a vLLM server on this machine's CPU, every core for the local backend.
It prints questions per second and p50/p95 latency per mode and concurrency, and the ratios
(a)/(b) and (a)/(c) of throughput. A vLLM server is started for the run (``helpmate serve-model``'s
machinery) unless ``--base-url`` names a running one.

``--dtype`` sets the server's weights (default: ``helpmate serve-model``'s, bfloat16 where the CPU
has it natively, else float32; with ``--base-url`` it only names the running server's); the local
backend stays float32. ``--no-local`` skips mode (c).

    python bench/serve.py [--concurrency 1 4 16] [--questions 32] [--dtype float32|bfloat16] [--no-local] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
# Put before a question so that every text of a run is new to the embedding cache.
OPENERS = ("", "Hello! ", "Hi, a quick question. ", "Good morning. ", "Hey there. ")
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench.benchlib import customer_conversation, percentile, publish, share_checkout_models, vllm_server  # noqa: E402


def measure(work: Callable[[str], object], items: list[str], concurrency: int) -> dict:
    """Run ``work`` over ``items`` with ``concurrency`` threads: throughput and latency percentiles."""
    latencies: list[float] = []

    def timed(item: str) -> None:
        started = time.perf_counter()
        work(item)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(timed, items))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"concurrency": concurrency, "requests": len(items), "seconds": round(elapsed, 2),
            "per_s": round(len(items) / elapsed, 3), "p50_s": round(statistics.median(ordered), 3),
            "p95_s": round(percentile(ordered, 0.95), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--questions", type=int, default=32,
                        help="Questions per run, for every mode: the answerable demo questions in order, then again after "
                             f"greetings (at most {len(OPENERS)} rounds).")
    parser.add_argument("--base-url", help="A running vLLM server (…/v1); default: start one for this run.")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), help="the vLLM server's weights (default: serve-model's)")
    parser.add_argument("--no-local", dest="local", action="store_false", help="skip the local backend (mode c)")
    parser.add_argument("--json", action="store_true", help="Print the results as one JSON object.")
    args = parser.parse_args()

    from assistant.agent import SupportAgent
    from assistant.answering.assistant import ANSWER_OPTIONS
    from assistant.config import get_settings
    from assistant.llm.base import GenerationOptions
    from assistant.llm.factory import use_answering_threads
    from assistant.llm.local import LocalChatModel
    from assistant.llm.vllm import VLLMChatModel
    from assistant.answering.prompts import build_messages
    from ingest.pipeline import ingest_paths

    questions = [json.loads(line) for line in (REPO / "demo" / "questions.jsonl").read_text().splitlines() if line.strip()]
    answerable = [q["question"] for q in questions if q.get("source")]  # those the help center answers
    items = [opener + question for opener in OPENERS for question in answerable][: args.questions]
    if len(items) < args.questions:
        raise SystemExit(f"--questions is at most {len(items)}: {len(answerable)} answerable questions x {len(OPENERS)} greetings")

    with tempfile.TemporaryDirectory() as tmp:
        share_checkout_models()
        os.environ["HELPMATE_DATA_DIR"] = tmp
        get_settings.cache_clear()
        base = get_settings()
        summary = ingest_paths([REPO / "demo" / "helpcenter"], "demo", base, show_progress=False)
        if summary.failed:
            raise SystemExit(f"could not ingest the demo help center: {summary.failed}")
        publish(base, "demo")
        with vllm_server(base, args.base_url, args.dtype) as base_url:
            settings = base.model_copy(update={"llm_backend": "vllm", "vllm_base_url": base_url, "vllm_timeout_s": 600.0})
            agent = SupportAgent(settings)
            # The prompts the full path sends, built from the same retrieval.
            prompts = {}
            for question in set(items):
                draft = agent.assistant.retrieve(question, "demo")
                prompts[question] = build_messages(draft.question, draft.hits, draft.history)
            direct = VLLMChatModel.from_settings(settings)
            local = LocalChatModel(base)
            if args.local:
                local.generate(prompts[items[0]], ANSWER_OPTIONS)  # load and warm up
            # Every prompt once through vLLM first, so that its prefix cache holds them all for every
            # mode and concurrency alike (else the first run alone would compute them afresh).
            for question in set(items):
                direct.generate(prompts[question], GenerationOptions(max_tokens=1))
            conversation, customer = customer_conversation(agent, "demo")
            agent.respond(conversation, items[0], caller=customer)

            def full(question: str) -> None:
                conversation, customer = customer_conversation(agent, "demo")
                agent.respond(conversation, question, caller=customer)

            results: dict[str, list[dict]] = {"full": [], "direct": [], "local": []}
            use_answering_threads(settings)
            for concurrency in args.concurrency:
                for mode, work in (("direct", lambda q: direct.generate(prompts[q], ANSWER_OPTIONS)), ("full", full)):
                    agent.assistant.retriever.embedder.clear_cache()
                    row = measure(work, items, concurrency)
                    results[mode].append(row)
                    print(f"{mode:7s} c={concurrency:<3d} {row['per_s']:6.2f} q/s  p50 {row['p50_s']:6.2f} s  "
                          f"p95 {row['p95_s']:6.2f} s", file=sys.stderr)
            if args.local:
                print(f"local backend on {use_answering_threads(base)} threads", file=sys.stderr)
                row = measure(lambda q: local.generate(prompts[q], ANSWER_OPTIONS), items, 1)
                results["local"].append(row)
                print(f"local   c=1   {row['per_s']:6.2f} q/s  p50 {row['p50_s']:6.2f} s  p95 {row['p95_s']:6.2f} s", file=sys.stderr)

    local_rate = results["local"][0]["per_s"] if results["local"] else None
    ratios = [{"concurrency": f["concurrency"], "full_over_direct": round(f["per_s"] / d["per_s"], 3),
               "full_over_local": round(f["per_s"] / local_rate, 2) if local_rate else None}
              for f, d in zip(results["full"], results["direct"])]
    from assistant.llm.vllm_server import default_dtype

    output = {"questions": len(items), "dtype": args.dtype or default_dtype(), "results": results, "ratios": ratios,
              "machine": f"{os.cpu_count()} CPUs"}
    if args.json:
        print(json.dumps(output, indent=2))
        return
    print(f"{'mode':8s} {'conc':>4s} {'q/s':>7s} {'p50 s':>7s} {'p95 s':>7s}")
    for mode in ("full", "direct", "local"):
        for row in results[mode]:
            print(f"{mode:8s} {row['concurrency']:4d} {row['per_s']:7.2f} {row['p50_s']:7.2f} {row['p95_s']:7.2f}")
    for ratio in ratios:
        print(f"concurrency {ratio['concurrency']:>2}: full/direct = {ratio['full_over_direct']:.2f}"
              + (f", full/local(one at a time) = {ratio['full_over_local']:.2f}x" if ratio["full_over_local"] else ""))


if __name__ == "__main__":
    main()
