"""Spike alerts: a rise in the share of negative customer messages per knowledge base and channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from assistant.analytics.aggregates import as_utc, customer_messages
from assistant.database.models import Alert, Conversation, Message
from assistant.webhooks import emit


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
        .where(*customer_messages(start, end, None, None, None))
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
        emit(session, "alert.created", pair_kb, {"alert": {
            "id": alert.id, "kind": alert.kind, "kb": alert.kb, "channel": alert.channel,
            "window_start": alert.window_start.isoformat(), "window_end": alert.window_end.isoformat(),
            "messages": alert.messages, "negative": alert.negative, "negative_share": alert.negative_share,
            "baseline_share": alert.baseline_share, "threshold": alert.threshold}})
        alerts.append(alert)
    return alerts


def scan_negative_spikes(session: Session, start: datetime, end: datetime, rule: SpikeRule = SpikeRule(),
                         step: timedelta = timedelta(hours=1)) -> list[Alert]:
    """``detect_negative_spikes`` for windows ending every ``step`` from ``start`` to ``end``.

    Used after importing history, whose spikes happened before anyone could be alerted.
    """
    alerts: list[Alert] = []
    at = as_utc(start).replace(minute=0, second=0, microsecond=0) + step
    stop = as_utc(end) + step
    while at <= stop:
        alerts.extend(detect_negative_spikes(session, at, rule))
        at += step
    return alerts
