"""The feedback store: ratings and corrections of the assistant's answers, kept for verified answers
and for fine-tuning.

Every rating keeps what produced the rated answer (question, prompt, retrieved passages, model
version), copied from the message it rates, so a training snapshot can rebuild exactly the prompt
the model saw. Two ways in: :func:`add_feedback` (the chat UI's thumbs and the agent's correction
box, and `helpmate feedback add`), and :func:`import_feedback` for feedback collected elsewhere
(CSV or JSONL; bad rows are reported by line and skipped, rows already stored are skipped too, so
an import can be run again). Imported feedback has no prompt of its own; when its knowledge base is
ingested, the passages the assistant retrieves for the question are stored with it, so training
sees the prompt the assistant would build.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import Chunk, Conversation, Document, Feedback, Message
from assistant.conversations.records import BadRow, read_records
from assistant.retrieval.types import Hit

Label = Literal["good", "bad"]
GIVERS: tuple[str, ...] = ("customer", "agent")
REQUIRED_COLUMNS: tuple[str, ...] = ("question", "answer", "rating")
OPTIONAL_COLUMNS: tuple[str, ...] = ("corrected_answer", "comment", "given_by", "kb", "conversation_id", "model_version", "created_at")
MAX_TEXT_CHARS = 20_000
_THUMBS = {"up": "up", "down": "down", "thumbs_up": "up", "thumbs_down": "down", "+1": "up", "-1": "down",
           "good": "up", "bad": "down", "positive": "up", "negative": "down", "👍": "up", "👎": "down"}


def normalise_rating(value: Any) -> str:
    """``up`` or ``down`` (thumbs; also accepts good/bad, +1/-1) or ``1``..``5`` (stars)."""
    text = str(value).strip().lower()
    if text in _THUMBS:
        return _THUMBS[text]
    if text in {"1", "2", "3", "4", "5"}:
        return text
    raise ValueError(f"rating {value!r} is neither up/down nor a number of stars from 1 to 5")


def label_of(rating: str) -> Label | None:
    """Whether a rating marks the answer good or bad; 3 stars says neither (None)."""
    if rating == "up" or rating in ("4", "5"):
        return "good"
    if rating == "down" or rating in ("1", "2"):
        return "bad"
    return None


def hit_to_dict(hit: Hit) -> dict[str, Any]:
    """A retrieved passage as stored with feedback (JSON)."""
    return asdict(hit)


def hit_from_dict(data: dict[str, Any]) -> Hit:
    """A stored passage back as a ``Hit``, for rebuilding the prompt."""
    return Hit(**{k: data[k] for k in Hit.__dataclass_fields__ if k in data})


def _clean(value: Any, what: str, required: bool = False) -> str | None:
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            raise ValueError(f"{what} is empty")
        return None
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{what} has {len(text)} characters, more than {MAX_TEXT_CHARS}")
    return text


def _giver(value: Any) -> str:
    giver = (str(value).strip().lower() if value not in (None, "") else "customer")
    if giver not in GIVERS:
        raise ValueError(f"given_by {value!r} is not one of {', '.join(GIVERS)}")
    return giver


def _passages_of_chunks(session: Session, chunk_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The stored passages for a message's retrieved chunk ids, in the order they were numbered."""
    rows = session.execute(
        select(Chunk, Document.source).join(Document, Document.id == Chunk.document_id).where(Chunk.id.in_(list(chunk_ids)))
    ).all()
    by_id = {chunk.id: (chunk, source) for chunk, source in rows}
    return [hit_to_dict(Hit(chunk.id, chunk.document_id, chunk.text, source, chunk.title, chunk.section, chunk.page, 0.0))
            for chunk, source in (by_id[i] for i in chunk_ids if i in by_id)]


def add_feedback(
    rating: str,
    *,
    message_id: int | None = None,
    question: str | None = None,
    answer: str | None = None,
    kb: str | None = None,
    corrected_answer: str | None = None,
    comment: str | None = None,
    given_by: str = "customer",
    conversation_key: str | None = None,
    prompt: Sequence[dict[str, str]] | None = None,
    passages: Sequence[Hit | dict[str, Any]] | None = None,
    model_version: str | None = None,
    source: str = "api",
    created_at: datetime | None = None,
    settings: Settings,
    session: Session | None = None,
) -> Feedback:
    """Store one rating; what the UI calls on a thumb, a star rating or an agent's correction.

    With ``message_id`` (an assistant message in the database), the answer, the customer's
    question before it, the knowledge base, the model version, the retrieved passages and the
    prompt (when the message's trace recorded it) are taken from the conversation; arguments given
    explicitly win. Without it, ``question`` and ``answer`` are required.
    """
    if session is None:
        with session_scope(settings) as own:
            return add_feedback(rating, message_id=message_id, question=question, answer=answer, kb=kb,
                                corrected_answer=corrected_answer, comment=comment, given_by=given_by,
                                conversation_key=conversation_key, prompt=prompt, passages=passages,
                                model_version=model_version, source=source, created_at=created_at, settings=settings,
                                session=own)
    stored_passages = [hit_to_dict(p) if isinstance(p, Hit) else dict(p) for p in passages] if passages is not None else None
    chunk_ids = [p["chunk_id"] for p in stored_passages] if stored_passages is not None else None
    if message_id is not None:
        message = session.get(Message, message_id)
        if message is None:
            raise ValueError(f"message {message_id} does not exist; rate a stored assistant message, or give question and answer")
        if message.role != "assistant":
            raise ValueError(f"message {message_id} is a {message.role} message; only assistant answers are rated")
        conversation = session.get(Conversation, message.conversation_id)
        asked = session.scalars(
            select(Message.text).where(Message.conversation_id == message.conversation_id, Message.role == "customer",
                                       Message.created_at <= message.created_at, Message.id != message.id)
            .order_by(Message.created_at.desc(), Message.id.desc()).limit(1)
        ).first()
        trace = message.trace or {}
        question = question or asked or trace.get("question")
        answer = answer or message.text
        kb = kb or (conversation.kb if conversation else None)
        model_version = model_version or message.model_version
        conversation_key = conversation_key or str(message.conversation_id)
        if prompt is None and isinstance(trace.get("prompt"), list):
            prompt = trace["prompt"]
        if stored_passages is None and message.retrieved_chunk_ids:
            chunk_ids = [int(i) for i in message.retrieved_chunk_ids]
            stored_passages = _passages_of_chunks(session, chunk_ids)
    question = _clean(question, "question", required=True)
    answer = _clean(answer, "answer", required=True)
    row = Feedback(
        message_id=message_id, conversation_key=conversation_key or f"feedback-{datetime.now(timezone.utc).timestamp():.6f}",
        kb=_clean(kb, "kb"), question=question, answer=answer, rating=normalise_rating(rating),
        corrected_answer=_clean(corrected_answer, "corrected answer"), comment=_clean(comment, "comment"),
        given_by=_giver(given_by), prompt=[dict(m) for m in prompt] if prompt else None,
        retrieved_chunk_ids=chunk_ids, passages=stored_passages, model_version=model_version, source=source,
        created_at=created_at or datetime.now(timezone.utc),
    )
    session.add(row)
    session.flush()
    if row.conversation_key.startswith("feedback-"):
        row.conversation_key = f"feedback-{row.id}"  # one conversation per unlinked rating
    return row


