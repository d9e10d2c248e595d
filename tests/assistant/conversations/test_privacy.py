"""Erasing a customer and purging old conversations, on SQLite and PostgreSQL: exactly their rows go
(messages, tickets, the feedback that quotes them), the counts are right, and each run is audited."""

from __future__ import annotations

import getpass
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from assistant.access import AccessDenied, Caller, audit_log
from assistant.conversations.privacy import erase_customer, purge_expired
from assistant.database import session_scope
from assistant.database.models import Conversation, Feedback, Message, Ticket, VerifiedAnswer, WebhookDelivery
from assistant.webhooks import add_webhook, emit

ADMIN = Caller.staff("admin", "adam")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def _conversation(session, customer: str | None, started: datetime, *, last: datetime | None = None,
                  external_id: str | None = None, ticket: bool = False) -> tuple[int, int]:
    """A conversation with a customer message and an answer (at ``started``, or the answer at ``last``),
    optionally a ticket; returns (conversation id, answer message id)."""
    conversation = Conversation(channel="chat", kb="help", customer_id=customer, external_id=external_id, started_at=started)
    session.add(conversation)
    session.flush()
    session.add(Message(conversation_id=conversation.id, role="customer", text=f"Where is my order? I am {customer}.",
                        created_at=started))
    answer = Message(conversation_id=conversation.id, role="assistant", text="It ships tomorrow.", created_at=last or started)
    session.add(answer)
    if ticket:
        session.add(Ticket(conversation_id=conversation.id, reason="asked for a person",
                           transcript=[{"role": "customer", "text": f"I am {customer}"}], created_at=started))
    session.flush()
    return conversation.id, answer.id


def _feedback(session, key: str, *, message_id: int | None = None, source: str = "api") -> int:
    row = Feedback(message_id=message_id, conversation_key=key, kb="help", question="Where is my order?",
                   answer="It ships tomorrow.", rating="up", given_by="customer", source=source)
    session.add(row)
    session.flush()
    return row.id


def _counts(settings) -> dict[str, int]:
    with session_scope(settings) as session:
        return {model.__tablename__: session.scalar(select(func.count()).select_from(model))
                for model in (Conversation, Message, Ticket, Feedback, WebhookDelivery)}


def test_erase_removes_one_customers_conversations_and_everything_quoting_them(db_settings):
    with session_scope(db_settings) as session:
        chat, answer = _conversation(session, "cust-a", NOW, ticket=True)
        imported, _ = _conversation(session, "cust-a", NOW - timedelta(days=3), external_id="T-100")
        other, other_answer = _conversation(session, "cust-b", NOW, ticket=True)
        rated = _feedback(session, str(chat), message_id=answer)  # a thumb on the answer
        _feedback(session, str(chat))  # stored with the conversation's key, no message
        _feedback(session, "T-100", source="import:feedback.csv")  # imported with the conversation's external id
        kept = [_feedback(session, str(other), message_id=other_answer),
                _feedback(session, str(chat), source="import:feedback.csv"),  # another tool's conversation named like it
                _feedback(session, "feedback-9")]
        session.add(VerifiedAnswer(kb="help", question="Where is my order?", answer="It ships tomorrow.",
                                   approved_by="olivia", source_feedback_id=rated))
        # A help desk's webhook was owed the customer's hand-over; the other customer's stays owed.
        add_webhook(session, ADMIN, "https://desk.example.com/hooks", ["ticket.opened"])
        for conversation_id in (chat, other):
            emit(session, "ticket.opened", "help", {"transcript": ["Where is my order?"]}, conversation_id=conversation_id)
    before = _counts(db_settings)

    removed = erase_customer(db_settings, " cust-a ", ADMIN)

    assert removed.as_dict() == {"conversations": 2, "messages": 4, "tickets": 1, "feedback": 3, "webhook_deliveries": 1}
    after = _counts(db_settings)
    assert {table: before[table] - after[table] for table in before} == {
        "conversations": 2, "messages": 4, "tickets": 1, "feedback": 3, "webhook_deliveries": 1}
    with session_scope(db_settings) as session:
        assert session.scalars(select(Conversation.customer_id)).all() == ["cust-b"]
        assert sorted(session.scalars(select(Feedback.id))) == sorted(kept)
        assert session.scalar(select(Ticket.conversation_id)) == other
        verified = session.scalar(select(VerifiedAnswer))
        assert verified.answer == "It ships tomorrow." and verified.source_feedback_id is None  # kept, unlinked
    entry = audit_log(db_settings)[0]
    assert (entry.actor, entry.role, entry.action, entry.target) == ("adam", "admin", "privacy.erase", "cust-a")
    assert entry.detail == removed.as_dict()

    assert erase_customer(db_settings, "cust-a", ADMIN).as_dict() == {"conversations": 0, "messages": 0, "tickets": 0,
                                                                      "feedback": 0, "webhook_deliveries": 0}
    with pytest.raises(AccessDenied, match="only an admin"):
        erase_customer(db_settings, "cust-b", Caller.staff("operator", "olivia"))
    with pytest.raises(ValueError, match="give the customer's id"):
        erase_customer(db_settings, "  ", ADMIN)
    assert _counts(db_settings) == after


