"""The feedback store: ratings and corrections of the assistant's answers, kept for verified answers
and for fine-tuning.

Every rating keeps what produced the rated answer (question, prompt, retrieved passages, model
version), copied from the message it rates, so a training snapshot can rebuild exactly the prompt
the model saw. Two ways in: :func:`add_feedback` (the chat UI's thumbs and the agent's correction
box, and `helpmate feedback add`), and ``import_feedback`` for feedback collected elsewhere (CSV or
JSONL, in :mod:`assistant.conversations.feedback_import`).

Customer feedback is untrusted: anyone can open the web chat, and what it suggests would otherwise
decide both what the model learns and the held-out set of the gate that promotes it. So a
customer's rating or suggested answer is stored ``pending`` and reaches training or evaluation
only once staff approve it (:func:`review_feedback`); a customer may rate only their own
conversation's answers, and at most ``feedback_suggestions_per_conversation`` times. Feedback
entered by staff (agents, the CLI, an engineer's import) is ``approved`` as it is stored.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Literal, Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from assistant.access import AccessDenied, Caller, audit
from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import Chunk, Conversation, Document, Feedback, Message
from assistant.retrieval.types import Hit

Label = Literal["good", "bad"]
ReviewStatus = Literal["pending", "approved", "rejected"]
REVIEW_STATUSES: tuple[str, ...] = ("pending", "approved", "rejected")
GIVERS: tuple[str, ...] = ("customer", "agent")
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


def clean_text(value: Any, what: str, required: bool = False) -> str | None:
    """A stripped text field, None when empty; the error names the field (from a form or an import row)."""
    text = "" if value is None else str(value).strip()
    if not text:
        if required:
            raise ValueError(f"{what} is empty")
        return None
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"{what} has {len(text)} characters, more than {MAX_TEXT_CHARS}")
    return text


def check_giver(value: Any) -> str:
    """Who gave a rating (customer or agent; a row that names nobody is a customer's, the cautious reading)."""
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


class TooMuchFeedback(ValueError):
    """A conversation has sent as many ratings and suggestions as one conversation may."""


def _check_suggestion_limit(session: Session, conversation_id: int, settings: Settings) -> None:
    """Refuse customer feedback beyond the per-conversation limit, so one chat cannot flood the review queue.

    The conversation's row is locked first (PostgreSQL; SQLite writes one at a time anyway), so two
    feedback clicks at once cannot both pass the count.
    """
    session.execute(select(Conversation.id).where(Conversation.id == conversation_id).with_for_update())
    sent = session.scalar(select(func.count(Feedback.id)).join(Message, Feedback.message_id == Message.id)
                          .where(Message.conversation_id == conversation_id, Feedback.given_by == "customer")) or 0
    limit = settings.feedback_suggestions_per_conversation
    if sent >= limit:
        raise TooMuchFeedback(f"this conversation has already sent {sent} suggestions, the most one conversation may "
                              f"(HELPMATE_FEEDBACK_SUGGESTIONS_PER_CONVERSATION={limit}); thank you, our team reviews them")


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
    caller: Caller | None = None,
    review_status: ReviewStatus | None = None,
    settings: Settings,
    session: Session | None = None,
) -> Feedback:
    """Store one rating; what the UI calls on a thumb, a star rating or an agent's correction.

    With ``message_id`` (an assistant message in the database), the answer, the customer's
    question before it, the knowledge base, the model version, the retrieved passages and the
    prompt (when the message's trace recorded it) are taken from the conversation; arguments given
    explicitly win. Without it, ``question`` and ``answer`` are required.

    ``caller`` is who gives it. A customer caller may rate only an assistant message of their own
    conversation (AccessDenied otherwise), and a conversation's customer feedback stops at
    ``feedback_suggestions_per_conversation`` (:class:`TooMuchFeedback`). Customer feedback is
    stored ``pending`` unless a staff caller enters it; ``review_status`` sets it outright (an
    engineer's import), except for a customer caller, whose feedback is always pending.
    """
    if session is None:
        with session_scope(settings) as own:
            return add_feedback(rating, message_id=message_id, question=question, answer=answer, kb=kb,
                                corrected_answer=corrected_answer, comment=comment, given_by=given_by,
                                conversation_key=conversation_key, prompt=prompt, passages=passages,
                                model_version=model_version, source=source, created_at=created_at, caller=caller,
                                review_status=review_status, settings=settings, session=own)
    given_by = check_giver(given_by)
    customer = caller is not None and caller.role == "customer"
    if customer and given_by != "customer":
        raise AccessDenied(f"a customer's feedback is a customer's, not an {given_by}'s")
    if customer:
        if message_id is None:
            raise AccessDenied("customers rate the answers of their own conversation; give the rated message")
        review_status = "pending"
    elif review_status is None:
        review_status = "pending" if given_by == "customer" and not (caller and caller.is_staff) else "approved"
    if review_status not in REVIEW_STATUSES:
        raise ValueError(f"review status {review_status!r} is not one of {', '.join(REVIEW_STATUSES)}")
    stored_passages = [hit_to_dict(p) if isinstance(p, Hit) else dict(p) for p in passages] if passages is not None else None
    chunk_ids = [p["chunk_id"] for p in stored_passages] if stored_passages is not None else None
    if message_id is not None:
        message = session.get(Message, message_id)
        if message is None:
            raise ValueError(f"message {message_id} does not exist; rate a stored assistant message, or give question and answer")
        if message.role != "assistant":
            raise ValueError(f"message {message_id} is a {message.role} message; only assistant answers are rated")
        conversation = session.get(Conversation, message.conversation_id)
        if customer:
            caller.check_conversation(message.conversation_id, conversation.kb if conversation else None)
        if given_by == "customer" and not (caller and caller.is_staff):
            _check_suggestion_limit(session, message.conversation_id, settings)
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
    question = clean_text(question, "question", required=True)
    answer = clean_text(answer, "answer", required=True)
    row = Feedback(
        message_id=message_id, conversation_key=conversation_key or f"feedback-{datetime.now(timezone.utc).timestamp():.6f}",
        kb=clean_text(kb, "kb"), question=question, answer=answer, rating=normalise_rating(rating),
        corrected_answer=clean_text(corrected_answer, "corrected answer"), comment=clean_text(comment, "comment"),
        given_by=given_by, prompt=[dict(m) for m in prompt] if prompt else None,
        retrieved_chunk_ids=chunk_ids, passages=stored_passages, model_version=model_version, source=source,
        created_at=created_at or datetime.now(timezone.utc), review_status=review_status,
    )
    session.add(row)
    session.flush()
    if row.conversation_key.startswith("feedback-"):
        row.conversation_key = f"feedback-{row.id}"  # one conversation per unlinked rating
    return row


