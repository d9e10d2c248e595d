"""Answer quality on a team's own questions, through the whole answering path (`helpmate eval answers`).

Each line of the questions file is a JSON object::

    {"question": "How much is express shipping?", "history": [["user", "..."], ["assistant", "..."]],
     "must_contain": ["14.90"], "expected_source": "shipping/costs.md", "answerable": true,
     "reference": "Express shipping costs 14.90 EUR."}

Only ``question`` is required. ``source`` and ``answer`` are read as ``expected_source`` and
``reference`` (the demo's ``demo/questions.jsonl`` uses them). Without ``answerable`` a question
counts as answerable when it names an expected source, a reference or terms, and as unanswerable
when it sets ``expected_source``/``source`` or ``reference``/``answer`` to null and names nothing.

``summarize`` reports what the issue asks of a grounded answerer: the share of each answer kind,
the share of the model's answers the support check kept, term containment, first-citation
accuracy, refusals of unanswerable questions, token-F1 and ROUGE-L against references, latency,
and the refusal gate's trade-off at thresholds around the setting. Two ceilings say how much of a
miss is retrieval's: ``passages_hold_expected_source`` (the expected source is among the passages
the model was shown, which first-citation accuracy cannot exceed) and ``passages_hold_terms``
(every expected term stands in those passages, which term containment cannot exceed).
``model_token_f1`` scores the model's own text, before the support check replaces it, against the
references: the answer figures above hardly move when most model answers are replaced, so two
models (or one model in two precisions) are compared by it. Token-F1 and ROUGE-L are defined as in
``finetune.evaluation`` (SQuAD-style word multisets; longest common word subsequence; citations
removed), written out here because ``assistant`` may not import ``finetune``.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from assistant.answering.claims import strip_citations

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
KINDS = ("verified", "generated", "extractive", "refusal")


@dataclass
class Question:
    """One line of a questions file; ``answerable`` is None when the line does not say."""

    question: str
    history: list[tuple[str, str]] = field(default_factory=list)
    must_contain: list[str] = field(default_factory=list)
    expected_source: str | None = None
    answerable: bool | None = None
    reference: str | None = None


def read_questions(path: Path) -> list[Question]:
    """The questions file (module docstring); an error names the line."""
    items = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
                raise ValueError("needs a question")
            source = row.get("expected_source", row.get("source"))
            reference = row.get("reference", row.get("answer"))
            terms = [str(t) for t in row.get("must_contain") or []]
            history = [(str(role), str(text)) for role, text in row.get("history") or []]
            answerable = row.get("answerable")
            if answerable is None and (source or reference or terms):
                answerable = True
            elif answerable is None and ({"expected_source", "source", "reference", "answer"} & set(row)):
                answerable = False
            items.append(Question(row["question"].strip(), history, terms, source, answerable, reference))
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}, line {number}: {error}") from None
    if not items:
        raise ValueError(f"{path} holds no questions")
    return items


def tokens(text: str) -> list[str]:
    return _WORD.findall(strip_citations(text).casefold())


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style F1 of the word multisets (citations removed)."""
    predicted, expected = tokens(prediction), tokens(reference)
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not common:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure: the longest common subsequence of words."""
    a, b = tokens(prediction), tokens(reference)
    if not a or not b:
        return float(a == b)
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[-1]))
        previous = current
    if not previous[-1]:
        return 0.0
    precision, recall = previous[-1] / len(a), previous[-1] / len(b)
    return 2 * precision * recall / (precision + recall)


def _contains(text: str | None, terms: list[str]) -> bool:
    return bool(text) and all(term.lower() in text.lower() for term in terms)


def is_source(source: str | None, expected: str | None) -> bool:
    """Whether a cited source is the expected one (a path relative to the ingested folder matches its end)."""
    if not source or not expected:
        return False
    source, expected = source.replace(os.sep, "/"), expected.replace(os.sep, "/")
    return source == expected or source.endswith("/" + expected.lstrip("/"))


def answer_questions(assistant, kb: str, questions: list[Question], progress: Callable[[int, dict], None] | None = None,
                     baseline=None) -> list[dict]:
    """Answer every question with ``assistant`` (an ``Assistant``) and record what ``summarize`` needs.

    ``baseline``: another support check (a ``Grounder``) to judge the same model answers with; the
    record then says whether it would have kept each one and what the customer would have read."""
    records = []
    for number, item in enumerate(questions, start=1):
        answer = assistant.answer(item.question, kb, item.history)
        first = answer.citations[0].source if answer.citations else None
        checked = answer.generated_text is not None and answer.kind != "refusal"
        record = {
            "question": item.question, "answerable": item.answerable, "kind": answer.kind, "answer": answer.text,
            "generated_text": answer.generated_text, "reason": answer.reason, "relevance": round(answer.relevance, 4),
            "latency_ms": round(answer.latency_ms, 1), "first_citation": first,
            "model_checked": checked,
            "contains": _contains(answer.text, item.must_contain) if item.must_contain else None,
            "model_contains": _contains(answer.generated_text, item.must_contain) if item.must_contain else None,
            "first_citation_ok": is_source(first, item.expected_source) if item.expected_source else None,
            "source_shown": any(is_source(h.source, item.expected_source) for h in answer.retrieved)
            if item.expected_source else None,
            "terms_shown": _contains(" ".join(h.text for h in answer.retrieved), item.must_contain) if item.must_contain else None,
        }
        if baseline is not None and checked:
            report = baseline.check(answer.generated_text, answer.retrieved, answer.rewritten_question)
            text = report.text if report.supported else (
                answer.text if answer.kind == "extractive" else
                baseline.extractive_answer(answer.rewritten_question, answer.retrieved)[0])
            record["baseline_kept"] = report.supported
            record["baseline_contains"] = _contains(text, item.must_contain) if item.must_contain else None
        if item.reference:
            answered = answer.text if answer.kind != "refusal" else ""
            record["f1"], record["rouge_l"] = round(token_f1(answered, item.reference), 4), round(rouge_l(answered, item.reference), 4)
            if answer.generated_text is not None:
                record["model_f1"] = round(token_f1(answer.generated_text, item.reference), 4)
        records.append(record)
        if progress:
            progress(number, record)
    return records


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def summarize(records: list[dict], min_relevance: float) -> dict:
    """The figures of a run (module docstring); shares are over the questions each one applies to."""
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if r["answerable"] is False]
    checked = [r for r in records if r["model_checked"]]
    kept = [r for r in checked if r["kind"] == "generated"]
    with_terms = [r for r in answerable if r["contains"] is not None]
    with_source = [r for r in answerable if r["first_citation_ok"] is not None]
    with_reference = [r for r in answerable if "f1" in r]
    latencies = sorted(r["latency_ms"] for r in records)
    kept_terms = [r for r in kept if r["contains"] is not None]
    replaced_terms = [r for r in checked if r["kind"] == "extractive" and r["model_contains"] is not None]
    return {
        "questions": len(records), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "kinds": {kind: _share(sum(r["kind"] == kind for r in records), len(records)) for kind in KINDS},
        "model_answers_checked": len(checked),
        "model_answers_kept": _share(len(kept), len(checked)),
        "kept_model_answers_containing_terms": _share(sum(r["contains"] for r in kept_terms), len(kept_terms)),
        "replaced_model_answers_containing_terms": _share(sum(r["model_contains"] for r in replaced_terms), len(replaced_terms)),
        "answerable_answered": _share(sum(r["kind"] != "refusal" for r in answerable), len(answerable)),
        "term_containment": _share(sum(r["contains"] for r in with_terms), len(with_terms)),
        "first_citation_accuracy": _share(sum(r["first_citation_ok"] for r in with_source), len(with_source)),
        "passages_hold_expected_source": _share(sum(bool(r.get("source_shown")) for r in with_source), len(with_source)),
        "passages_hold_terms": _share(sum(bool(r.get("terms_shown")) for r in with_terms), len(with_terms)),
        "unanswerable_refused": _share(sum(r["kind"] == "refusal" for r in unanswerable), len(unanswerable)),
        "token_f1": _mean([r["f1"] for r in with_reference]),
        "rouge_l": _mean([r["rouge_l"] for r in with_reference]),
        "model_token_f1": _mean([r["model_f1"] for r in with_reference if "model_f1" in r]),
        "latency_ms_median": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p90": round(latencies[int(0.9 * (len(latencies) - 1))], 1) if latencies else None,
        **_baseline(records, answerable),
        "gate": gate_tradeoff(records, [round(min_relevance + 0.025 * i, 3) for i in range(-4, 5)]),
    }


def _baseline(records: list[dict], answerable: list[dict]) -> dict:
    """The baseline check's figures on the same model answers (``answer_questions(baseline=...)``), if it ran."""
    judged = [r for r in records if "baseline_kept" in r]
    if not judged:
        return {}
    terms = [r for r in answerable if r["contains"] is not None]
    # where the model did not run or declined, the baseline would have given the same answer
    contains = [r["baseline_contains"] if "baseline_kept" in r else r["contains"] for r in terms]
    return {"baseline_model_answers_kept": _share(sum(r["baseline_kept"] for r in judged), len(judged)),
            "baseline_term_containment": _share(sum(bool(c) for c in contains), len(terms))}


def gate_tradeoff(records: list[dict], thresholds: list[float]) -> list[dict]:
    """Answered / refused shares had the refusal gate been at each threshold (from each question's best passage similarity)."""
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if r["answerable"] is False]
    return [{"threshold": t,
             "answerable_answered": _share(sum(r["relevance"] >= t for r in answerable), len(answerable)),
             "unanswerable_refused": _share(sum(r["relevance"] < t for r in unanswerable), len(unanswerable))}
            for t in thresholds]
