"""Sentiment aggregates from the database: the one way Helpmate reads customer sentiment back.

``sentiment_summary`` and ``worst_conversations`` serve the operator dashboard, `helpmate ask`
and the alerts alike, and they aggregate in the database (GROUP BY), identically on SQLite and
PostgreSQL, so they stay fast on a year of messages. Times are UTC; periods are half-open,
``start <= created_at < end``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal, get_args

from sqlalchemy import ColumnElement, case, func, literal, select
from sqlalchemy.orm import Session

from assistant.database.models import Conversation, Message

GroupBy = Literal["day", "hour", "week", "channel", "topic", "kb"]
GROUP_BYS: tuple[str, ...] = get_args(GroupBy)


def customer_messages(start: datetime | None, end: datetime | None, kb: str | None, channel: str | None,
                     topic: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Message.role == "customer", Message.sentiment_label.is_not(None)]
    if start is not None:
        conditions.append(Message.created_at >= start)
    if end is not None:
        conditions.append(Message.created_at < end)
    if kb is not None:
        conditions.append(Conversation.kb == kb)
    if channel is not None:
        conditions.append(Conversation.channel == channel)
    if topic is not None:
        conditions.append(Message.topic == topic)
    return conditions


def _bucket(session: Session, group_by: GroupBy | None) -> ColumnElement:
    """The GROUP BY expression; time buckets are UTC and rendered as ISO strings on both databases."""
    column = Message.created_at
    postgres = session.get_bind().dialect.name == "postgresql"
    if group_by in ("day", "hour", "week"):
        if postgres:
            utc = func.timezone("UTC", column)
            if group_by == "week":
                return func.to_char(func.date_trunc("week", utc), "YYYY-MM-DD")
            return func.to_char(utc, "YYYY-MM-DD" if group_by == "day" else 'YYYY-MM-DD"T"HH24:00')
        if group_by == "week":  # the Monday of the ISO week
            return func.date(column, "-6 days", "weekday 1")
        return func.strftime("%Y-%m-%d" if group_by == "day" else "%Y-%m-%dT%H:00", column)
    if group_by == "channel":
        return Conversation.channel
    if group_by == "kb":
        return Conversation.kb
    if group_by == "topic":
        return Message.topic
    if group_by is None:
        return literal("all")
    raise ValueError(f"cannot group sentiment by {group_by!r}; choose one of {', '.join(GROUP_BYS)}")


def sentiment_summary(session: Session, start: datetime | None = None, end: datetime | None = None,
                      group_by: GroupBy | None = "day", kb: str | None = None, channel: str | None = None,
                      topic: str | None = None) -> list[dict[str, Any]]:
    """Customer messages per group: counts per class, share negative and mean score.

    One row per group (``group`` is a UTC date/hour/week-Monday string, a channel, a knowledge
    base or a topic; ``"all"`` when ``group_by`` is None), time groups in order and the other
    groups by most negative messages first. Grouping by topic counts only messages with a topic,
    which are the negative ones.
    """
    bucket = _bucket(session, group_by).label("group")
    negative = func.sum(case((Message.sentiment_label == "negative", 1), else_=0))
    query = (
        select(
            bucket,
            func.count(Message.id).label("messages"),
            negative.label("negative"),
            func.sum(case((Message.sentiment_label == "neutral", 1), else_=0)).label("neutral"),
            func.sum(case((Message.sentiment_label == "positive", 1), else_=0)).label("positive"),
            func.avg(Message.sentiment_score).label("mean_score"),
        )
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(*customer_messages(start, end, kb, channel, topic))
    )
    if group_by is not None:  # a constant GROUP BY is an error on PostgreSQL
        query = query.group_by(bucket)
    if group_by == "topic":
        query = query.where(Message.topic.is_not(None))
    if group_by in ("day", "hour", "week"):
        query = query.order_by(bucket)
    elif group_by is not None:
        query = query.order_by(negative.desc(), func.count(Message.id).desc(), bucket)
    rows = []
    for row in session.execute(query):
        if row.messages == 0:
            continue
        rows.append({
            "group": row.group if row.group is not None else "(none)",
            "messages": int(row.messages),
            "negative": int(row.negative),
            "neutral": int(row.neutral),
            "positive": int(row.positive),
            "share_negative": round(int(row.negative) / int(row.messages), 4),
            "mean_score": round(float(row.mean_score), 4),
        })
    return rows


def worst_conversations(session: Session, start: datetime | None = None, end: datetime | None = None,
                        limit: int = 5, kb: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
    """The conversations whose customer messages in the period have the lowest mean score.

    Each row carries the conversation's ids, channel, knowledge base, counts, mean and lowest
    score, and its most negative customer message (text and topic), so an operator can open it.
    """
    mean_score = func.avg(Message.sentiment_score)
    negative = func.sum(case((Message.sentiment_label == "negative", 1), else_=0))
    query = (
        select(
            Conversation.id, Conversation.external_id, Conversation.channel, Conversation.kb, Conversation.started_at,
            func.count(Message.id).label("messages"), negative.label("negative"),
            mean_score.label("mean_score"), func.min(Message.sentiment_score).label("min_score"),
        )
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(*customer_messages(start, end, kb, channel, None))
        .group_by(Conversation.id, Conversation.external_id, Conversation.channel, Conversation.kb, Conversation.started_at)
        .order_by(mean_score, negative.desc(), Conversation.id)
        .limit(limit)
    )
    rows = [dict(row._mapping) for row in session.execute(query)]
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    lowest = {}
    for message in session.scalars(
        select(Message).where(Message.conversation_id.in_(ids), *customer_messages(start, end, None, None, None))
        .order_by(Message.sentiment_score, Message.created_at)
    ):
        lowest.setdefault(message.conversation_id, message)
    result = []
    for row in rows:
        message = lowest[row["id"]]
        result.append({
            "conversation_id": row["id"], "external_id": row["external_id"], "channel": row["channel"], "kb": row["kb"],
            "started_at": row["started_at"], "messages": int(row["messages"]), "negative": int(row["negative"]),
            "mean_score": round(float(row["mean_score"]), 4), "min_score": round(float(row["min_score"]), 4),
            "worst_message": message.text, "worst_topic": message.topic,
        })
    return result


def customer_message_span(session: Session) -> tuple[datetime | None, datetime | None]:
    """The first and last time a scored customer message was stored (to say what data exists)."""
    row = session.execute(
        select(func.min(Message.created_at), func.max(Message.created_at)).where(*customer_messages(None, None, None, None, None))
    ).one()
    return as_utc(row[0]), as_utc(row[1])


def known_values(session: Session) -> dict[str, list[str]]:
    """The channels, knowledge bases and topics present, to recognise them in an operator's question."""
    return {
        "channel": sorted(v for v in session.scalars(select(Conversation.channel).distinct()) if v),
        "kb": sorted(v for v in session.scalars(select(Conversation.kb).distinct()) if v),
        "topic": sorted(v for v in session.scalars(select(Message.topic).distinct()) if v),
    }


def as_utc(value: datetime | None) -> datetime | None:
    """Aggregates (MIN/MAX) bypass the column type on SQLite and come back naive or as text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
