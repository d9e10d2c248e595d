"""What customers feel, from the database: sentiment aggregates, topics of complaints, spike alerts.

``sentiment_summary`` and ``worst_conversations`` are the only way Helpmate reads sentiment back:
the operator dashboard, `helpmate ask` and the alerts all use them, and they aggregate in the
database (GROUP BY), identically on SQLite and PostgreSQL, so they stay fast on a year of messages.
Times are UTC; periods are half-open, ``start <= created_at < end``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Sequence, get_args

import numpy as np
from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.orm import Session

from assistant.config import Settings, get_settings
from assistant.database.models import Alert, Conversation, Message

GroupBy = Literal["day", "hour", "week", "channel", "topic", "kb"]
GROUP_BYS: tuple[str, ...] = get_args(GroupBy)

# A negative message whose best knowledge-base passage is less similar than this (cosine) is
# about nothing the knowledge base covers; it is left for clustering instead of a wrong title.
MIN_TOPIC_SIMILARITY = 0.3


# --- aggregates ----------------------------------------------------------------------------------


def _customer_filter(start: datetime | None, end: datetime | None, kb: str | None, channel: str | None,
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
        .where(*_customer_filter(start, end, kb, channel, topic))
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
        .where(*_customer_filter(start, end, kb, channel, None))
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
        select(Message).where(Message.conversation_id.in_(ids), *_customer_filter(start, end, None, None, None))
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
        select(func.min(Message.created_at), func.max(Message.created_at)).where(*_customer_filter(None, None, None, None, None))
    ).one()
    return _utc(row[0]), _utc(row[1])


def known_values(session: Session) -> dict[str, list[str]]:
    """The channels, knowledge bases and topics present, to recognise them in an operator's question."""
    return {
        "channel": sorted(v for v in session.scalars(select(Conversation.channel).distinct()) if v),
        "kb": sorted(v for v in session.scalars(select(Conversation.kb).distinct()) if v),
        "topic": sorted(v for v in session.scalars(select(Message.topic).distinct()) if v),
    }


