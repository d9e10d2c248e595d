"""Which webhooks exist and what they are owed: adding and removing them, and queueing events.

``emit`` is called inside the transaction of what happened (a ticket opened, an alert raised), so
the delivery row and the change commit together or not at all: a crash between them cannot send
an event about a ticket that was never stored, nor lose one about a ticket that was.

    >>> with session_scope(settings) as session:
    ...     ticket, created = create_ticket(session, conversation_id, "the customer asked for a person")
    ...     # create_ticket itself calls emit(session, "ticket.opened", kb, {...})
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Iterable
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from assistant.access import Caller
from assistant.database.models import Webhook, WebhookDelivery, utcnow

# What a team's desk can hear of. "ping" is only sent by `helpmate webhooks test`.
EVENTS: dict[str, str] = {
    "ticket.opened": "a conversation was handed over to a person (the ticket, with its transcript)",
    "ticket.message": "a customer wrote in a conversation whose ticket is not closed",
    "ticket.updated": "a ticket was assigned, reopened or closed",
    "alert.created": "a spike of negative messages was detected",
}
PING = "ping"
REMOVED = "the webhook was removed"  # why its deliveries that were still pending were not sent


def check_admin(caller: Caller) -> None:
    caller.check_admin("add, remove or test webhooks (they receive customers' messages)")


def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL; give the full address, e.g. https://desk.example.com/helpmate")
    return url


def add_webhook(session: Session, caller: Caller, url: str, events: Iterable[str],
                kb: str | None = None) -> tuple[Webhook, str]:
    """A new webhook and its signing secret (shown to the admin once). Admins only; the caller audits."""
    check_admin(caller)
    wanted = sorted(set(events))
    unknown = [event for event in wanted if event not in EVENTS]
    if unknown or not wanted:
        raise ValueError(f"unknown event {unknown[0]!r}; choose from {', '.join(EVENTS)}" if unknown
                         else f"name at least one event: {', '.join(EVENTS)}")
    secret = "whsec_" + secrets.token_urlsafe(32)
    webhook = Webhook(url=_check_url(url), events=wanted, kb=kb, secret=secret, created_by=caller.name)
    session.add(webhook)
    session.flush()
    return webhook, secret


def remove_webhook(session: Session, caller: Caller, webhook_id: int) -> Webhook:
    """Stop a webhook: no new deliveries, pending ones are not sent (failed); its history stays readable."""
    check_admin(caller)
    webhook = session.get(Webhook, webhook_id)
    if webhook is None or not webhook.active:
        raise ValueError(f"there is no active webhook {webhook_id}; `helpmate webhooks list` shows them")
    webhook.active = False
    owed = (WebhookDelivery.webhook_id == webhook_id) & (WebhookDelivery.status == "pending")
    session.execute(update(WebhookDelivery).where(owed).values(status="failed", last_error=REMOVED))
    session.flush()
    return webhook


def list_webhooks(session: Session, caller: Caller) -> list[dict[str, Any]]:
    """Every webhook with its deliveries counted by status; never the secret. Admins only."""
    check_admin(caller)
    counts: dict[tuple[int, str], int] = {
        (webhook_id, status): n for webhook_id, status, n in session.execute(
            select(WebhookDelivery.webhook_id, WebhookDelivery.status, func.count())
            .group_by(WebhookDelivery.webhook_id, WebhookDelivery.status))}
    return [{"id": w.id, "url": w.url, "events": list(w.events), "kb": w.kb, "active": w.active,
             "created_by": w.created_by, "created_at": w.created_at.isoformat(),
             **{status: counts.get((w.id, status), 0) for status in ("pending", "delivered", "failed")}}
            for w in session.scalars(select(Webhook).order_by(Webhook.id))]


def wants(session: Session, event: str, kb: str | None) -> list[Webhook]:
    """The active webhooks that want ``event`` of knowledge base ``kb`` (a webhook of no knowledge base wants all)."""
    hooks = session.scalars(select(Webhook).where(Webhook.active.is_(True)).order_by(Webhook.id))
    return [hook for hook in hooks if event in hook.events and hook.kb in (None, kb)]


def emit(session: Session, event: str, kb: str | None, data: dict[str, Any], *, conversation_id: int | None = None,
         only: int | None = None, at: datetime | None = None) -> int:
    """Queue ``event`` for every webhook that wants it, in the caller's transaction; returns how many.

    ``data`` must be JSON (plain dicts, lists, strings, numbers). ``conversation_id`` names the
    conversation whose words ``data`` carries (erasing it deletes the delivery too). ``only`` sends
    to that webhook alone (``ping``).
    """
    if event not in EVENTS and event != PING:
        raise ValueError(f"unknown webhook event {event!r}")
    if only is not None:
        hook = session.get(Webhook, only)
        if hook is None or not hook.active:
            raise ValueError(f"there is no active webhook {only}; `helpmate webhooks list` shows them")
        hooks = [hook]
    else:
        hooks = wants(session, event, kb)
    when = at or utcnow()
    for hook in hooks:
        session.add(WebhookDelivery(webhook_id=hook.id, event=event, conversation_id=conversation_id,
                                    payload={"kb": kb, "data": data}, created_at=when, next_attempt_at=when))
    if hooks:
        session.flush()
    return len(hooks)


def list_deliveries(session: Session, caller: Caller, webhook_id: int | None = None, status: str | None = None,
                    limit: int = 20) -> list[dict[str, Any]]:
    """The newest deliveries (of one webhook, in one status), without their payloads. Admins only."""
    check_admin(caller)
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if webhook_id is not None:
        query = query.where(WebhookDelivery.webhook_id == webhook_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    return [{"id": d.id, "webhook_id": d.webhook_id, "event": d.event, "status": d.status, "attempts": d.attempts,
             "created_at": d.created_at.isoformat(), "next_attempt_at": d.next_attempt_at.isoformat(),
             "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None, "last_error": d.last_error}
            for d in session.scalars(query)]
