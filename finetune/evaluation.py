"""The evaluation gate: a candidate adapter replaces the active model only if it is measurably
better on held-out feedback and no worse on a fixed regression set.

Both models answer the same prompts with the same decoding the assistant serves with
(``assistant.answering.assistant.ANSWER_OPTIONS``: greedy, at most 100 tokens, stop at a blank line):

* **held-out feedback**: the eval split of the snapshot (``sft_eval.jsonl``; conversations the
  adapter never saw), scored by token F1 and ROUGE-L against the corrected or approved answer.
  A snapshot exported from the database holds approved feedback only (``finetune.export``), so
  no unreviewed customer suggestion decides what passes; one exported before feedback was
  reviewed is refused rather than trusted;
* **regression set** (``finetune/regression.jsonl``): grounded questions with passages and the
  passage to cite (token F1, and citation accuracy: cites the right passage and no other),
  questions the passages do not answer (refusal accuracy: says it does not know), and general
  questions unrelated to the documents (token F1), to catch forgetting.

Citations are removed before comparing texts, so F1 and ROUGE-L measure content and citation
accuracy measures citing. The gate: the candidate's feedback score (mean of F1 and ROUGE-L) must
beat the active model's by ``margin``, and none of the four regression metrics may drop by more than
``tolerance``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from assistant.answering.assistant import ANSWER_OPTIONS, model_declined
from assistant.answering.answer_eval import rouge_l, token_f1
from assistant.answering.grounding import cited_numbers
from assistant.llm.base import Message
from assistant.answering.prompts import build_messages
from assistant.retrieval.types import Hit
from finetune.dataset import read_jsonl
from finetune.export import SOURCE

REGRESSION_SET = Path(__file__).with_name("regression.jsonl")
REGRESSION_METRICS = ("grounded_f1", "citation_accuracy", "refusal_accuracy", "general_f1")

Generate = Callable[[Sequence[Sequence[Message]]], list[str]]


@dataclass
class EvalItem:
    """One prompt to answer and what a good answer looks like."""

    id: str
    kind: str  # feedback | grounded | refusal | general
    messages: list[Message]
    reference: str
    cite: list[int] = field(default_factory=list)


def regression_items(path: Path = REGRESSION_SET) -> list[EvalItem]:
    """The fixed regression set as prompts built the way the assistant builds them."""
    items = []
    for number, record in enumerate(read_jsonl(path), start=1):
        kind = record["kind"]
        if kind not in ("grounded", "refusal", "general"):
            raise ValueError(f"{path}, item {number}: kind must be grounded, refusal or general, not {kind!r}")
        if kind == "general":
            messages = [{"role": "user", "content": record["question"]}]
        else:
            hits = [Hit(i, i, p["text"], p.get("title", ""), p.get("title"), p.get("section"), None, 1.0)
                    for i, p in enumerate(record["passages"], start=1)]
            messages = build_messages(record["question"], hits)
        items.append(EvalItem(record["id"], kind, messages, record["reference"], list(record.get("cite", []))))
    return items


def feedback_items(snapshot: Path) -> list[EvalItem]:
    """The held-out supervised examples of a snapshot (its eval split).

    Raises ValueError for a snapshot exported from the database before feedback was reviewed: its
    eval split may hold customers' unreviewed suggestions. A snapshot without ``source.json`` was
    built by hand, by someone who chose its examples, and is used as it is.
    """
    source = Path(snapshot) / SOURCE
    if source.exists() and json.loads(source.read_text()).get("review_status") != "approved":
        raise ValueError(f"{snapshot} was exported before customer feedback was reviewed, so its held-out examples may "
                         "hold unreviewed suggestions; export again (`helpmate finetune export`, approved feedback only) "
                         "and train a new candidate on it")
    examples = read_jsonl(Path(snapshot) / "sft_eval.jsonl")
    return [EvalItem(f"feedback-{n}", "feedback", e["messages"][:-1], e["messages"][-1]["content"])
            for n, e in enumerate(examples, start=1)]


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def score(items: Sequence[EvalItem], answers: Sequence[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Aggregate metrics and the per-item record of one model's answers."""
    per_item, by_kind = [], {}
    for item, answer in zip(items, answers):
        row: dict[str, Any] = {"id": item.id, "kind": item.kind, "answer": answer}
        if item.kind in ("feedback", "grounded", "general"):
            row["f1"], row["rouge_l"] = round(token_f1(answer, item.reference), 4), round(rouge_l(answer, item.reference), 4)
        if item.kind == "grounded":
            cited = cited_numbers(answer)
            row["citation_ok"] = bool(cited) and set(cited) <= set(item.cite)
        if item.kind == "refusal":
            row["refused"] = model_declined(answer)
        per_item.append(row)
        by_kind.setdefault(item.kind, []).append(row)

    def values(kind: str, key: str) -> list[float]:
        return [float(r[key]) for r in by_kind.get(kind, [])]

    metrics = {
        "feedback_examples": len(by_kind.get("feedback", [])),
        "feedback_f1": _mean(values("feedback", "f1")),
        "feedback_rouge_l": _mean(values("feedback", "rouge_l")),
        "grounded_f1": _mean(values("grounded", "f1")),
        "citation_accuracy": _mean(values("grounded", "citation_ok")),
        "refusal_accuracy": _mean(values("refusal", "refused")),
        "general_f1": _mean(values("general", "f1")),
    }
    metrics["feedback_score"] = (None if metrics["feedback_f1"] is None
                                 else round((metrics["feedback_f1"] + metrics["feedback_rouge_l"]) / 2, 4))
    return metrics, per_item


