"""The analytics tests' shared history: two days of customer messages on two channels."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from assistant.database import session_scope
from assistant.database.models import Conversation, Message

UTC = timezone.utc
T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # a Monday


def conversation_row(session, external_id, channel, kb="shop"):
    conversation = Conversation(external_id=external_id, channel=channel, kb=kb, started_at=T0)
    session.add(conversation)
    session.flush()
    return conversation


def message_row(session, conversation, created_at, label, score, topic=None, role="customer", text=None):
    session.add(Message(conversation_id=conversation.id, role=role, text=text or f"{label} message", created_at=created_at,
                        sentiment_label=label if role == "customer" else None,
                        sentiment_score=score if role == "customer" else None, topic=topic))


@pytest.fixture
def history(db_settings):
    """Two days, two channels: email turns sour on the second day."""
    with session_scope(db_settings) as session:
        chat = conversation_row(session, "c-chat", "chat")
        mail = conversation_row(session, "c-mail", "email")
        calm = conversation_row(session, "c-calm", "email")
        message_row(session, chat, T0, "positive", 0.8)
        message_row(session, chat, T0 + timedelta(minutes=5), "neutral", 0.1)
        message_row(session, chat, T0 + timedelta(minutes=6), None, None, role="assistant")
        message_row(session, mail, T0 + timedelta(hours=1), "neutral", -0.1)
        message_row(session, calm, T0 + timedelta(hours=2), "positive", 0.6)
        # Day 2 (Tuesday): three negative e-mails, one given at 01:30+02:00, which is still Monday in UTC.
        message_row(session, mail, datetime(2026, 11, 17, 1, 30, tzinfo=timezone(timedelta(hours=2))), "negative", -0.9, topic="Delivery problems")
        message_row(session, mail, T0 + timedelta(days=1), "negative", -0.7, topic="Delivery problems")
        message_row(session, mail, T0 + timedelta(days=1, hours=1), "negative", -0.5, topic="Refunds")
        message_row(session, chat, T0 + timedelta(days=1, hours=2), "neutral", 0.0)
    return db_settings
