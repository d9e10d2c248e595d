"""Export the feedback database as a training snapshot (``finetune.dataset.write_snapshot``).

Each stored rating becomes a :class:`~finetune.dataset.FeedbackRecord` with the prompt the answer
was generated from (recorded, or rebuilt from the stored passages the way the assistant builds it).
An answer to learn (a correction, or an answer rated good) that has no ``[n]`` marks gets the
citations the serving pipeline would give it: each sentence cites the passage the support check
(``assistant.answering.grounding``) finds for it, or else the passage whose statement is most similar to it
(cosine at least :data:`CITE_MIN_SIMILARITY`). Agents write corrections without citations, and an
adapter trained on uncited answers unlearns citing: on the demo feedback, a run without this
scored 0.00 citation accuracy on the regression set against the base model's 0.17, and the gate
rejected it. ``source.json`` beside the manifest
records which feedback rows the snapshot holds and when it was exported, so the periodic job can
count what came after.

Only approved feedback is exported. Customers' ratings and suggested answers wait for an
operator's review (``assistant.conversations.feedback``): the snapshot is both what the adapter
learns and, through its eval split, the held-out set of the gate that promotes it, so unreviewed
text from an anonymous chat must reach neither. The export says how many still await review.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from assistant.config import Settings
from assistant.conversations.feedback import count_feedback, hit_from_dict, label_of, list_feedback
from assistant.answering.grounding import Grounder, cited_numbers, split_sentences
from assistant.retrieval.types import Hit
from finetune.dataset import FeedbackRecord, SnapshotManifest, write_snapshot

SOURCE = "source.json"
CITE_MIN_SIMILARITY = 0.5


def cite(text: str, passages: tuple[Hit, ...], question: str, grounder: Grounder) -> str:
    """``text`` with a ``[n]`` citation after each sentence that a passage supports or closely matches."""
    report = grounder.check(text, passages, question)
    support = {claim.text: claim.support for claim in report.claims if claim.support is not None}
    units = [(number, sentence) for number, hit in enumerate(passages, start=1) for sentence in split_sentences(hit.text)]
    sentences = split_sentences(text)
    if not units or not sentences:
        return text
    unit_vectors = grounder.embedder.encode([u for _, u in units])
    sentence_vectors = grounder.embedder.encode(sentences)
    out = []
    for sentence, vector in zip(sentences, sentence_vectors):
        number = support.get(sentence.strip(" \"'"))
        if number is None:
            scores = unit_vectors @ vector
            best = int(scores.argmax())
            number = units[best][0] if float(scores[best]) >= CITE_MIN_SIMILARITY else None
        if number is None:
            out.append(sentence)
        else:
            stem, end = (sentence[:-1], sentence[-1]) if sentence[-1] in ".!" else (sentence, ".")
            out.append(f"{stem} [{number}]{end}")
    return " ".join(out)


@dataclass
class Export:
    """A written snapshot and the feedback it came from."""

    folder: Path
    manifest: SnapshotManifest
    feedback_rows: int
    feedback_through_id: int | None
    citations_added: int
    pending_review: int = 0  # ratings left out because they await review


def feedback_records(settings: Settings, cite_answers: bool = True) -> tuple[list[FeedbackRecord], int | None, int]:
    """Every usable approved rating as a record, the newest feedback id, and how many corrections got citations.

    Pending and rejected ratings are left out (see the module docstring). Three stars without a
    correction say neither good nor bad and are left out; a rating with a correction always marks
    the original answer bad.
    """
    rows = list_feedback(settings, review_status="approved")
    grounder = None
    records, cited = [], 0
    for row in rows:
        label = "bad" if row.corrected_answer else label_of(row.rating)
        if label is None:
            continue
        passages = tuple(hit_from_dict(p) for p in row.passages or [])
        corrected, answer = row.corrected_answer, row.answer
        learned = corrected or (answer if label == "good" else None)
        if cite_answers and learned and passages and not cited_numbers(learned) and not row.prompt:
            if grounder is None:
                from assistant.embeddings import get_embedder

                grounder = Grounder(get_embedder(settings))
            with_citations = cite(learned, passages, row.question, grounder)
            if with_citations != learned:
                cited += 1
                if corrected:
                    corrected = with_citations
                else:
                    answer = with_citations
        records.append(FeedbackRecord(
            conversation_id=row.conversation_key, answer=answer, label=label, question=row.question,
            passages=passages, corrected=corrected, prompt=tuple(row.prompt or ()),
        ))
    return records, (rows[-1].id if rows else None), cited


def export_feedback(folder: Path, settings: Settings, eval_share: float = 0.25, cite_answers: bool = True) -> Export:
    """Write the snapshot of the approved feedback (redacted, de-duplicated, split by conversation)."""
    exported_at = datetime.now(timezone.utc)
    records, through, cited = feedback_records(settings, cite_answers)
    pending = count_feedback(settings, review_status="pending")
    if not records:
        waiting = (f"; {pending} ratings await review: see `helpmate feedback list --pending`, then "
                   "`helpmate feedback approve ID --by NAME`" if pending else "")
        raise ValueError("there is no usable approved feedback to export; add some with `helpmate feedback add` or "
                         f"`helpmate feedback import`{waiting}")
    manifest = write_snapshot(records, folder, eval_share=eval_share)
    (Path(folder) / SOURCE).write_text(json.dumps({
        "feedback_rows": len(records), "feedback_through_id": through, "citations_added": cited,
        "review_status": "approved", "pending_review": pending, "exported_at": exported_at.isoformat(),
    }, indent=2) + "\n")
    return Export(Path(folder), manifest, len(records), through, cited, pending)


def snapshot_source(folder: Path) -> dict:
    """What ``source.json`` says (empty for a snapshot not exported from the database)."""
    path = Path(folder) / SOURCE
    return json.loads(path.read_text()) if path.exists() else {}
