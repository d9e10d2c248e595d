"""The operator dashboard's numbers, as pandas tables, without Streamlit (tested directly).

Sentiment comes from ``assistant.analytics.aggregates`` (aggregated in the database); the rest (feedback by
model version, unanswered questions, tickets, a conversation's drill-down) is read here. Every
function takes one session, the caller (``Caller``: who is looking) and a half-open UTC period
``start <= t < end``; ``kb`` None means every knowledge base the caller may see.

Every query is filtered by the caller's knowledge bases here, not only by the page's menu: an
operator limited to some knowledge bases never gets another's conversations, alerts, tickets,
feedback or questions, whatever ``kb`` a page asks for (asking for one of those is AccessDenied).

CSV exports go through ``csv_bytes``, which keeps a spreadsheet from running customer text as a formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import pandas as pd
from sqlalchemy import and_, case, func, select, true
from sqlalchemy.orm import Session

from assistant.access import AccessDenied, Caller
from assistant.analytics.aggregates import customer_message_span, known_values, sentiment_summary, worst_conversations
from assistant.database.models import Alert, Conversation, Feedback, Message, Ticket

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
UP_RATINGS = ("up", "4", "5")
DOWN_RATINGS = ("down", "1", "2")
TIME_GROUPS = ("day", "hour", "week")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe; anything else is unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV for a download button, every text cell (and header) neutralised."""
    safe = frame.rename(columns=lambda c: neutralise(str(c)))
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(neutralise)
    # CRLF rows (RFC 4180): a cell holding a bare CR is then quoted instead of splitting its row.
    return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def scope(caller: Caller, kb: str | None) -> list[str] | None:
    """The knowledge bases a query may read: ``[kb]`` when the caller may see it, else all the caller's
    (None: every one, for admins and unlimited operators). Customers get AccessDenied."""
    if not caller.is_staff:
        raise AccessDenied("the operator dashboard is for our team only")
    if kb is not None:
        caller.check_staff(kb, "that knowledge base")
        return [kb]
    return None if caller.knowledge_bases is None else sorted(caller.knowledge_bases)


def _kb_in(column, kbs: list[str] | None):
    """The WHERE condition for ``scope``'s answer (an empty list matches nothing)."""
    return true() if kbs is None else column.in_(kbs)


def knowledge_base_choices(session: Session, caller: Caller) -> list[str]:
    """The knowledge bases the filter offers: those with conversations, or for a limited operator theirs."""
    if caller.knowledge_bases is not None:
        return sorted(caller.knowledge_bases)
    return known_values(session)["kb"]


def _summary(session: Session, period: Period, group_by: str | None, kbs: list[str] | None) -> list[dict[str, Any]]:
    """``sentiment_summary`` over several knowledge bases: one query each, merged per group (the means
    weighted by message counts), in the order ``sentiment_summary`` gives."""
    if kbs is None or len(kbs) == 1:
        return sentiment_summary(session, period.start, period.end, group_by=group_by, kb=kbs[0] if kbs else None)
    merged: dict[str, dict[str, Any]] = {}
    for kb in kbs:
        for row in sentiment_summary(session, period.start, period.end, group_by=group_by, kb=kb):
            into = merged.setdefault(row["group"], {"group": row["group"], "messages": 0, "negative": 0, "neutral": 0,
                                                    "positive": 0, "score_sum": 0.0})
            for key in ("messages", *SENTIMENTS):
                into[key] += row[key]
            into["score_sum"] += row["mean_score"] * row["messages"]
    rows = [{"group": r["group"], "messages": r["messages"], "negative": r["negative"], "neutral": r["neutral"],
             "positive": r["positive"], "share_negative": round(r["negative"] / r["messages"], 4),
             "mean_score": round(r["score_sum"] / r["messages"], 4)} for r in merged.values()]
    if group_by in TIME_GROUPS:
        return sorted(rows, key=lambda r: r["group"])
    return sorted(rows, key=lambda r: (-r["negative"], -r["messages"], str(r["group"])))


