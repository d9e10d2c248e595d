"""Grounded-answer quality on the demo help center, through the whole path the CLI takes.

Ingests ``demo/helpcenter`` into a fresh data directory, then answers every question of
``demo/questions.jsonl`` (40 answerable ones with the words the answer must contain and the
source that holds it, 8 the help center does not answer) and prints:

* answerable questions answered (not refused), answers containing every ``must_contain`` term,
  answers whose first citation is the expected source;
* of the model's answers: the share that passed the support check (kept, ``generated``) and the
  share replaced by an extractive answer, with how often each was right;
* unanswerable questions refused; median and 90th-percentile latency;
* the refusal gate's trade-off: answered vs refused shares for thresholds around the setting;
* follow-up questions (``bench/followups.jsonl``): how often retrieval finds the expected source
  for the raw follow-up, the rule-based rewrite the assistant uses, and a rewrite by the model;
  and how often a standalone question is left unchanged by the rule.

    python bench/answers.py [--backend local|vllm] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def _contains(text: str, terms: list[str]) -> bool:
    return all(term.lower() in text.lower() for term in terms)


def _is_source(source: str | None, expected: str | None) -> bool:
    return bool(source and expected and source.replace(os.sep, "/").endswith("/" + expected))


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def run_questions(assistant, questions: list[dict]) -> list[dict]:
    records = []
    for number, item in enumerate(questions, start=1):
        answer = assistant.answer(item["question"], "demo")
        expected = item.get("source")
        records.append({
            "question": item["question"],
            "answerable": expected is not None,
            "kind": answer.kind,
            "contains": expected is not None and _contains(answer.text, item["must_contain"]),
            "model_contains": bool(answer.generated_text) and _contains(answer.generated_text, item["must_contain"]),
            "top_citation_ok": bool(answer.citations) and _is_source(answer.citations[0].source, expected),
            "relevance": answer.relevance,
            "latency_ms": answer.latency_ms,
            "model_ran": answer.generated_text is not None,
            "model_declined": answer.kind == "refusal" and answer.generated_text is not None,
            "answer": answer.text,
            "generated_text": answer.generated_text,
            "reason": answer.reason,
        })
        print(f"[{number}/{len(questions)}] {answer.kind:10s} {answer.latency_ms:7.0f} ms  {item['question'][:60]}",
              file=sys.stderr)
    return records


def gate_tradeoff(records: list[dict], thresholds: list[float]) -> list[dict]:
    """Answered / refused shares had the gate been at each threshold (from each question's best passage similarity)."""
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    return [{
        "threshold": t,
        "answerable_answered": _share(sum(r["relevance"] >= t for r in answerable), len(answerable)),
        "unanswerable_refused": _share(sum(r["relevance"] < t for r in unanswerable), len(unanswerable)),
    } for t in thresholds]


def run_followups(assistant, followups: list[dict], questions: list[dict]) -> dict:
    from assistant.llm.base import GenerationOptions
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
            top[name] += bool(hits) and _is_source(hits[0].source, item["source"])
        examples.append({"question": item["question"], "rule": rule, "model": model[0]})

    # Standalone questions asked after an unrelated turn must not be rewritten into something else.
    answerable = [q for q in questions if q.get("source")]
    unchanged = kept_top = alone_top = 0
    for previous, item in zip(answerable[-1:] + answerable[:-1], answerable):
        rule = rewrite_followup(item["question"], [("user", previous["question"])], turns)
        unchanged += rule == item["question"]
        alone_top += _is_source(assistant.retriever.search(item["question"], "demo", k=1)[0].source, item["source"])
        kept_top += _is_source(assistant.retriever.search(rule, "demo", k=1)[0].source, item["source"])
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


def summarize(records: list[dict], settings) -> dict:
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    answered = [r for r in answerable if r["kind"] != "refusal"]
    checked = [r for r in records if r["model_ran"] and not r["model_declined"]]
    kept = [r for r in checked if r["kind"] == "generated"]
    replaced = [r for r in checked if r["kind"] == "extractive"]
    kept_answerable = [r for r in kept if r["answerable"]]
    replaced_answerable = [r for r in replaced if r["answerable"]]
    latencies = sorted(r["latency_ms"] for r in records)
    return {
        "questions": len(records),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "answer_min_relevance": settings.answer_min_relevance,
        "answer_passages": settings.answer_passages,
        "answerable_answered": _share(len(answered), len(answerable)),
        "answerable_contains_expected": _share(sum(r["contains"] for r in answerable), len(answerable)),
        "answered_contains_expected": _share(sum(r["contains"] for r in answered), len(answered)),
        "top_citation_expected_source": _share(sum(r["top_citation_ok"] for r in answerable), len(answerable)),
        "model_answers_checked": len(checked),
        "model_answers_supported": _share(len(kept), len(checked)),
        "model_answers_replaced_by_extractive": _share(len(replaced), len(checked)),
        "model_declined": sum(r["model_declined"] for r in records),
        "supported_answers_containing_expected": _share(sum(r["contains"] for r in kept_answerable), len(kept_answerable)),
        "replaced_model_answers_containing_expected": _share(sum(r["model_contains"] for r in replaced_answerable),
                                                             len(replaced_answerable)),
        "extractive_answers_containing_expected": _share(sum(r["contains"] for r in replaced_answerable),
                                                         len(replaced_answerable)),
        "unanswerable_refused": _share(sum(r["kind"] == "refusal" for r in unanswerable), len(unanswerable)),
        "latency_ms_median": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p90": round(latencies[int(0.9 * (len(latencies) - 1))], 1) if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["local", "vllm"], default="local")
    parser.add_argument("--questions", type=Path, default=REPO / "demo" / "questions.jsonl")
    parser.add_argument("--followups", type=Path, default=REPO / "bench" / "followups.jsonl")
    parser.add_argument("--docs", type=Path, default=REPO / "demo" / "helpcenter")
    parser.add_argument("--json", action="store_true", help="print one JSON object (with every answer)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        share_checkout_models()
        os.environ["HELPMATE_DATA_DIR"] = tmp
        os.environ["HELPMATE_LLM_BACKEND"] = args.backend
        os.environ.pop("HELPMATE_DATABASE_URL", None)
        from assistant.answering.assistant import Assistant
        from assistant.config import get_settings
        from ingest.pipeline import ingest_paths

        get_settings.cache_clear()
        settings = get_settings()
        summary = ingest_paths([args.docs], "demo", settings, show_progress=False)
        if summary.failed:
            raise SystemExit(f"could not ingest {summary.failed}")
        questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
        followups = [json.loads(line) for line in args.followups.read_text().splitlines() if line.strip()]

        assistant = Assistant(settings)
        assistant.model.generate([{"role": "user", "content": "Hello"}])  # load and warm up outside the timings
        records = run_questions(assistant, questions)
        result = summarize(records, settings)
        result["model"] = assistant.model.name
        result["gate"] = gate_tradeoff(records, [round(0.30 + 0.025 * i, 3) for i in range(11)])
        result["followup_rewrite"] = run_followups(assistant, followups, questions)

    if args.json:
        result["answers"] = records
        print(json.dumps(result, indent=1))
        return
    print(json.dumps({k: v for k, v in result.items() if k not in ("gate", "followup_rewrite")}, indent=1))
    print("refusal gate (best passage similarity):  threshold  answerable answered  unanswerable refused")
    for row in result["gate"]:
        print(f"{'':42s}{row['threshold']:.3f}      {row['answerable_answered']:.3f}               {row['unanswerable_refused']:.3f}")
    followup = {k: v for k, v in result["followup_rewrite"].items() if k != "examples"}
    print("follow-up rewrite:", json.dumps(followup, indent=1))


if __name__ == "__main__":
    main()
