"""Time to the first token of a chat answer, as the chat page sees it, with the embedded default model.

Ingests ``demo/helpcenter`` into a fresh data directory (unless ``--data-dir`` already has the
knowledge base), warms the chat backend up the way the page does (models and index loaded, a few
questions answered), then asks the answerable questions of ``demo/questions.jsonl`` one at a time
in new chat conversations and measures, from the call to the first streamed token: the customer's
message stored with its sentiment, retrieval, the prompt and the model's first token. Answers
refused before the model speaks stream no token and are counted apart. Goal: median < 2 s.

With ``--vllm-url`` the chat answers through a running vLLM server (``helpmate serve-model``) instead
of the embedded model, e.g. to compare the server's options (``--block-size``, ``--dtype``).

    python bench/first_token.py [--questions 20] [--data-dir DIR] [--vllm-url http://127.0.0.1:8000/v1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.benchlib import publish, share_checkout_models  # noqa: E402

GOAL_MS = 2000.0


def _questions(limit: int) -> list[str]:
    rows = [json.loads(line) for line in (REPO / "demo" / "questions.jsonl").read_text().splitlines() if line.strip()]
    return [row["question"] for row in rows if row.get("answer")][:limit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=20, help="timed questions (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=3, help="questions answered before timing")
    parser.add_argument("--kb", default="demo")
    parser.add_argument("--data-dir", type=Path, help="a data directory that already has the knowledge base")
    parser.add_argument("--vllm-url", help="a running vLLM server (.../v1) to answer through instead of the local model")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="helpmate-first-token-"))
    share_checkout_models()
    os.environ["HELPMATE_DATA_DIR"] = str(data_dir)
    os.environ["HELPMATE_LLM_BACKEND"] = "vllm" if args.vllm_url else "local"
    if args.vllm_url:
        os.environ["HELPMATE_VLLM_BASE_URL"] = args.vllm_url
    os.environ.pop("HELPMATE_DATABASE_URL", None)

    from assistant.config import get_settings
    from ui.chat_backend import ChatBackend, Reply, Token, knowledge_bases, start_chat

    settings = get_settings()
    if args.kb not in knowledge_bases(settings):
        from ingest.pipeline import ingest_paths

        ingest_paths([REPO / "demo" / "helpcenter"], args.kb, settings, show_progress=False)
        publish(settings, args.kb)  # the chat offers customers public knowledge bases only

    backend = ChatBackend(settings)
    began = time.perf_counter()
    backend.warm(args.kb)
    warm_s = time.perf_counter() - began
    questions = _questions(args.warmup + args.questions)
    first_token_ms: list[float] = []
    refused_ms: list[float] = []
    total_ms: list[float] = []
    for index, question in enumerate(questions):
        conversation_id = start_chat(settings, args.kb)
        asked = time.perf_counter()
        first = None
        for event in backend.ask(conversation_id, question):
            if isinstance(event, Token) and first is None:
                first = (time.perf_counter() - asked) * 1000
            elif isinstance(event, Reply):
                done = (time.perf_counter() - asked) * 1000
        if index < args.warmup:
            continue
        total_ms.append(done)
        (first_token_ms if first is not None else refused_ms).append(first if first is not None else done)

    def quantile(values: list[float], q: float) -> float | None:
        return round(statistics.quantiles(values, n=10)[int(q * 10) - 1], 1) if len(values) >= 2 else (
            round(values[0], 1) if values else None)

    result = {
        "backend": settings.llm_backend, "engine": "support agent",
        "questions": len(total_ms), "streamed": len(first_token_ms), "refused_without_tokens": len(refused_ms),
        "first_token_median_ms": round(statistics.median(first_token_ms), 1) if first_token_ms else None,
        "first_token_p90_ms": quantile(first_token_ms, 0.9),
        "whole_answer_median_ms": round(statistics.median(total_ms), 1) if total_ms else None,
        "refusal_median_ms": round(statistics.median(refused_ms), 1) if refused_ms else None,
        "warm_up_s": round(warm_s, 1), "cpu_threads": os.cpu_count(),
        # Other processes on the same cores slow prefill down in proportion; report the load with the number.
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"first token (median of {result['streamed']} streamed answers, {result['engine']}, {result['backend']} model): "
              f"{result['first_token_median_ms']} ms  (p90 {result['first_token_p90_ms']} ms; goal < {GOAL_MS:.0f} ms)")
        print(f"whole answer median {result['whole_answer_median_ms']} ms; {result['refused_without_tokens']} refused "
              f"before the model spoke (median {result['refusal_median_ms']} ms); warm-up {result['warm_up_s']} s; "
              f"load average {result['load_average_1m']} on {result['cpu_threads']} CPUs")
    median = result["first_token_median_ms"]
    return 0 if median is not None and median < GOAL_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
