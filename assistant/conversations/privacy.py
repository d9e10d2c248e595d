"""Personal data on request and by age: erase one customer's conversations, purge the old ones.

``erase_customer`` serves a customer's request to be forgotten (the conversations that carry their
``customer_id``); ``purge_expired`` keeps the promise of a retention period (conversations whose last
message is older than ``retention_days``). Both remove a conversation with everything that holds
the customer's words, and count what they removed:

* its messages and its tickets (a ticket copies the transcript), and the webhook deliveries about
  it (``assistant.webhooks``: a ticket's transcript, a customer's message), sent or not;
* its feedback. Feedback copies the question and the answer on purpose (a training snapshot must not
  change when a conversation does), and its link to the message is ``ON DELETE SET NULL``, so
  deleting the messages alone would leave the customer's question behind. Feedback goes when its
  message belongs to the conversation, or its ``conversation_key`` names the conversation: the id
  for feedback given in Helpmate, the external id for feedback imported with the conversation's.

Messages and tickets would also go by their foreign keys' ``ON DELETE CASCADE`` (on SQLite too,
where Helpmate turns foreign keys on), but every kind is deleted explicitly, children first: the
counts are exact, and a database whose foreign keys were not enforced ends in the same state.
Conversations are removed in batches, each batch in one transaction, so a purge of years of
history never holds the database for long and a run that stopped is finished by running it again.

Both are for admins and land in the audit log (who, when, which customer or cut-off, the counts),
which is the record that the data was removed. Not removed: alerts (counts, no text), verified
answers an operator approved from such feedback (staff-reviewed text; their link to the feedback is
cleared), and training snapshots already exported (their text was redacted on export).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.orm import Session

from assistant.access import Caller, audit
from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import Conversation, Feedback, Message, Ticket, WebhookDelivery

_BATCH = 500


@dataclass
class Removed:
    """What an erase or a purge deleted, by kind."""

    conversations: int = 0
    messages: int = 0
    tickets: int = 0
    feedback: int = 0
    webhook_deliveries: int = 0

    def add(self, other: Removed) -> None:
        for kind, count in asdict(other).items():
            setattr(self, kind, getattr(self, kind) + count)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Purged(Removed):
    """A purge: what it deleted, and the cut-off (conversations last active before it)."""

    retention_days: int = 0
    cutoff: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = asdict(self)
        data["cutoff"] = self.cutoff.isoformat() if self.cutoff else None
        return data


def _delete_conversations(session: Session, conversations: Sequence[tuple[int, str | None]]) -> Removed:
    """Delete these conversations (id, external id) and what holds their words; counts by kind."""
    ids = [conversation_id for conversation_id, _ in conversations]
    external = [external_id for _, external_id in conversations if external_id]
    message_ids = select(Message.id).where(Message.conversation_id.in_(ids))
    imported = Feedback.source.like("import:%")
    feedback = session.execute(delete(Feedback).where(or_(
        Feedback.message_id.in_(message_ids),
        and_(~imported, Feedback.conversation_key.in_([str(i) for i in ids])),
        and_(imported, Feedback.conversation_key.in_(external)),
    )).execution_options(synchronize_session=False)).rowcount
    deliveries = session.execute(delete(WebhookDelivery).where(WebhookDelivery.conversation_id.in_(ids))).rowcount
    tickets = session.execute(delete(Ticket).where(Ticket.conversation_id.in_(ids))).rowcount
    messages = session.execute(delete(Message).where(Message.conversation_id.in_(ids))
                               .execution_options(synchronize_session=False)).rowcount
    removed = session.execute(delete(Conversation).where(Conversation.id.in_(ids))
                              .execution_options(synchronize_session=False)).rowcount
    return Removed(conversations=removed, messages=messages, tickets=tickets, feedback=feedback,
                   webhook_deliveries=deliveries)


def _delete_in_batches(settings: Settings, conversations: list[tuple[int, str | None]]) -> Removed:
    total = Removed()
    for start in range(0, len(conversations), _BATCH):
        with session_scope(settings) as session:
            total.add(_delete_conversations(session, conversations[start:start + _BATCH]))
    return total


def erase_customer(settings: Settings, customer_id: str, caller: Caller) -> Removed:
    """Delete every conversation of ``customer_id`` with its messages, tickets and feedback; audited.

    A customer with nothing stored removes nothing (the request is still audited).
    """
    caller.check_admin("erase a customer's data")
    customer_id = customer_id.strip()
    if not customer_id:
        raise ValueError("give the customer's id (the customer_id their conversations were stored or imported with)")
    with session_scope(settings) as session:
        conversations = [tuple(row) for row in session.execute(
            select(Conversation.id, Conversation.external_id).where(Conversation.customer_id == customer_id)
            .order_by(Conversation.id))]
    removed = _delete_in_batches(settings, conversations)
    audit(settings, caller, "privacy.erase", customer_id, removed.as_dict())
    return removed


def expired_before(settings: Settings, now: datetime | None = None) -> datetime:
    """The cut-off of ``retention_days``: conversations last active before it are purged.

    Raises ValueError when ``retention_days`` is 0, which means conversations are kept.
    """
    if settings.retention_days <= 0:
        raise ValueError("HELPMATE_RETENTION_DAYS is 0, which keeps conversations forever, so there is nothing to purge; "
                         "set it to the number of days to keep conversations (e.g. HELPMATE_RETENTION_DAYS=365)")
    return (now or datetime.now(timezone.utc)) - timedelta(days=settings.retention_days)


def purge_expired(settings: Settings, caller: Caller, now: datetime | None = None) -> Purged:
    """Delete every conversation last active before the retention cut-off (started before it, and no
    message since), with its messages, tickets and feedback; audited.

    A conversation that started long ago but goes on is kept: the period counts from its last message.
    Raises ValueError when ``retention_days`` is 0.
    """
    caller.check_admin("purge old conversations")
    cutoff = expired_before(settings, now)
    recent = exists().where(Message.conversation_id == Conversation.id, Message.created_at >= cutoff)
    with session_scope(settings) as session:
        conversations = [tuple(row) for row in session.execute(
            select(Conversation.id, Conversation.external_id).where(Conversation.started_at < cutoff, ~recent)
            .order_by(Conversation.id))]
    purged = Purged(retention_days=settings.retention_days, cutoff=cutoff)
    purged.add(_delete_in_batches(settings, conversations))
    audit(settings, caller, "privacy.purge", f"last active before {cutoff:%Y-%m-%d %H:%M} UTC", purged.as_dict())
    return purged
