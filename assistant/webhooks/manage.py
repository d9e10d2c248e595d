"""What an admin does with webhooks, from the command line, the admin page or the API: each step audited.

The session-level functions (``events``) check the caller; these wrap them in a transaction and
write the audit log, so `helpmate webhooks`, the admin page and ``/v1/webhooks`` behave alike.
"""

from __future__ import annotations

from typing import Any, Iterable

from assistant.access import Caller, audit
from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import Webhook, WebhookDelivery, utcnow
from assistant.webhooks import destinations, events
from assistant.webhooks.delivery import deliver_due


def add(settings: Settings, caller: Caller, url: str, wanted: Iterable[str],
        kb: str | None = None) -> tuple[int, list[str], str]:
    """A new webhook: (id, its events, its signing secret, to be shown once). A URL whose host is a
    private address (not in HELPMATE_WEBHOOK_ALLOWED_NETWORKS) is refused here, and at every POST."""
    with session_scope(settings) as session:
        webhook, secret = events.add_webhook(session, caller, url, wanted, kb)
        destinations.check_url(webhook.url, settings.webhook_networks)
        webhook_id, chosen = webhook.id, list(webhook.events)
    audit(settings, caller, "webhook.add", f"webhook {webhook_id}", {"url": url.strip(), "events": chosen, "kb": kb})
    return webhook_id, chosen, secret


def remove(settings: Settings, caller: Caller, webhook_id: int) -> str:
    """Stop a webhook; returns its URL."""
    with session_scope(settings) as session:
        url = events.remove_webhook(session, caller, webhook_id).url
    audit(settings, caller, "webhook.remove", f"webhook {webhook_id}", {"url": url})
    return url


def ping(settings: Settings, caller: Caller, webhook_id: int) -> dict[str, Any]:
    """Send a ``ping`` to one webhook now; its delivery as ``events.list_deliveries`` shows it."""
    with session_scope(settings) as session:
        events.check_admin(caller)
        events.emit(session, events.PING, None, {"message": "a test from Helpmate"}, only=webhook_id)
    deliver_due(settings)
    with session_scope(settings) as session:
        return events.list_deliveries(session, caller, webhook_id, limit=1)[0]


def retry(settings: Settings, caller: Caller, delivery_id: int) -> None:
    """Send a failed (or delivered) delivery again at the next round, with a fresh count of attempts."""
    events.check_admin(caller)
    with session_scope(settings) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            raise ValueError(f"there is no delivery {delivery_id}; `helpmate webhooks deliveries` lists them")
        if not session.get(Webhook, delivery.webhook_id).active:
            raise ValueError(f"delivery {delivery_id} is for webhook {delivery.webhook_id}, which was removed; add it again")
        delivery.status, delivery.attempts, delivery.next_attempt_at, delivery.claimed_until = "pending", 0, utcnow(), None
    audit(settings, caller, "webhook.retry", f"delivery {delivery_id}")


def webhooks(settings: Settings, caller: Caller) -> list[dict[str, Any]]:
    """Every webhook with its deliveries counted by status (never the secret)."""
    with session_scope(settings) as session:
        return events.list_webhooks(session, caller)


def deliveries(settings: Settings, caller: Caller, webhook_id: int | None = None, status: str | None = None,
               limit: int = 20) -> list[dict[str, Any]]:
    """The newest deliveries, without payloads."""
    with session_scope(settings) as session:
        return events.list_deliveries(session, caller, webhook_id, status, limit)
