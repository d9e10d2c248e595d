"""Sending what ``events.emit`` queued: signed POSTs, retried with growing pauses, at least once.

Each delivery is one JSON POST::

    {"id": 17, "event": "ticket.opened", "created_at": "2026-12-03T08:00:00+00:00", "kb": "demo", "data": {...}}

with the headers ``X-Helpmate-Event``, ``X-Helpmate-Delivery`` (the id; a receiver that saw it
already ignores it, since a delivery whose answer was lost is sent again) and
``X-Helpmate-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the webhook's
secret>``, which ``verify_signature`` checks. A 2xx answer delivers it; anything else (an error
status, a redirect, no answer within ``TIMEOUT_S``) is tried again after 10 s, 20 s, 40 s ... (at
most an hour apart) until ``MAX_ATTEMPTS``, then the delivery is marked failed and
`helpmate webhooks retry` (``manage.retry``) can send it again.

Each POST goes to an address ``destinations`` allows (public, or a network the admin named); a
delivery to any other address fails at once, with the reason. A round sends each webhook's
deliveries in order and the webhooks side by side (``MAX_PARALLEL`` at a time), and stops a
webhook's turn at its first failure, so one receiver that is down or slow costs the others
nothing and itself at most one ``TIMEOUT_S`` per round.

Any number of senders may run (``helpmate api`` runs one, ``helpmate webhooks deliver --watch``
another): a sender claims a delivery with one conditional UPDATE before sending it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import ColumnElement, and_, or_, select, update

from assistant.config import Network, Settings
from assistant.database import session_scope
from assistant.database.models import Webhook, WebhookDelivery, utcnow
from assistant.webhooks.destinations import BlockedDestination, UnresolvedHost, pinned, resolve
from assistant.webhooks.events import REMOVED

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
FIRST_RETRY_S = 10
MAX_RETRY_S = 3600
TIMEOUT_S = 10.0
CLAIM_S = 60  # longer than one POST may take; a sender that died frees its claims after this
SIGNATURE_TOLERANCE_S = 300
MAX_PARALLEL = 8  # webhooks sent to at once in a round


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Helpmate-Signature`` header of ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, now: float | None = None,
                     tolerance_s: int = SIGNATURE_TOLERANCE_S) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and was made within ``tolerance_s`` of ``now``
    (an old signature replayed later is refused). For receivers written in Python; the README shows the rule."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={fields.get('v1', '')}")


def retry_pause(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed try."""
    return timedelta(seconds=min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** (attempts - 1)))


@dataclass
class DeliveryRound:
    """What one ``deliver_due`` call did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0  # gave up after MAX_ATTEMPTS, or the webhook was removed


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending, its time come, and no sender on it."""
    return and_(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now))


def _claim(settings: Settings, delivery_id: int, now: datetime) -> tuple[WebhookDelivery, Webhook] | None:
    # The claim runs from now, not from the round's start: a long round must not hand out expired claims.
    claimed_until = max(now, utcnow()) + timedelta(seconds=CLAIM_S)
    with session_scope(settings) as session:
        claimed = session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, _due(now)).values(claimed_until=claimed_until))
        if claimed.rowcount != 1:
            return None  # another sender has it, or it is no longer pending
        delivery = session.get(WebhookDelivery, delivery_id)
        webhook = session.get(Webhook, delivery.webhook_id)
        session.expunge_all()
        return delivery, webhook


def _post(client: httpx.Client, delivery: WebhookDelivery, webhook: Webhook, allowed: list[Network]) -> str | None:
    """Send one delivery; None when the receiver took it, else why not. BlockedDestination when its
    host is not an address webhooks may reach."""
    body = json.dumps({"id": delivery.id, "event": delivery.event, "created_at": delivery.created_at.isoformat(),
                       **delivery.payload}, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Helpmate-Webhooks/1",
               "X-Helpmate-Event": delivery.event, "X-Helpmate-Delivery": str(delivery.id),
               "X-Helpmate-Signature": sign(webhook.secret, int(time.time()), body)}
    try:
        url, host, extensions = pinned(webhook.url, resolve(webhook.url, allowed))
        response = client.post(url, content=body, headers={**headers, **host}, extensions=extensions, timeout=TIMEOUT_S)
    except UnresolvedHost as error:
        return str(error)[:500]
    except httpx.HTTPError as error:
        return f"{type(error).__name__}: {error}"[:500]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


def _record(settings: Settings, delivery_id: int, error: str | None, now: datetime, give_up: bool = False) -> str:
    with session_scope(settings) as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        delivery.attempts += 1
        delivery.claimed_until = None
        delivery.last_error = error
        if error is None:
            delivery.status, delivery.delivered_at = "delivered", now
        elif give_up or delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = "failed"
        else:
            delivery.next_attempt_at = now + retry_pause(delivery.attempts)
        return delivery.status


def _send_in_order(settings: Settings, delivery_ids: list[int], now: datetime, client: httpx.Client,
                   allowed: list[Network]) -> DeliveryRound:
    """One webhook's turn in a round: its due deliveries oldest first, until one is not taken (the
    rest stay due, for the next round)."""
    done = DeliveryRound()
    for delivery_id in delivery_ids:
        claimed = _claim(settings, delivery_id, now)
        if claimed is None:
            continue
        delivery, webhook = claimed
        if not webhook.active:  # removed after this delivery was due: nothing is sent to it
            _record(settings, delivery_id, REMOVED, now, give_up=True)
            done.failed += 1
            continue
        try:
            error, blocked = _post(client, delivery, webhook, allowed), False
        except BlockedDestination as refused:
            error, blocked = str(refused), True
        status = _record(settings, delivery_id, error, now, give_up=blocked)
        if error is None:
            done.delivered += 1
            continue
        if status == "failed":
            done.failed += 1
        else:
            done.retrying += 1
            log.warning("webhook %s: delivery %s failed (%s); retrying", webhook.id, delivery_id, error)
        break
    return done


def deliver_due(settings: Settings, now: datetime | None = None, limit: int = 100,
                client: httpx.Client | None = None) -> DeliveryRound:
    """Send every pending delivery whose time has come (at most ``limit``), oldest first for each webhook."""
    now = now or utcnow()
    allowed = settings.webhook_networks
    with session_scope(settings) as session:
        due = session.execute(select(WebhookDelivery.id, WebhookDelivery.webhook_id).where(_due(now))
                              .order_by(WebhookDelivery.id).limit(limit)).all()
    queues: dict[int, list[int]] = defaultdict(list)
    for delivery_id, webhook_id in due:
        queues[webhook_id].append(delivery_id)
    done = DeliveryRound()
    if not queues:
        return done
    owned = client is None
    client = client or httpx.Client(follow_redirects=False)
    try:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(queues)), thread_name_prefix="helpmate-webhook") as pool:
            for turn in pool.map(lambda ids: _send_in_order(settings, ids, now, client, allowed), queues.values()):
                done.delivered += turn.delivered
                done.retrying += turn.retrying
                done.failed += turn.failed
    finally:
        if owned:
            client.close()
    return done


class Deliverer:
    """Sends due deliveries every ``interval_s`` in a daemon thread: ``start()``, then ``stop()``."""

    def __init__(self, settings: Settings, interval_s: float = 2.0):
        self.settings = settings
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="helpmate-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        with httpx.Client(follow_redirects=False) as client:
            while not self._stop.wait(self.interval_s):
                try:
                    deliver_due(self.settings, client=client)
                except Exception:  # noqa: BLE001 - a database hiccup must not end the sender; it tries again
                    log.exception("webhook delivery round failed")
