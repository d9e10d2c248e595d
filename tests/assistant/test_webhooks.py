"""Webhooks: events queued with the change they report, sent signed to a real HTTP receiver, retried, scoped."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from assistant.access import AccessDenied, Caller, audit_log
from assistant.analytics.spikes import SpikeRule, detect_negative_spikes
from assistant.conversations.store import add_message, start_conversation
from assistant.conversations.tickets import create_ticket, open_ticket, set_ticket_status, tell_webhooks_of_message
from assistant.database import session_scope
from assistant.database.models import Conversation, Message, Ticket, Webhook, WebhookDelivery
from assistant.webhooks import add_webhook, deliver_due, list_deliveries, manage, remove_webhook, verify_signature
from assistant.webhooks.delivery import MAX_ATTEMPTS, retry_pause
from tests.helpers import WebhookReceiver

ADMIN = Caller.staff("admin", "root")


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.close()


def _conversation(settings, kb: str = "shop") -> int:
    with session_scope(settings) as session:
        return start_conversation(session, "chat", kb=kb).id


def test_a_hand_over_reaches_the_desk_signed_with_its_transcript_and_later_messages(db_settings, receiver):
    with session_scope(db_settings) as session:
        webhook, secret = add_webhook(session, ADMIN, receiver.url, ["ticket.opened", "ticket.message", "ticket.updated"],
                                      kb="shop")
        webhook_id = webhook.id
        other, _ = add_webhook(session, ADMIN, receiver.url + "/alerts", ["alert.created"])  # wants none of these
    cid = _conversation(db_settings)
    elsewhere = _conversation(db_settings, kb="internal-wiki")  # another knowledge base: not this webhook's
    with session_scope(db_settings) as session:
        add_message(session, session.get(Conversation, cid), "customer", "Where is my parcel NG-10042?",
                    settings=db_settings)
        ticket, created = create_ticket(session, cid, "the customer asked for a person")
        ticket_id = ticket.id
        create_ticket(session, elsewhere, "the customer asked for a person")
    assert created
    with session_scope(db_settings) as session:
        conversation = session.get(Conversation, cid)
        for text in ("It is urgent, please.", None, "Thanks!"):  # the last after the ticket was closed
            if text is None:
                set_ticket_status(session, ticket_id, "closed")
                continue
            # what the agent does with every customer message it receives
            message = add_message(session, conversation, "customer", text, settings=db_settings)
            if (waiting := open_ticket(session, cid)) is not None:
                tell_webhooks_of_message(session, waiting, message)
    done = deliver_due(db_settings)
    assert (done.delivered, done.retrying, done.failed) == (3, 0, 0)
    events = receiver.events()
    assert [e["event"] for e in events] == ["ticket.opened", "ticket.message", "ticket.updated"]
    opened = events[0]
    assert opened["kb"] == "shop" and opened["data"]["ticket"]["id"] == ticket_id
    assert [m["text"] for m in opened["data"]["transcript"]] == ["Where is my parcel NG-10042?"]
    assert events[1]["data"]["message"]["text"] == "It is urgent, please." and events[1]["data"]["ticket"]["id"] == ticket_id
    assert events[2]["data"]["ticket"]["status"] == "closed"
    for (headers, body), event in zip(receiver.received, events):
        assert headers["X-Helpmate-Event"] == event["event"] and headers["X-Helpmate-Delivery"] == str(event["id"])
        assert verify_signature(secret, headers["X-Helpmate-Signature"], body)
        assert not verify_signature(secret, headers["X-Helpmate-Signature"], body + b" ")  # the body was changed
        assert not verify_signature("whsec_other", headers["X-Helpmate-Signature"], body)
    assert deliver_due(db_settings).delivered == 0  # each is sent once
    with session_scope(db_settings) as session:
        assert session.scalar(select(func.count(WebhookDelivery.id)).where(WebhookDelivery.webhook_id == other.id)) == 0
        assert {d["status"] for d in list_deliveries(session, ADMIN, webhook_id)} == {"delivered"}


def test_an_event_is_queued_only_if_its_change_commits(db_settings, receiver):
    with session_scope(db_settings) as session:
        add_webhook(session, ADMIN, receiver.url, ["ticket.opened"])
    cid = _conversation(db_settings)
    with pytest.raises(RuntimeError):
        with session_scope(db_settings) as session:
            create_ticket(session, cid, "angry customer")
            raise RuntimeError("the process dies before the commit")
    with session_scope(db_settings) as session:
        assert session.scalar(select(func.count(Ticket.id))) == 0
        assert session.scalar(select(func.count(WebhookDelivery.id))) == 0


def test_a_receiver_that_fails_is_retried_later_then_given_up_and_retried_by_hand(db_settings, receiver):
    with session_scope(db_settings) as session:
        add_webhook(session, ADMIN, receiver.url, ["ticket.opened"])
    cid = _conversation(db_settings)
    with session_scope(db_settings) as session:
        create_ticket(session, cid, "the customer asked for a person")
    receiver.statuses = [500]
    now = datetime.now(timezone.utc)
    assert deliver_due(db_settings, now=now).retrying == 1
    assert deliver_due(db_settings, now=now).retrying == 0  # not due again yet
    with session_scope(db_settings) as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "HTTP 500: ")
        assert delivery.next_attempt_at == now + retry_pause(1)
    later = now + retry_pause(1)
    assert deliver_due(db_settings, now=later).delivered == 1
    assert len(receiver.received) == 2 and receiver.events()[0]["id"] == receiver.events()[1]["id"]  # the same delivery

    with session_scope(db_settings) as session:
        create_ticket(session, _conversation(db_settings), "refund missing")
    receiver.statuses = [503] * MAX_ATTEMPTS
    for attempt in range(1, MAX_ATTEMPTS + 1):
        later += retry_pause(attempt)
        deliver_due(db_settings, now=later)
    with session_scope(db_settings) as session:
        failed = list_deliveries(session, ADMIN, status="failed")
    assert len(failed) == 1 and failed[0]["attempts"] == MAX_ATTEMPTS and failed[0]["last_error"].startswith("HTTP 503")
    manage.retry(db_settings, ADMIN, failed[0]["id"])
    assert deliver_due(db_settings).delivered == 1


def test_an_unreachable_receiver_is_an_error_on_the_delivery_not_a_crash(db_settings):
    with session_scope(db_settings) as session:
        add_webhook(session, ADMIN, "http://127.0.0.1:9/nothing-listens-here", ["ticket.opened"])
    with session_scope(db_settings) as session:
        create_ticket(session, _conversation(db_settings), "the customer asked for a person")
    assert deliver_due(db_settings).retrying == 1
    with session_scope(db_settings) as session:
        assert "ConnectError" in session.scalars(select(WebhookDelivery)).one().last_error


def test_a_spike_of_negative_messages_is_sent_as_an_alert(db_settings, receiver):
    with session_scope(db_settings) as session:
        add_webhook(session, ADMIN, receiver.url, ["alert.created"], kb="shop")
    at = datetime(2026, 11, 20, 12, tzinfo=timezone.utc)
    with session_scope(db_settings) as session:
        conversation = session.get(Conversation, _conversation(db_settings))
        for minute in range(5):
            session.add(Message(conversation_id=conversation.id, role="customer", text="This is awful.",
                                created_at=at - timedelta(minutes=minute), sentiment_label="negative", sentiment_score=-0.9))
        session.flush()
        alerts = detect_negative_spikes(session, at, SpikeRule(window=timedelta(hours=1), min_messages=4, threshold=0.3))
    assert len(alerts) == 1
    deliver_due(db_settings)
    (event,) = receiver.events()
    assert event["event"] == "alert.created" and event["data"]["alert"]["negative"] == 5 and event["kb"] == "shop"


def test_only_admins_manage_webhooks_and_bad_ones_are_refused(db_settings):
    operator = Caller.staff("operator", "olivia")
    waiting = _conversation(db_settings)
    with session_scope(db_settings) as session:
        with pytest.raises(AccessDenied):
            add_webhook(session, operator, "https://desk.example.com/h", ["ticket.opened"])
        with pytest.raises(ValueError, match="not an http"):
            add_webhook(session, ADMIN, "ftp://desk.example.com/h", ["ticket.opened"])
        with pytest.raises(ValueError, match="unknown event 'ticket.deleted'"):
            add_webhook(session, ADMIN, "https://desk.example.com/h", ["ticket.deleted"])
        webhook, _ = add_webhook(session, ADMIN, "https://desk.example.com/h", ["ticket.opened"])
        with pytest.raises(AccessDenied):
            list_deliveries(session, operator)
        create_ticket(session, waiting, "the customer asked for a person")  # owed, not sent yet
        remove_webhook(session, ADMIN, webhook.id)
        with pytest.raises(ValueError, match="no active webhook"):
            remove_webhook(session, ADMIN, webhook.id)
    with session_scope(db_settings) as session:
        create_ticket(session, _conversation(db_settings), "the customer asked for a person")
        (owed,) = list_deliveries(session, ADMIN)  # a removed webhook gets nothing new, and what it was owed is dropped
    assert (owed["status"], owed["last_error"], owed["attempts"]) == ("failed", "the webhook was removed", 0)
    with pytest.raises(ValueError, match="which was removed"):
        manage.retry(db_settings, ADMIN, owed["id"])
    assert deliver_due(db_settings).delivered == 0


def test_the_command_adds_tests_lists_and_removes_a_webhook(settings, receiver):
    from ui.cli import app

    runner = CliRunner()
    added = runner.invoke(app, ["webhooks", "add", receiver.url, "--event", "ticket.opened", "--kb", "shop"])
    assert added.exit_code == 0, added.output
    secret = added.output.split("signing secret (shown once): ")[1].split()[0]
    tested = runner.invoke(app, ["webhooks", "test", "1"])
    assert tested.exit_code == 0 and "delivered" in tested.output, tested.output
    headers, body = receiver.received[0]
    assert json.loads(body)["event"] == "ping" and verify_signature(secret, headers["X-Helpmate-Signature"], body)
    listed = runner.invoke(app, ["webhooks", "list"])
    assert receiver.url in listed.output and "1 delivered" in listed.output and secret not in listed.output
    receiver.statuses = [404]
    failing = runner.invoke(app, ["webhooks", "test", "1"])
    assert failing.exit_code == 1 and "HTTP 404" in failing.output
    assert "HTTP 404" in runner.invoke(app, ["webhooks", "deliveries"]).output
    assert runner.invoke(app, ["webhooks", "remove", "1"]).exit_code == 0
    assert "removed" in runner.invoke(app, ["webhooks", "list"]).output
    assert [e.action for e in audit_log(settings)][:2] == ["webhook.remove", "webhook.add"]
    refused = runner.invoke(app, ["webhooks", "add", "not a url"])
    assert refused.exit_code == 1 and "not an http(s) URL" in refused.output


def test_the_example_receiver_accepts_helpmates_signature_and_refuses_others(db_settings, tmp_path):
    """examples/webhook_receiver.py, run as a process, checks the signature with the standard library alone."""
    import subprocess
    import sys
    import time

    import httpx

    from tests.api.support import free_port
    from tests.conftest import REPO

    with session_scope(db_settings) as session:
        webhook, secret = add_webhook(session, ADMIN, "http://127.0.0.1:1/", ["ticket.opened"])
    port = free_port()
    process = subprocess.Popen([sys.executable, str(REPO / "examples" / "webhook_receiver.py"), "--port", str(port),
                                "--secret", secret], stdout=subprocess.PIPE, text=True)
    try:
        assert "listening" in process.stdout.readline()
        with session_scope(db_settings) as session:
            session.get(Webhook, webhook.id).url = f"http://127.0.0.1:{port}/"
            create_ticket(session, _conversation(db_settings), "the customer asked for a person")
        assert deliver_due(db_settings).delivered == 1
        assert process.stdout.readline().startswith("ticket.opened (delivery 1, knowledge base shop)")
        forged = httpx.post(f"http://127.0.0.1:{port}/", content=b'{"event": "ticket.opened"}',
                            headers={"X-Helpmate-Signature": f"t={int(time.time())},v1=00"})
        assert forged.status_code == 401
    finally:
        process.kill()
        process.wait()
