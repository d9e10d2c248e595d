"""What the HTTP API costs: the same questions through `helpmate api` and through the same agent in-process.

The demo help center (``demo/helpcenter``) is ingested into a fresh data directory and a vLLM server
is started for the run (``helpmate serve-model``'s machinery) unless ``--base-url`` names a running
one. Both modes answer with the ``vllm`` backend on that server:

(a) ``in-process``: ``SupportAgent.respond`` in this process, one new conversation per question, with
                    a customer caller (what the web chat does);
(b) ``api``:        ``POST /v1/chat/completions`` (non-streaming, a customer key) to `helpmate api`
                    running as its own process (one worker), which runs the same agent.

At each concurrency (1, 4, 16 by default) ``--questions`` (32) of the answerable questions of
``demo/questions.jsonl`` run through (a), then the same texts through (b), each mode with as many
client threads as the concurrency. Every level uses its own texts (the questions after another
greeting), so neither process's query-embedding cache has seen them; both caches start empty and fill
alike. Before the runs every prompt goes through vLLM once (one token), so its prefix cache holds
them for both modes alike.
It prints questions per second and p50/p95 latency per mode and concurrency, and the ratio api /
in-process of throughput (goal at 16: at least 0.90).

    python bench/api.py [--concurrency 1 4 16] [--questions 32] [--base-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
OPENERS = ("", "Hello! ", "Hi, a quick question. ", "Good morning. ", "Hey there. ")
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench.benchlib import free_port, customer_conversation, percentile, publish, share_checkout_models, vllm_server  # noqa: E402


def measure(work: Callable[[str], bool], items: list[str], concurrency: int) -> dict:
    """Run ``work`` (True when answered) over ``items`` with ``concurrency`` threads."""
    latencies: list[float] = []
    errors = 0

    def timed(item: str) -> None:
        nonlocal errors
        started = time.perf_counter()
        ok = work(item)
        latencies.append(time.perf_counter() - started)
        errors += not ok

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(timed, items))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"concurrency": concurrency, "questions": len(items), "seconds": round(elapsed, 2),
            "per_s": round(len(items) / elapsed, 3), "p50_s": round(statistics.median(ordered), 3),
            "p95_s": round(percentile(ordered, 0.95), 3), "errors": errors}


def start_api(data_dir: str, base_url: str) -> tuple[subprocess.Popen, str]:
    """`helpmate api` (one worker) on a free port of this machine, answering with vLLM at ``base_url``."""
    import httpx

    port = free_port()
    env = {**os.environ, "HELPMATE_DATA_DIR": data_dir, "HELPMATE_LLM_BACKEND": "vllm", "HELPMATE_VLLM_BASE_URL": base_url,
           "HELPMATE_VLLM_TIMEOUT_S": "600"}
    env.pop("HELPMATE_DATABASE_URL", None)
    process = subprocess.Popen([sys.executable, "-m", "ui.cli", "api", "--port", str(port), "--log-level", "warning"],
                               cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr)  # keeps --json clean
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"helpmate api exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    process.terminate()
    raise SystemExit("helpmate api was not ready within 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--questions", type=int, default=32, help="Questions per mode and concurrency (at most 40).")
    parser.add_argument("--base-url", help="A running vLLM server (…/v1); default: start one for this run.")
    parser.add_argument("--json", action="store_true", help="Print the results as one JSON object.")
    args = parser.parse_args()
    if len(args.concurrency) > len(OPENERS):
        raise SystemExit(f"at most {len(OPENERS)} concurrency levels (each gets its own texts)")

    import httpx

    from assistant.access import Caller
    from assistant.agent import SupportAgent
    from assistant.answering.prompts import build_messages
    from assistant.config import get_settings
    from assistant.llm.base import GenerationOptions
    from assistant.llm.vllm import VLLMChatModel
    from ingest.pipeline import ingest_paths
    from ui.api.keys import create_key

    questions = [json.loads(line) for line in (REPO / "demo" / "questions.jsonl").read_text().splitlines() if line.strip()]
    answerable = [q["question"] for q in questions if q.get("source")][: args.questions]
    levels = {concurrency: [OPENERS[i] + q for q in answerable] for i, concurrency in enumerate(args.concurrency)}

    with tempfile.TemporaryDirectory() as tmp:
        share_checkout_models()
        os.environ["HELPMATE_DATA_DIR"] = tmp
        os.environ.pop("HELPMATE_DATABASE_URL", None)
        get_settings.cache_clear()
        base = get_settings()
        summary = ingest_paths([REPO / "demo" / "helpcenter"], "demo", base, show_progress=False)
        if summary.failed:
            raise SystemExit(f"could not ingest the demo help center: {summary.failed}")
        admin = Caller.staff("admin", "bench")
        publish(base, "demo")
        api_key, _ = create_key(base, "customer", ["demo"], "bench", 1_000_000, admin)
        with vllm_server(base, args.base_url) as base_url:
            settings = base.model_copy(update={"llm_backend": "vllm", "vllm_base_url": base_url, "vllm_timeout_s": 600.0})
            agent = SupportAgent(settings)
            direct = VLLMChatModel.from_settings(settings)
            for texts in levels.values():  # every prompt once through vLLM: its prefix cache holds them for both modes
                for text in texts:
                    draft = agent.assistant.retrieve(text, "demo")
                    direct.generate(build_messages(draft.question, draft.hits, draft.history), GenerationOptions(max_tokens=1))

            def in_process(text: str) -> bool:
                conversation, customer = customer_conversation(agent, "demo")
                return bool(agent.respond(conversation, text, caller=customer).text)

            in_process("Warm-up: how do I return an item?")
            # Both processes start the runs with empty query-embedding caches and fill them alike from here
            # on (later levels reuse the passage sentences embedded in earlier ones, in each process).
            agent.assistant.retriever.embedder.clear_cache()
            process, url = start_api(tmp, base_url)
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {api_key}"}, timeout=600,
                                  limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))

            def through_api(text: str) -> bool:
                response = client.post("/v1/chat/completions", json={
                    "model": "helpmate/demo", "messages": [{"role": "user", "content": text}], "channel": "bench"})
                return response.status_code == 200 and bool(response.json()["choices"][0]["message"]["content"])

            try:
                through_api("Warm-up: how do I return an item?")
                results: dict[str, list[dict]] = {"in-process": [], "api": []}
                for concurrency, texts in levels.items():
                    for mode, work in (("in-process", in_process), ("api", through_api)):
                        row = measure(work, texts, concurrency)
                        results[mode].append(row)
                        print(f"{mode:10s} c={concurrency:<3d} {row['per_s']:6.2f} q/s  p50 {row['p50_s']:6.2f} s  "
                              f"p95 {row['p95_s']:6.2f} s  errors {row['errors']}", file=sys.stderr, flush=True)
            finally:
                client.close()
                process.terminate()
                process.wait(60)

    ratios = [{"concurrency": a["concurrency"], "api_over_in_process": round(a["per_s"] / i["per_s"], 3)}
              for a, i in zip(results["api"], results["in-process"])]
    output = {"questions": len(answerable), "results": results, "ratios": ratios, "machine": f"{os.cpu_count()} CPUs"}
    if args.json:
        print(json.dumps(output, indent=2))
        return
    print(f"{'mode':11s} {'conc':>4s} {'q/s':>7s} {'p50 s':>7s} {'p95 s':>7s} {'errors':>6s}")
    for mode in ("in-process", "api"):
        for row in results[mode]:
            print(f"{mode:11s} {row['concurrency']:4d} {row['per_s']:7.2f} {row['p50_s']:7.2f} {row['p95_s']:7.2f} {row['errors']:6d}")
    for ratio in ratios:
        print(f"concurrency {ratio['concurrency']:>2}: api / in-process = {ratio['api_over_in_process']:.2f}")


if __name__ == "__main__":
    main()