def _utc(value: datetime | None) -> datetime | None:
    """Aggregates (MIN/MAX) bypass the column type on SQLite and come back naive or as text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# --- topics --------------------------------------------------------------------------------------

_retrievers: dict[tuple[str, str], Any] = {}
_retrievers_lock = threading.Lock()


def _retriever(settings: Settings):
    from assistant.retrieval import Retriever

    key = (settings.database, str(settings.data_dir))
    with _retrievers_lock:
        if key not in _retrievers:
            _retrievers[key] = Retriever(settings)
        return _retrievers[key]


def kb_topics(texts: Sequence[str], kb: str | None, settings: Settings | None = None) -> list[str | None]:
    """The title of the best-matching document of ``kb`` per text, or None where nothing matches.

    Hybrid search (the same the assistant answers with) finds the document; a text whose best
    passage is further than ``MIN_TOPIC_SIMILARITY`` from it, or a knowledge base that does not
    exist or is empty, gives None, and those texts are clustered instead (``cluster_topics``).
    """
    if not texts or kb is None:
        return [None] * len(texts)
    try:
        results = _retriever(settings or get_settings()).search_many(list(texts), kb, k=1, mode="hybrid")
    except ValueError:  # no such knowledge base (yet)
        return [None] * len(texts)
    topics: list[str | None] = []
    for hits in results:
        hit = hits[0] if hits else None
        if hit is None or hit.dense_score is None or hit.dense_score < MIN_TOPIC_SIMILARITY:
            topics.append(None)
        else:
            topics.append((hit.title or hit.source.rsplit("/", 1)[-1]).strip()[:300])
    return topics


def cluster_topics(texts: Sequence[str], vectors: np.ndarray, max_clusters: int = 10) -> list[str]:
    """Readable topics for messages no knowledge base covers: k-means on their embeddings.

    Each cluster is named by its three most distinctive words (TF-IDF of the cluster's text
    against the other clusters), e.g. "zipper, tent, broke". Deterministic (fixed seed).
    """
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    if n == 0:
        return []
    k = max(1, min(max_clusters, int(round(np.sqrt(n / 2)))))
    labels = np.zeros(n, dtype=int) if k == 1 else KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(vectors)
    documents = [" ".join(texts[i] for i in range(n) if labels[i] == c) for c in range(k)]
    names = []
    try:
        tfidf = TfidfVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b", sublinear_tf=True)
        weights = tfidf.fit_transform(documents).toarray()
        vocabulary = tfidf.get_feature_names_out()
        for c in range(k):
            top = [vocabulary[i] for i in np.argsort(-weights[c])[:3] if weights[c, i] > 0]
            names.append(", ".join(top) if top else "other")
    except ValueError:  # no words at all (only numbers, emoji or stop words)
        names = ["other"] * k
    return [names[c] for c in labels]


def assign_topics(texts: Sequence[str], kb: str | None, settings: Settings | None = None) -> list[str]:
    """A topic for each negative message: its knowledge-base document where one matches, else a cluster."""
    settings = settings or get_settings()
    topics = kb_topics(texts, kb, settings)
    missing = [i for i, topic in enumerate(topics) if topic is None]
    if missing:
        from assistant.embeddings import get_embedder

        unmatched = [texts[i] for i in missing]
        for i, name in zip(missing, cluster_topics(unmatched, get_embedder(settings).encode(unmatched))):
            topics[i] = name
    return [str(topic) for topic in topics]


# --- alerts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpikeRule:
    """When the share of negative customer messages counts as a spike.

    A (knowledge base, channel) pair spikes when, in the ``window`` ending at the time checked, it
    has at least ``min_messages`` customer messages and their negative share exceeds the share
    in the ``baseline`` period before the window by at least ``threshold`` (0.25 = 25 points).
    """

    window: timedelta = timedelta(hours=24)
    baseline: timedelta = timedelta(days=7)
    threshold: float = 0.25
    min_messages: int = 5


def _shares(session: Session, start: datetime, end: datetime, kb: str | None, channel: str | None,
            scoped: bool) -> dict[tuple[str | None, str], tuple[int, int]]:
    query = (
        select(Conversation.kb, Conversation.channel, func.count(Message.id),
               func.sum(case((Message.sentiment_label == "negative", 1), else_=0)))
        .join(Conversation, Message.conversation_id == Conversation.id)
        .where(*_customer_filter(start, end, None, None, None))
        .group_by(Conversation.kb, Conversation.channel)
    )
    if scoped:
        query = query.where(Conversation.kb == kb if kb is not None else Conversation.kb.is_(None),
                            Conversation.channel == channel)
    return {(row[0], row[1]): (int(row[2]), int(row[3] or 0)) for row in session.execute(query)}


def detect_negative_spikes(session: Session, at: datetime, rule: SpikeRule = SpikeRule(),
                           kb: str | None = None, channel: str | None = None, scoped: bool = False) -> list[Alert]:
    """Check the window ending at ``at`` and add an alert row per (kb, channel) that spikes.

    ``scoped`` checks only the given ``kb`` and ``channel`` (the chat path, after each customer
    message); otherwise every pair is checked. A pair that already has an alert overlapping this
    window gets no second one, so one spike gives one alert.
    """
    start = at - rule.window
    # The window includes ``at`` itself: the chat path checks at the time of the message it just stored.
    current = _shares(session, start, at + timedelta(microseconds=1), kb, channel, scoped)
    candidates = {key: value for key, value in current.items()
                  if value[0] >= rule.min_messages and value[1] / value[0] >= rule.threshold}
    if not candidates:
        return []
    before = _shares(session, start - rule.baseline, start, kb, channel, scoped)
    alerts = []
    for (pair_kb, pair_channel), (count, negative) in sorted(candidates.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        base_count, base_negative = before.get((pair_kb, pair_channel), (0, 0))
        baseline_share = base_negative / base_count if base_count else 0.0
        share = negative / count
        if share - baseline_share < rule.threshold:
            continue
        overlapping = session.scalar(
            select(func.count(Alert.id)).where(
                Alert.kind == "negative_spike", Alert.channel == pair_channel,
                Alert.kb == pair_kb if pair_kb is not None else Alert.kb.is_(None),
                and_(Alert.window_end > start, Alert.window_start < at),
            )
        )
        if overlapping:
            continue
        alert = Alert(kind="negative_spike", kb=pair_kb, channel=pair_channel, window_start=start, window_end=at,
                      messages=count, negative=negative, negative_share=round(share, 4),
                      baseline_share=round(baseline_share, 4) if base_count else None, threshold=rule.threshold)
        session.add(alert)
        session.flush()
        alerts.append(alert)
    return alerts


def scan_negative_spikes(session: Session, start: datetime, end: datetime, rule: SpikeRule = SpikeRule(),
                         step: timedelta = timedelta(hours=1)) -> list[Alert]:
    """``detect_negative_spikes`` for windows ending every ``step`` from ``start`` to ``end``.

    Used after importing history, whose spikes happened before anyone could be alerted.
    """
    alerts: list[Alert] = []
    at = _utc(start).replace(minute=0, second=0, microsecond=0) + step
    stop = _utc(end) + step
    while at <= stop:
        alerts.extend(detect_negative_spikes(session, at, rule))
        at += step
    return alerts
