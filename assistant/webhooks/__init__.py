"""Webhooks: a team's own systems (a help desk, a chat channel) hear of hand-overs and alerts as they happen.

An admin adds an endpoint for some events (`helpmate webhooks add URL --event ticket.opened`);
``events.emit`` queues each event in the transaction of the change it reports (an outbox), and
``delivery`` sends it, signed, retrying until the endpoint takes it; ``manage`` is what an admin
does with them (the command, the admin page and the API), audited. This is how a person's desk
learns at once that a customer is waiting, instead of polling Helpmate's queue.
"""

from assistant.webhooks.events import EVENTS, add_webhook, emit, list_deliveries, list_webhooks, remove_webhook, wants
from assistant.webhooks.delivery import Deliverer, deliver_due, sign, verify_signature

__all__ = ["EVENTS", "add_webhook", "emit", "list_deliveries", "list_webhooks", "remove_webhook", "wants", "Deliverer",
           "deliver_due", "sign", "verify_signature"]