# --- reading and reviewing ----------------------------------------------------------------------


def _statuses(review_status: str | Sequence[str] | None) -> list[str] | None:
    statuses = [review_status] if isinstance(review_status, str) else (list(review_status) if review_status else None)
    for status in statuses or []:
        if status not in REVIEW_STATUSES:
            raise ValueError(f"review status {status!r} is not one of {', '.join(REVIEW_STATUSES)}")
    return statuses


def list_feedback(settings: Settings, kb: str | None = None, after_id: int | None = None,
                  only_corrections: bool = False, limit: int | None = None,
                  review_status: str | Sequence[str] | None = None) -> list[Feedback]:
    """Stored feedback, oldest first; ``after_id`` keeps what came in after a training snapshot.

    ``review_status`` ("approved" for training, "pending" for the review queue) keeps those only;
    None keeps every status.
    """
    query = select(Feedback).order_by(Feedback.id)
    if kb is not None:
        query = query.where(Feedback.kb == kb)
    if after_id is not None:
        query = query.where(Feedback.id > after_id)
    if only_corrections:
        query = query.where(Feedback.corrected_answer.is_not(None))
    if (statuses := _statuses(review_status)) is not None:
        query = query.where(Feedback.review_status.in_(statuses))
    if limit is not None:
        query = query.limit(limit)
    with session_scope(settings) as session:
        return list(session.scalars(query).all())


def count_feedback(settings: Settings, after_id: int | None = None, review_status: str | Sequence[str] | None = None,
                   reviewed_after: datetime | None = None) -> int:
    """How many ratings are stored (after ``after_id``, when given), of ``review_status`` (None: any).

    With ``reviewed_after``, a rating at or below ``after_id`` that was reviewed after that moment
    counts too: approved after a snapshot was exported, it is new to training although its id is old.
    """
    query = select(func.count(Feedback.id))
    if after_id is not None:
        newer = Feedback.id > after_id
        query = query.where(or_(newer, Feedback.reviewed_at > reviewed_after) if reviewed_after is not None else newer)
    if (statuses := _statuses(review_status)) is not None:
        query = query.where(Feedback.review_status.in_(statuses))
    with session_scope(settings) as session:
        return int(session.scalar(query) or 0)


def review_feedback(settings: Settings, feedback_id: int, approve: bool, by: Caller) -> Feedback:
    """Approve a rating for training and evaluation, or reject it; staff of its knowledge base only, audited.

    A decision can be changed later (rejecting an approved rating keeps it out of the next export).
    """
    with session_scope(settings) as session:
        row = session.get(Feedback, feedback_id)
        if row is None:
            raise ValueError(f"feedback {feedback_id} does not exist; `helpmate feedback list --pending` shows the ids awaiting review")
        by.check_staff(row.kb, "reviewing feedback")
        previous, row.review_status = row.review_status, "approved" if approve else "rejected"
        row.reviewed_by, row.reviewed_at = by.name, datetime.now(timezone.utc)
        session.flush()
    audit(settings, by, f"feedback.{'approve' if approve else 'reject'}", f"feedback {feedback_id}",
          {"kb": row.kb, "given_by": row.given_by, "previous": previous})
    return row


def get_feedback(feedback_id: int, settings: Settings) -> Feedback:
    """One stored rating; the error says how to find ids."""
    with session_scope(settings) as session:
        row = session.get(Feedback, feedback_id)
    if row is None:
        raise ValueError(f"feedback {feedback_id} does not exist; `helpmate feedback list` shows the stored ids")
    return row