@dataclass(frozen=True)
class Period:
    """Whole UTC days from ``first`` to ``last`` inclusive, as the date filter shows them."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=timezone.utc)


def default_period(session: Session, days: int = 14, today: date | None = None) -> Period:
    """The last ``days`` days that have customer messages (imported history can be older than today)."""
    _, last = customer_message_span(session)
    end = last.date() if last is not None else (today or datetime.now(timezone.utc).date())
    return Period(end - timedelta(days=days - 1), end)


def sentiment_over_time(session: Session, caller: Caller, period: Period, group_by: str = "day",
                        kb: str | None = None) -> pd.DataFrame:
    """One row per (time bucket, sentiment class) with its message count: the stacked chart's data."""
    rows = _summary(session, period, group_by, scope(caller, kb))
    long = [{"period": row["group"], "sentiment": label, "messages": row[label]} for row in rows for label in SENTIMENTS]
    return pd.DataFrame(long, columns=["period", "sentiment", "messages"])


def sentiment_by(session: Session, caller: Caller, period: Period, group_by: str, kb: str | None = None) -> pd.DataFrame:
    """Counts per class, share negative and mean score per channel, knowledge base or topic."""
    rows = _summary(session, period, group_by, scope(caller, kb))
    return pd.DataFrame(rows, columns=["group", "messages", "negative", "neutral", "positive", "share_negative",
                                       "mean_score"]).rename(columns={"group": group_by})


def alerts(session: Session, caller: Caller, period: Period, kb: str | None = None) -> pd.DataFrame:
    """Negative-spike alerts whose window ends in the period, newest first."""
    query = select(Alert).where(Alert.window_end >= period.start, Alert.window_end < period.end,
                                _kb_in(Alert.kb, scope(caller, kb)))
    rows = [{"id": a.id, "kb": a.kb, "channel": a.channel, "window_start": a.window_start, "window_end": a.window_end,
             "messages": a.messages, "negative": a.negative, "negative_share": a.negative_share,
             "baseline_share": a.baseline_share, "acknowledged": a.acknowledged_at is not None}
            for a in session.scalars(query.order_by(Alert.window_end.desc()))]
    return pd.DataFrame(rows, columns=["id", "kb", "channel", "window_start", "window_end", "messages", "negative",
                                       "negative_share", "baseline_share", "acknowledged"])


def most_negative(session: Session, caller: Caller, period: Period, kb: str | None = None, limit: int = 10) -> pd.DataFrame:
    """The conversations with the lowest mean customer sentiment in the period (for several knowledge
    bases: each one's worst, merged; the overall worst are among them)."""
    kbs = scope(caller, kb)
    if kbs is None or len(kbs) == 1:
        rows = worst_conversations(session, period.start, period.end, limit=limit, kb=kbs[0] if kbs else None)
    else:
        rows = [row for one in kbs for row in worst_conversations(session, period.start, period.end, limit=limit, kb=one)]
        rows = sorted(rows, key=lambda r: (r["mean_score"], -r["negative"], r["conversation_id"]))[:limit]
    return pd.DataFrame(rows, columns=["conversation_id", "external_id", "channel", "kb", "started_at", "messages",
                                       "negative", "mean_score", "min_score", "worst_message", "worst_topic"])


TRANSCRIPT_COLUMNS = ["id", "at", "role", "text", "sentiment", "score", "topic", "answer_kind", "model", "trace"]