@dataclass
class GateDecision:
    promote: bool
    reason: str
    gain: float | None
    regressions: dict[str, dict[str, float]]


def gate(candidate: dict[str, Any], active: dict[str, Any], margin: float, tolerance: float) -> GateDecision:
    """Promote only when the candidate wins on held-out feedback by ``margin`` and loses no regression
    metric by more than ``tolerance``."""
    if not candidate.get("feedback_examples"):
        return GateDecision(False, "no held-out feedback examples to compare on; export more feedback or raise --eval-share", None, {})
    gain = round(candidate["feedback_score"] - active["feedback_score"], 4)
    regressions = {name: {"candidate": candidate[name], "active": active[name]} for name in REGRESSION_METRICS
                   if candidate.get(name) is not None and active.get(name) is not None and candidate[name] < active[name] - tolerance}
    if gain < margin:
        return GateDecision(False, f"the candidate does not win on held-out feedback: score {candidate['feedback_score']:.4f} vs "
                                   f"{active['feedback_score']:.4f} (gain {gain:+.4f} < margin {margin})", gain, regressions)
    if regressions:
        worse = ", ".join(f"{k} {v['candidate']:.3f} < {v['active']:.3f}" for k, v in regressions.items())
        return GateDecision(False, f"the candidate regresses beyond tolerance {tolerance}: {worse}", gain, regressions)
    return GateDecision(True, f"the candidate wins on held-out feedback by {gain:+.4f} (margin {margin}) and does not regress "
                              f"(tolerance {tolerance})", gain, regressions)


@dataclass
class EvaluationReport:
    candidate: str
    active: str
    candidate_metrics: dict[str, Any]
    active_metrics: dict[str, Any]
    decision: GateDecision
    margin: float
    tolerance: float
    answers: dict[str, list[dict[str, Any]]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def local_generator(settings, adapter_path: Path | None, batch_size: int = 8) -> Generate:
    """Greedy answers from the packaged model in this process, with ``adapter_path`` merged in (None: the base model)."""
    from assistant.llm.local import LocalChatModel

    model = LocalChatModel(settings, adapter_path=adapter_path)

    def generate(conversations: Sequence[Sequence[Message]]) -> list[str]:
        answers: list[str] = []
        for start in range(0, len(conversations), batch_size):
            answers += [a.strip() for a in model.generate_batch(conversations[start:start + batch_size], ANSWER_OPTIONS)]
        return answers

    return generate


def evaluate(candidate_name: str, candidate: Generate, active_name: str, active: Generate, snapshot: Path | None,
             margin: float = 0.02, tolerance: float = 0.05, regression_path: Path = REGRESSION_SET) -> EvaluationReport:
    """Answer the held-out feedback and the regression set with both models and apply the gate."""
    items = (feedback_items(snapshot) if snapshot else []) + regression_items(regression_path)
    prompts = [item.messages for item in items]
    candidate_metrics, candidate_answers = score(items, candidate(prompts))
    active_metrics, active_answers = score(items, active(prompts))
    decision = gate(candidate_metrics, active_metrics, margin, tolerance)
    return EvaluationReport(candidate_name, active_name, candidate_metrics, active_metrics, decision, margin, tolerance,
                            {"candidate": candidate_answers, "active": active_answers})


def write_report(report: EvaluationReport, path: Path) -> None:
    Path(path).write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