# --- import --------------------------------------------------------------------------------------


@dataclass
class FeedbackImportReport:
    """What an import did; every row not added is either a duplicate or listed in ``bad_rows``."""

    path: str
    rows: int = 0
    added: int = 0
    corrections: int = 0
    duplicates: int = 0
    with_passages: int = 0
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
        "question": _clean(record.get("question"), "question", required=True),
        "answer": _clean(record.get("answer"), "answer", required=True),
        "rating": normalise_rating(record.get("rating") if record.get("rating") not in (None, "") else _missing("rating")),
        "corrected_answer": _clean(record.get("corrected_answer"), "corrected_answer"),
        "comment": _clean(record.get("comment"), "comment"),
        "given_by": _giver(record.get("given_by")),
        "kb": _clean(record.get("kb"), "kb") or default_kb,
        "conversation_key": _clean(record.get("conversation_id"), "conversation_id"),
        "model_version": _clean(record.get("model_version"), "model_version"),
        "created_at": _parse_created_at(record.get("created_at")),
    }
    return _Row(line, values)


def _missing(column: str) -> str:
    raise ValueError(f"{column} is empty")


def _fingerprint(values: dict[str, Any]) -> tuple:
    return tuple(values.get(k) or "" for k in ("kb", "question", "answer", "rating", "corrected_answer", "given_by", "comment"))


def import_feedback(path: Path, kb: str | None = None, *, settings: Settings,
                    retrieve: bool = True) -> FeedbackImportReport:
    """Import ratings from a CSV (with a header) or JSONL file; columns ``question,answer,rating``
    and optionally ``corrected_answer,comment,given_by,kb,conversation_id,model_version,created_at``.

    ``kb`` applies to rows without their own. With ``retrieve``, rows whose knowledge base is
    ingested get the passages the assistant retrieves for their question. A row identical to
    stored feedback (same knowledge base, question, answer, rating, correction, giver, comment) is
    counted as a duplicate and skipped. Raises ValueError for a file that cannot be read at all.
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
                found = retriever.search_many([r.values["question"] for r in selected], name, k=settings.answer_passages, mode="hybrid")
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
            add_feedback(values.pop("rating"), passages=hits, source=f"import:{path.name}", settings=settings,
                         session=session, **values)
            report.added += 1
            report.corrections += bool(values["corrected_answer"])
            report.with_passages += hits is not None
    return report


# --- reading -------------------------------------------------------------------------------------


def list_feedback(settings: Settings, kb: str | None = None, after_id: int | None = None,
                  only_corrections: bool = False, limit: int | None = None) -> list[Feedback]:
    """Stored feedback, oldest first; ``after_id`` keeps what came in after a training snapshot."""
    query = select(Feedback).order_by(Feedback.id)
    if kb is not None:
        query = query.where(Feedback.kb == kb)
    if after_id is not None:
        query = query.where(Feedback.id > after_id)
    if only_corrections:
        query = query.where(Feedback.corrected_answer.is_not(None))
    if limit is not None:
        query = query.limit(limit)
    with session_scope(settings) as session:
        return list(session.scalars(query).all())


def count_feedback(settings: Settings, after_id: int | None = None) -> int:
    """How many ratings are stored (after ``after_id``, when given)."""
    query = select(func.count(Feedback.id))
    if after_id is not None:
        query = query.where(Feedback.id > after_id)
    with session_scope(settings) as session:
        return int(session.scalar(query) or 0)


def get_feedback(feedback_id: int, settings: Settings) -> Feedback:
    """One stored rating; the error says how to find ids."""
    with session_scope(settings) as session:
        row = session.get(Feedback, feedback_id)
    if row is None:
        raise ValueError(f"feedback {feedback_id} does not exist; `helpmate feedback list` shows the stored ids")
    return row
