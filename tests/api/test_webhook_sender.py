"""`helpmate api` and webhooks: it sends the deliveries any process queued, and admin keys manage webhooks."""

from __future__ import annotations

import time

import httpx

from assistant.access import Caller, audit_log
from assistant.conversations.store import start_conversation
from assistant.conversations.tickets import create_ticket
from assistant.database import session_scope
from assistant.webhooks import add_webhook, verify_signature
from tests.api.support import assert_openai_error, headers, key, serve
from tests.helpers import WebhookReceiver


def test_the_api_server_sends_what_another_process_queued(settings):
    from ui.api.app import create_app
    from ui.api.options import ApiOptions

    receiver = WebhookReceiver()
    try:
        with session_scope(settings) as session:
            add_webhook(session, Caller.staff("admin", "root"), receiver.url, ["ticket.opened"])
        with serve(create_app(settings, ApiOptions(webhook_interval_s=0.2))):
            with session_scope(settings) as session:
                conversation = start_conversation(session, "email", kb="shop")
                ticket, _ = create_ticket(session, conversation.id, "the customer asked for a person")
                ticket_id = ticket.id
            deadline = time.monotonic() + 30
            while not receiver.received and time.monotonic() < deadline:
                time.sleep(0.1)
        assert [(e["event"], e["data"]["ticket"]["id"]) for e in receiver.events()] == [("ticket.opened", ticket_id)]
    finally:
        receiver.close()


def test_an_admin_key_manages_webhooks_and_other_keys_are_refused(settings):
    from ui.api.app import create_app
    from ui.api.options import ApiOptions

    receiver = WebhookReceiver()
    admin, operator = key(settings, "admin", name="desk-setup"), key(settings, "operator")
    try:
        with serve(create_app(settings, ApiOptions(webhook_interval_s=0))) as api:
            routes = [("POST", "/v1/webhooks"), ("GET", "/v1/webhooks"), ("DELETE", "/v1/webhooks/1"),
                      ("POST", "/v1/webhooks/1/ping"), ("GET", "/v1/webhooks/deliveries"),
                      ("POST", "/v1/webhooks/deliveries/1/retry")]
            for who in (operator, key(settings, "customer")):  # every route, before any webhook exists
                for method, path in routes:
                    refused = httpx.request(method, f"{api}{path}", json={"url": receiver.url} if method == "POST" else None,
                                            headers=headers(who), timeout=30)
                    assert_openai_error(refused, 403, "access_denied")
            bad = httpx.post(f"{api}/v1/webhooks", json={"url": receiver.url, "events": ["ticket.deleted"]},
                             headers=headers(admin), timeout=30)
            assert_openai_error(bad, 400, "invalid_webhook")
            metadata = httpx.post(f"{api}/v1/webhooks", json={"url": "http://169.254.169.254/latest/meta-data/"},
                                  headers=headers(admin), timeout=30)
            error = assert_openai_error(metadata, 400, "invalid_webhook")
            assert error["param"] == "url" and "not a public address" in error["message"]
            added = httpx.post(f"{api}/v1/webhooks", json={"url": receiver.url, "events": ["ticket.opened"], "kb": "shop"},
                               headers=headers(admin), timeout=30)
            assert added.status_code == 201, added.text
            webhook = added.json()
            assert webhook["secret"].startswith("whsec_") and webhook["events"] == ["ticket.opened"]
            ping = httpx.post(f"{api}/v1/webhooks/{webhook['id']}/ping", headers=headers(admin), timeout=30).json()
            assert ping["status"] == "delivered"
            sent_headers, body = receiver.received[0]
            assert verify_signature(webhook["secret"], sent_headers["X-Helpmate-Signature"], body)
            listed = httpx.get(f"{api}/v1/webhooks", headers=headers(admin), timeout=30).json()["webhooks"]
            assert [(w["id"], w["delivered"]) for w in listed] == [(webhook["id"], 1)] and "secret" not in listed[0]
            receiver.statuses = [500]
            failing = httpx.post(f"{api}/v1/webhooks/{webhook['id']}/ping", headers=headers(admin), timeout=30).json()
            assert failing["status"] == "pending" and failing["last_error"].startswith("HTTP 500")
            retried = httpx.post(f"{api}/v1/webhooks/deliveries/{failing['id']}/retry", headers=headers(admin), timeout=30)
            assert retried.status_code == 200
            pending = httpx.get(f"{api}/v1/webhooks/deliveries", params={"status": "pending"}, headers=headers(admin),
                                timeout=30).json()["deliveries"]
            assert [(d["id"], d["attempts"]) for d in pending] == [(failing["id"], 0)]
            removed = httpx.delete(f"{api}/v1/webhooks/{webhook['id']}", headers=headers(admin), timeout=30)
            assert removed.json()["active"] is False
            assert_openai_error(httpx.delete(f"{api}/v1/webhooks/{webhook['id']}", headers=headers(admin), timeout=30), 404)
        actions = [(e.actor, e.action) for e in audit_log(settings)]
        by_key = {action for actor, action in actions if actor == "api-key 1 (desk-setup)"}
        assert {"webhook.add", "webhook.retry", "webhook.remove"} <= by_key
    finally:
        receiver.close()
