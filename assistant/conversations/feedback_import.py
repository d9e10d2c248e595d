"""Importing feedback collected elsewhere (CSV or JSONL) into the feedback store.

Kept apart from :mod:`assistant.conversations.feedback` (the store and its review rules) so each
stays readable. Bad rows are reported by line and skipped, rows already stored are skipped too, so
an import can be run again. Imported feedback has no prompt of its own; when its knowledge base is
ingested, the passages the assistant retrieves for the question are stored with it, so training
sees the prompt the assistant would build.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select

from assistant.config import Settings
from assistant.conversations.feedback import add_feedback, check_giver, clean_text, normalise_rating
from assistant.conversations.records import BadRow, read_records
from assistant.database import session_scope
from assistant.database.models import Feedback
from assistant.retrieval.types import Hit

REQUIRED_COLUMNS: tuple[str, ...] = ("question", "answer", "rating")
OPTIONAL_COLUMNS: tuple[str, ...] = ("corrected_answer", "comment", "given_by", "kb", "conversation_id", "model_version", "created_at")

@dataclass
class FeedbackImportReport:
    """What an import did; every row not added is either a duplicate or listed in ``bad_rows``."""

    path: str
    rows: int = 0
    added: int = 0
    corrections: int = 0
    duplicates: int = 0
    with_passages: int = 0
    pending: int = 0  # customer rows held for review (``review_customer``)
    bad_rows: list[BadRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Row:
    line: int
    values: dict[str, Any]


def _parse_created_at(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(f"created_at {value!r} is not ISO 8601 (e.g. 2026-11-20T09:15:00+01:00)") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _parse(line: int, record: dict[str, Any], default_kb: str | None) -> _Row:
    values = {
        "question": clean_text(record.get("question"), "question", required=True),
        "answer": clean_text(record.get("answer"), "answer", required=True),
        "rating": normalise_rating(record.get("rating") if record.get("rating") not in (None, "") else _missing("rating")),
        "corrected_answer": clean_text(record.get("corrected_answer"), "corrected_answer"),
        "comment": clean_text(record.get("comment"), "comment"),
        "given_by": check_giver(record.get("given_by")),
        "kb": clean_text(record.get("kb"), "kb") or default_kb,
        "conversation_key": clean_text(record.get("conversation_id"), "conversation_id"),
        "model_version": clean_text(record.get("model_version"), "model_version"),
        "created_at": _parse_created_at(record.get("created_at")),
    }
    return _Row(line, values)


def _missing(column: str) -> str:
    raise ValueError(f"{column} is empty")


def _fingerprint(values: dict[str, Any]) -> tuple:
    return tuple(values.get(k) or "" for k in ("kb", "question", "answer", "rating", "corrected_answer", "given_by", "comment"))


def import_feedback(path: Path, kb: str | None = None, *, settings: Settings,
                    retrieve: bool = True, review_customer: bool = False) -> FeedbackImportReport:
    """Import ratings from a CSV (with a header) or JSONL file; columns ``question,answer,rating``
    and optionally ``corrected_answer,comment,given_by,kb,conversation_id,model_version,created_at``.

    ``kb`` applies to rows without their own. With ``retrieve``, rows whose knowledge base is
    ingested get the passages the assistant retrieves for their question. A row identical to
    stored feedback (same knowledge base, question, answer, rating, correction, giver, comment) is
    counted as a duplicate and skipped. Raises ValueError for a file that cannot be read at all.

    The engineer who imports a file vouches for it, so its rows are approved for training; with
    ``review_customer``, rows given by customers wait for review like the web chat's.
    """
    path = Path(path)
    records = read_records(path, "feedback", REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    report = FeedbackImportReport(path=str(path))
    rows: list[_Row] = []
    for line, record in records:
        report.rows += 1
        if isinstance(record, str):
            report.bad_rows.append(BadRow(line, record))
            continue
        try:
            rows.append(_parse(line, record, kb))
        except ValueError as error:
            report.bad_rows.append(BadRow(line, str(error)))

    passages: dict[int, list[Hit]] = {}
    if retrieve:
        from assistant.retrieval.retriever import Retriever

        retriever = Retriever(settings)
        for name in sorted({r.values["kb"] for r in rows if r.values["kb"]}):
            selected = [r for r in rows if r.values["kb"] == name]
            try:
                found = retriever.search_many([r.values["question"] for r in selected], name, k=settings.answer_passages,
                                              mode="hybrid", per_document=settings.answer_chunks_per_document)
            except ValueError as error:  # the knowledge base is not ingested (yet)
                report.warnings.append(f"{error}; its {len(selected)} rows are stored without passages")
                continue
            passages.update({r.line: hits for r, hits in zip(selected, found)})

    with session_scope(settings) as session:
        stored = session.execute(select(Feedback.kb, Feedback.question, Feedback.answer, Feedback.rating,
                                        Feedback.corrected_answer, Feedback.given_by, Feedback.comment)).all()
        seen = {tuple(v or "" for v in row) for row in stored}
        for row in rows:
            key = _fingerprint(row.values)
            if key in seen:
                report.duplicates += 1
                continue
            seen.add(key)
            values = dict(row.values)
            hits = passages.get(row.line)
            status = "pending" if review_customer and values["given_by"] == "customer" else "approved"
            add_feedback(values.pop("rating"), passages=hits, source=f"import:{path.name}", review_status=status,
                         settings=settings, session=session, **values)
            report.added += 1
            report.pending += status == "pending"
            report.corrections += bool(values["corrected_answer"])
            report.with_passages += hits is not None
    return report