def transcript_rows(session: Session, caller: Caller, conversation_id: int) -> list[dict[str, Any]]:
    """Every message of a conversation with its sentiment, answer kind and tool trace, oldest first
    (AccessDenied when the conversation's knowledge base is not the caller's)."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise ValueError(f"there is no conversation {conversation_id}")
    scope(caller, None)
    caller.check_conversation(conversation_id, conversation.kb)
    messages = session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.created_at, Message.id)
    )
    return [{"id": m.id, "at": m.created_at, "role": m.role, "text": m.text, "sentiment": m.sentiment_label,
             "score": m.sentiment_score, "topic": m.topic, "answer_kind": m.answer_kind, "model": m.model_version,
             "trace": m.trace} for m in messages]


def transcript(session: Session, caller: Caller, conversation_id: int) -> pd.DataFrame:
    """``transcript_rows`` as a table (for the CSV export)."""
    return pd.DataFrame(transcript_rows(session, caller, conversation_id), columns=TRANSCRIPT_COLUMNS)


def _in_period(column, period: Period):
    return and_(column >= period.start, column < period.end)


def feedback_by_model(session: Session, caller: Caller, period: Period, kb: str | None = None) -> pd.DataFrame:
    """Per model version: answers given, feedback received, feedback rate and thumbs-up share.

    The feedback rate is feedback per answer of that version in the period; the thumbs-up
    share counts ``up`` (and 4-5 stars) among the rated feedback that says up or down.
    """
    kbs = scope(caller, kb)
    answers_query = (
        select(Message.model_version, func.count(Message.id))
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(Message.role == "assistant", _in_period(Message.created_at, period), _kb_in(Conversation.kb, kbs))
        .group_by(Message.model_version)
    )
    feedback_query = (
        select(Feedback.model_version, func.count(Feedback.id),
               func.sum(case((Feedback.rating.in_(UP_RATINGS), 1), else_=0)),
               func.sum(case((Feedback.rating.in_(DOWN_RATINGS), 1), else_=0)),
               func.sum(case((Feedback.corrected_answer.is_not(None), 1), else_=0)))
        .where(_in_period(Feedback.created_at, period), _kb_in(Feedback.kb, kbs))
        .group_by(Feedback.model_version)
    )
    answers = {version: int(count) for version, count in session.execute(answers_query)}
    feedback = {version: (int(n), int(up or 0), int(down or 0), int(corrected or 0))
                for version, n, up, down, corrected in session.execute(feedback_query)}
    rows = []
    for version in sorted(set(answers) | set(feedback), key=lambda v: (v is None, str(v))):
        n, up, down, corrected = feedback.get(version, (0, 0, 0, 0))
        given = answers.get(version, 0)
        rows.append({"model_version": version or "(unknown)", "answers": given, "feedback": n, "up": up, "down": down,
                     "corrected": corrected, "feedback_rate": round(n / given, 4) if given else None,
                     "thumbs_up_share": round(up / (up + down), 4) if up + down else None})
    return pd.DataFrame(rows, columns=["model_version", "answers", "feedback", "up", "down", "corrected",
                                       "feedback_rate", "thumbs_up_share"])


def _refusal_reason(trace: Any) -> str | None:
    """Why the answer was a refusal, from the trace the agent (or the chat page) stored."""
    if not isinstance(trace, dict):
        return None
    answer = trace.get("answer")
    return (answer or {}).get("reason") if isinstance(answer, dict) else trace.get("reason")


def unanswered(session: Session, caller: Caller, period: Period, kb: str | None = None, limit: int = 200) -> pd.DataFrame:
    """Questions the assistant refused (the help center did not cover them), newest first."""
    query = (
        select(Message, Conversation.kb, Conversation.channel)
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(Message.role == "assistant", Message.answer_kind == "refusal", _in_period(Message.created_at, period),
               _kb_in(Conversation.kb, scope(caller, kb)))
        .order_by(Message.created_at.desc()).limit(limit)
    )
    rows = []
    for message, message_kb, channel in session.execute(query):
        question = session.scalar(
            select(Message.text).where(Message.conversation_id == message.conversation_id, Message.role == "customer",
                                       Message.id < message.id).order_by(Message.id.desc()).limit(1)
        )
        rows.append({"at": message.created_at, "conversation_id": message.conversation_id, "kb": message_kb,
                     "channel": channel, "question": question or "", "reason": _refusal_reason(message.trace)})
    return pd.DataFrame(rows, columns=["at", "conversation_id", "kb", "channel", "question", "reason"])


def tickets(session: Session, caller: Caller, statuses: tuple[str, ...] = ("open", "assigned"),
            kb: str | None = None) -> pd.DataFrame:
    """The ticket queue: urgent first, then oldest first. ``last_from`` is who wrote the conversation's
    newest message (``customer``: someone should answer; ``agent``: a person of the team did), at ``last_at``."""
    rank = case({"urgent": 0, "high": 1, "normal": 2, "low": 3}, value=Ticket.priority, else_=4)
    newest = (select(func.max(Message.id)).where(Message.conversation_id == Ticket.conversation_id)
              .correlate(Ticket).scalar_subquery())
    query = (select(Ticket, Conversation.kb, Conversation.channel, Message.role, Message.created_at)
             .join(Conversation, Ticket.conversation_id == Conversation.id)
             .outerjoin(Message, Message.id == newest)
             .where(Ticket.status.in_(statuses), _kb_in(Conversation.kb, scope(caller, kb)))
             .order_by(rank, Ticket.created_at))
    rows = [{"id": t.id, "priority": t.priority, "status": t.status, "assignee": t.assignee,
             "conversation_id": t.conversation_id, "kb": ticket_kb, "channel": channel, "reason": t.reason,
             "created_at": t.created_at, "updated_at": t.updated_at, "messages": len(t.transcript or []),
             "last_from": last_from, "last_at": last_at}
            for t, ticket_kb, channel, last_from, last_at in session.execute(query)]
    return pd.DataFrame(rows, columns=["id", "priority", "status", "assignee", "conversation_id", "kb", "channel",
                                       "reason", "created_at", "updated_at", "messages", "last_from", "last_at"])


def overview(session: Session, caller: Caller, period: Period, kb: str | None = None) -> dict[str, Any]:
    """The headline numbers: customer messages, share negative, open tickets, alerts."""
    kbs = scope(caller, kb)
    total = _summary(session, period, None, kbs)
    messages = total[0]["messages"] if total else 0
    open_query = select(func.count(Ticket.id)).join(Conversation, Ticket.conversation_id == Conversation.id).where(
        Ticket.status != "closed", _kb_in(Conversation.kb, kbs))
    return {"messages": messages, "share_negative": total[0]["share_negative"] if total else None,
            "open_tickets": int(session.scalar(open_query) or 0), "alerts": len(alerts(session, caller, period, kb))}


def update_ticket(session: Session, caller: Caller, ticket_id: int, status: str, assignee: str | None) -> Ticket:
    """Move a ticket of a conversation the caller may see (AccessDenied otherwise); the caller commits."""
    from assistant.conversations.tickets import set_ticket_status

    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise ValueError(f"there is no ticket #{ticket_id}")
    scope(caller, None)
    caller.check_conversation(ticket.conversation_id, session.scalar(
        select(Conversation.kb).where(Conversation.id == ticket.conversation_id)))
    return set_ticket_status(session, ticket_id, status, assignee)


REVIEW_COLUMNS = ["id", "at", "kb", "conversation", "rating", "question", "answer", "suggested_answer", "comment"]


def pending_feedback(session: Session, caller: Caller, kb: str | None = None, limit: int = 100) -> pd.DataFrame:
    """Customers' ratings and suggested answers awaiting review, oldest first (the review screen's queue).

    Only the knowledge bases the caller may see: an operator limited to some never gets another's
    suggestions (feedback that names no knowledge base is for unlimited staff). Customers get AccessDenied.
    """
    query = (select(Feedback, Message.conversation_id).outerjoin(Message, Feedback.message_id == Message.id)
             .where(Feedback.review_status == "pending", _kb_in(Feedback.kb, scope(caller, kb)))
             .order_by(Feedback.created_at, Feedback.id).limit(limit))
    rows = [{"id": f.id, "at": f.created_at, "kb": f.kb,
             "conversation": str(conversation_id) if conversation_id is not None else f.conversation_key,
             "rating": f.rating, "question": f.question, "answer": f.answer, "suggested_answer": f.corrected_answer,
             "comment": f.comment} for f, conversation_id in session.execute(query)]
    return pd.DataFrame(rows, columns=REVIEW_COLUMNS)
