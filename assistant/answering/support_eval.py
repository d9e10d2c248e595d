"""Accept and reject rates of a support check on labelled answers (``support_data.SupportCase``).

A check is judged by both errors at once: the share of answers that should pass and do (``accept``),
and the share that should fail and do (``reject``). A check that rejects everything scores 1.0 on
the second and 0.0 on the first, so neither figure means anything alone.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Sequence

from assistant.answering.support_data import SupportCase


def evaluate_support(cases: Sequence[SupportCase], grounder, progress: Callable[[int], None] | None = None,
                     examples: int = 0) -> dict:
    """Rates overall and per condition, and the check's time per answer (ms; embeddings cached as in
    a chat, where passages recur). ``examples``: how many wrong verdicts of each kind to include."""
    verdicts, times, wrong = [], [], {"rejected_good": [], "accepted_bad": []}
    for n, case in enumerate(cases, start=1):
        started = time.perf_counter()
        report = grounder.check(case.answer, case.passages, case.question)
        times.append((time.perf_counter() - started) * 1000)
        verdicts.append(report.supported)
        if report.supported != case.accept:
            kind = "rejected_good" if case.accept else "accepted_bad"
            if len(wrong[kind]) < examples:
                wrong[kind].append({"answer": case.answer, "condition": case.condition, "reason": report.reason,
                                    "passages": [h.text for h in case.passages]})
        if progress:
            progress(n)
    result = {**_rates(cases, verdicts), "conditions": {}}
    for condition in sorted({_condition(c) for c in cases} | {c.condition for c in cases}):
        chosen = [(c, v) for c, v in zip(cases, verdicts) if condition in (c.condition, _condition(c))]
        result["conditions"][condition] = _rates([c for c, _ in chosen], [v for _, v in chosen])
    ordered = sorted(times)
    result["ms_per_answer"] = {"median": round(statistics.median(ordered), 2) if ordered else None,
                               "p90": round(ordered[int(0.9 * (len(ordered) - 1))], 2) if ordered else None,
                               "mean": round(statistics.fmean(ordered), 2) if ordered else None}
    if examples:
        result["wrong"] = wrong
    return result


def _condition(case: SupportCase) -> str:
    """The case's condition, split where known by whether the reply or question names its entity."""
    if case.named is None:
        return case.condition
    return f"{case.condition}, {'named' if case.named else 'unnamed'}"


def _rates(cases: Sequence[SupportCase], verdicts: Sequence[bool]) -> dict:
    good = [v for c, v in zip(cases, verdicts) if c.accept]
    bad = [v for c, v in zip(cases, verdicts) if not c.accept]
    return {
        "should_accept": len(good), "accepted": round(sum(good) / len(good), 4) if good else None,
        "should_reject": len(bad), "rejected": round(sum(not v for v in bad) / len(bad), 4) if bad else None,
    }


def threshold_sweep(cases: Sequence[SupportCase], grounder, thresholds: Sequence[float]) -> list[dict]:
    """Accept and reject rates at each verifier threshold, from one pass: the check runs at threshold 0,
    and a case passes at ``t`` when it passed there and every claim's best score is at least ``t``
    (the evidence of a claim is its best-scoring sentence whatever the threshold, so this is exact)."""
    from assistant.answering.grounding import Grounder

    open_check = Grounder(grounder.embedder, 0.0, verifier=grounder.verifier)
    judged = []
    for case in cases:
        report = open_check.check(case.answer, case.passages, case.question)
        judged.append((case, report.supported, min((c.similarity for c in report.claims), default=0.0)))
    rows = []
    for t in thresholds:
        verdicts = [passed and score >= t for _, passed, score in judged]
        rows.append({"threshold": t, **_rates([c for c, _, _ in judged], verdicts)})
    return rows
