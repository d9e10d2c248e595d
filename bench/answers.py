"""Grounded-answer quality on the demo help center: `helpmate eval answers` on a fresh data directory.

Ingests ``demo/helpcenter`` into a temporary data directory, then runs what `helpmate eval answers
--file demo/questions.jsonl --kb demo` runs (``assistant.answering.answer_eval``: answer kinds,
model answers kept, term containment, first-citation accuracy, refusals, token-F1 and ROUGE-L
against the reference answers, latency, the refusal gate's trade-off), and adds one measure of
its own: follow-up questions (``bench/followups.jsonl``), how often retrieval finds the expected
source for the raw follow-up, the rule-based rewrite the assistant uses, and a rewrite by the
model; and how often a standalone question is left unchanged by the rule.

    python bench/answers.py [--backend local|vllm] [--no-followups] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"]
sys.path.insert(0, str(REPO))

from bench.benchlib import share_checkout_models  # noqa: E402

LLM_REWRITE_PROMPT = (
    "Rewrite the customer's last question so that it can be understood without the conversation. "
    "Reply with the rewritten question only."
)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def run_followups(assistant, followups: list[dict], questions: list[dict]) -> dict:
    from assistant.llm.base import GenerationOptions
    from assistant.answering.answer_eval import is_source
    from assistant.answering.prompts import rewrite_followup

    turns = assistant.settings.history_turns
    top = {"raw": 0, "rule": 0, "model": 0}
    examples = []
    for item in followups:
        history = [tuple(turn) for turn in item["history"]]
        rule = rewrite_followup(item["question"], history, turns)
        transcript = "\n".join(f"{'Customer' if r == 'user' else 'Assistant'}: {t}" for r, t in history)
        model = assistant.model.generate(
            [{"role": "system", "content": LLM_REWRITE_PROMPT},
             {"role": "user", "content": f"{transcript}\nCustomer: {item['question']}"}],
            GenerationOptions(max_tokens=40),
        ).strip().splitlines()[0:1] or [item["question"]]
        for name, query in (("raw", item["question"]), ("rule", rule), ("model", model[0] or item["question"])):
            hits = assistant.retriever.search(query, "demo", k=assistant.settings.answer_passages)
            top[name] += bool(hits) and is_source(hits[0].source, item["source"])
        examples.append({"question": item["question"], "rule": rule, "model": model[0]})

    # Standalone questions asked after an unrelated turn must not be rewritten into something else.
    answerable = [q for q in questions if q.get("source")]
    unchanged = kept_top = alone_top = 0
    for previous, item in zip(answerable[-1:] + answerable[:-1], answerable):
        rule = rewrite_followup(item["question"], [("user", previous["question"])], turns)
        unchanged += rule == item["question"]
        alone_top += is_source(assistant.retriever.search(item["question"], "demo", k=1)[0].source, item["source"])
        kept_top += is_source(assistant.retriever.search(rule, "demo", k=1)[0].source, item["source"])
    n = len(followups)
    return {
        "followups": n,
        "top1_source_raw": _share(top["raw"], n),
        "top1_source_rule_rewrite": _share(top["rule"], n),
        "top1_source_model_rewrite": _share(top["model"], n),
        "standalone_questions": len(answerable),
        "standalone_unchanged_by_rule": _share(unchanged, len(answerable)),
        "standalone_top1_source_without_history": _share(alone_top, len(answerable)),
        "standalone_top1_source_after_unrelated_turn": _share(kept_top, len(answerable)),
        "examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["local", "vllm"], default="local")
    parser.add_argument("--questions", type=Path, default=REPO / "demo" / "questions.jsonl")
    parser.add_argument("--followups", type=Path, default=REPO / "bench" / "followups.jsonl")
    parser.add_argument("--no-followups", action="store_true", help="skip the follow-up rewrite measure")
    parser.add_argument("--docs", type=Path, default=REPO / "demo" / "helpcenter")
    parser.add_argument("--json", action="store_true", help="print one JSON object (with every answer)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        share_checkout_models()
        os.environ["HELPMATE_DATA_DIR"] = tmp
        os.environ["HELPMATE_LLM_BACKEND"] = args.backend
        os.environ.pop("HELPMATE_DATABASE_URL", None)
        from assistant.answering.answer_eval import answer_questions, read_questions, summarize
        from assistant.answering.assistant import Assistant
        from assistant.config import get_settings
        from ingest.pipeline import ingest_paths

        get_settings.cache_clear()
        settings = get_settings()
        summary = ingest_paths([args.docs], "demo", settings, show_progress=False)
        if summary.failed:
            raise SystemExit(f"could not ingest {summary.failed}")
        questions = read_questions(args.questions)
        assistant = Assistant(settings)
        assistant.model.generate([{"role": "user", "content": "Hello"}])  # load and warm up outside the timings
        records = answer_questions(assistant, "demo", questions, lambda n, r: print(
            f"[{n}/{len(questions)}] {r['kind']:10s} {r['latency_ms']:7.0f} ms  {r['question'][:60]}", file=sys.stderr))
        result = {"model": assistant.model.name, **summarize(records, settings.answer_min_relevance)}
        if not args.no_followups:
            followups = [json.loads(line) for line in args.followups.read_text().splitlines() if line.strip()]
            raw = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
            result["followup_rewrite"] = run_followups(assistant, followups, raw)

    if args.json:
        result["answers"] = records
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
