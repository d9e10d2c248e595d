"""`helpmate api` sends the webhook deliveries that any process queued (here: a ticket opened beside it)."""

from __future__ import annotations

import time

from assistant.access import Caller
from assistant.conversations.store import start_conversation
from assistant.conversations.tickets import create_ticket
from assistant.database import session_scope
from assistant.webhooks import add_webhook
from tests.api.support import serve
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
