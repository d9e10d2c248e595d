"""Held-out measurement of a grounded answerer: token-F1, citations and refusals, base beside adapter.

Both models answer the held-out examples (``finetune.answerer_data``: SQuAD 2.0 articles and DSTC9
entities never trained on) with the assistant's own decoding (``ANSWER_OPTIONS``: greedy, at most
100 tokens, stop at a blank line). Per source:

* ``token_f1``: SQuAD-style F1 of the answer's words (citations removed) against the reference,
  the best over the references (SQuAD's crowd answer spans; DSTC9's human reply), over the
  answerable examples. A span is a few words and an answer a sentence, so SQuAD F1 is bounded well
  below 1 for any sentence answer; ``contains_answer`` (the answer holds one of the spans,
  case-insensitively) says whether the fact is there.
* ``first_citation``: answerable examples whose first ``[n]`` is the passage that answers.
* ``refusal_precision`` / ``refusal_recall``: an answer is a refusal when the assistant would read
  it as one (``model_declined``: "I don't know", "the passages do not ..."); precision over the
  refusals, recall over the examples no passage answers.

Answers are appended to a JSON-lines cache per model as they come, so an interrupted evaluation
continues where it stopped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

from assistant.answering.assistant import model_declined
from assistant.answering.grounding import cited_numbers
from assistant.llm.base import Message
from finetune.answerer_data import Example
from assistant.answering.answer_eval import token_f1

Generate = Callable[[Sequence[Sequence[Message]]], list[str]]
Echo = Callable[[str], None]


def answer_all(generate: Generate, examples: Sequence[Example], cache: Path, batch_size: int = 8,
               echo: Echo = print, label: str = "") -> dict[str, dict]:
    """Every example's answer (and seconds per answer), from ``cache`` where already there."""
    cache = Path(cache)
    done: dict[str, dict] = {}
    if cache.exists():
        for line in cache.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["id"]] = row
    todo = [e for e in examples if e.id not in done]
    # Similar prompt lengths in one batch: left padding costs as much as real tokens.
    todo.sort(key=lambda e: (sum(len(m["content"]) for m in e.messages[:-1]), e.id))
    cache.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with cache.open("a", encoding="utf-8") as out:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            began = time.perf_counter()
            answers = generate([e.messages[:-1] for e in batch])
            seconds = (time.perf_counter() - began) / len(batch)
            for example, answer in zip(batch, answers):
                row = {"id": example.id, "answer": answer, "seconds": round(seconds, 3)}
                done[example.id] = row
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            finished = start + len(batch)
            echo(f"{label}: {finished}/{len(todo)} answered ({time.perf_counter() - started:.0f} s)")
    return {e.id: done[e.id] for e in examples}


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def metrics(examples: Sequence[Example], answers: dict[str, dict]) -> dict[str, dict]:
    """Per source (``squad2``, ``dstc9``) and ``all``: counts, F1, citations, refusals (module docstring)."""
    out = {}
    for source in ("squad2", "dstc9", "all"):
        chosen = [e for e in examples if source == "all" or e.source == source]
        if not chosen:
            continue
        answerable = [e for e in chosen if e.answerable]
        unanswerable = [e for e in chosen if not e.answerable]
        refused = {e.id for e in chosen if model_declined(answers[e.id]["answer"])}
        f1 = [max(token_f1(answers[e.id]["answer"], r) for r in e.references) for e in answerable if e.references]
        spans = [e for e in answerable if e.source == "squad2"]
        contains = sum(any(r.casefold() in answers[e.id]["answer"].casefold() for r in e.references) for e in spans)
        first = sum(bool(cited_numbers(answers[e.id]["answer"])) and cited_numbers(answers[e.id]["answer"])[0] == e.cite
                    for e in answerable)
        true_refusals = sum(e.id in refused for e in unanswerable)
        out[source] = {
            "examples": len(chosen), "answerable": len(answerable), "unanswerable": len(unanswerable),
            "token_f1": round(sum(f1) / len(f1), 4) if f1 else None,
            "contains_answer": _ratio(contains, len(spans)),
            "first_citation": _ratio(first, len(answerable)),
            "answerable_refused": _ratio(sum(e.id in refused for e in answerable), len(answerable)),
            "refusal_precision": _ratio(true_refusals, len(refused)),
            "refusal_recall": _ratio(true_refusals, len(unanswerable)),
            "seconds_per_answer": round(sum(answers[e.id]["seconds"] for e in chosen) / len(chosen), 3),
        }
    return out