def test_purge_removes_only_conversations_last_active_before_the_retention_period(db_settings):
    settings = db_settings.model_copy(update={"retention_days": 30})
    with session_scope(settings) as session:
        old, old_answer = _conversation(session, "cust-a", NOW - timedelta(days=90), ticket=True)
        silent = Conversation(channel="email", kb="help", started_at=NOW - timedelta(days=300))  # never got a message
        session.add(silent)
        ongoing, _ = _conversation(session, "cust-b", NOW - timedelta(days=90), last=NOW - timedelta(days=2))
        recent, recent_answer = _conversation(session, None, NOW - timedelta(days=29), ticket=True)
        _feedback(session, str(old), message_id=old_answer)
        kept = _feedback(session, str(recent), message_id=recent_answer)
    before = _counts(settings)

    purged = purge_expired(settings, ADMIN, now=NOW)

    assert purged.as_dict() == {"conversations": 2, "messages": 2, "tickets": 1, "feedback": 1, "webhook_deliveries": 0,
                                "retention_days": 30,
                                "cutoff": "2026-10-21T12:00:00+00:00"}
    after = _counts(settings)
    assert {table: before[table] - after[table] for table in before} == {
        "conversations": 2, "messages": 2, "tickets": 1, "feedback": 1, "webhook_deliveries": 0}
    with session_scope(settings) as session:
        assert sorted(session.scalars(select(Conversation.id))) == sorted([ongoing, recent])
        assert session.scalars(select(Feedback.id)).all() == [kept]
    entry = audit_log(settings)[0]
    assert (entry.action, entry.target, entry.detail["conversations"]) == (
        "privacy.purge", "last active before 2026-10-21 12:00 UTC", 2)
    assert purge_expired(settings, ADMIN, now=NOW).conversations == 0  # nothing left that old

    with pytest.raises(ValueError, match="HELPMATE_RETENTION_DAYS is 0"):
        purge_expired(db_settings, ADMIN, now=NOW)
    assert _counts(settings) == after


def test_privacy_commands_print_what_they_removed(settings, monkeypatch):
    from assistant.config import get_settings
    from ui.cli import app

    now = datetime.now(timezone.utc)
    with session_scope(settings) as session:
        _conversation(session, "cust-a", now - timedelta(days=400), ticket=True)
        _conversation(session, "cust-b", now - timedelta(days=1))
    runner = CliRunner()

    erased = runner.invoke(app, ["privacy", "erase", "--customer", "cust-b", "--json"])
    assert erased.exit_code == 0, erased.output
    assert json.loads(erased.stdout) == {"customer": "cust-b", "conversations": 1, "messages": 2, "tickets": 0,
                                         "feedback": 0, "webhook_deliveries": 0}
    unknown = runner.invoke(app, ["privacy", "erase", "--customer", "nobody"])
    assert unknown.exit_code == 0 and "nothing stored for customer nobody" in unknown.stdout

    keep_forever = runner.invoke(app, ["privacy", "purge"])
    assert keep_forever.exit_code == 1
    assert "HELPMATE_RETENTION_DAYS is 0" in keep_forever.stderr and "Traceback" not in keep_forever.output

    monkeypatch.setenv("HELPMATE_RETENTION_DAYS", "365")
    get_settings.cache_clear()
    purged = runner.invoke(app, ["privacy", "purge"])
    assert purged.exit_code == 0, purged.output
    assert "(HELPMATE_RETENTION_DAYS=365): 1 conversations, 2 messages, 1 tickets, 0 feedback, 0 webhook deliveries" in purged.stdout
    assert [(e.actor, e.role, e.action) for e in audit_log(settings)[:3]] == [
        (getpass.getuser(), "admin", "privacy.purge"), (getpass.getuser(), "admin", "privacy.erase"),
        (getpass.getuser(), "admin", "privacy.erase")]
