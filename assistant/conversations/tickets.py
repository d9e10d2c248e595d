"""Tickets: the hand-over from the assistant to a person.

A ticket is opened by the escalation policy or when a customer asks for a person; operators move
it from open to assigned to closed on the dashboard. Opening a second ticket for a conversation
that already has an open one returns the open one, so a customer who asks twice, or whose anger
and a failed answer coincide, is not queued twice.

The person then answers in the conversation itself (``reply_as_agent``): the reply is an ``agent``
message, which the customer's chat (web page or widget) picks up with ``agent_replies``, and the
ticket is assigned to whoever replied first. From then until the ticket is closed the conversation
is the person's (``with_person``): the assistant no longer answers in it. A team's webhooks hear of
every opened and updated ticket (``assistant.webhooks``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.access import Caller
from assistant.config import Settings
from assistant.conversations.store import MAX_TEXT_CHARS, add_message
from assistant.database.models import Conversation, Message, Ticket
from assistant.webhooks import emit

PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
STATUSES: tuple[str, ...] = ("open", "assigned", "closed")


def transcript(session: Session, conversation_id: int) -> list[dict[str, Any]]:
    """The conversation's messages, oldest first, as plain dicts (role, text, time, sentiment)."""
    messages = session.scalars(
        select(Message).where(Message.conversation_id == conversation_id).order_by(Message.created_at, Message.id)
    )
    return [
        {"role": m.role, "text": m.text, "at": m.created_at.isoformat(), "sentiment": m.sentiment_label,
         "score": m.sentiment_score}
        for m in messages
    ]


def open_ticket(session: Session, conversation_id: int) -> Ticket | None:
    """The conversation's ticket that is not closed yet, if any."""
    return session.scalar(
        select(Ticket).where(Ticket.conversation_id == conversation_id, Ticket.status != "closed").order_by(Ticket.id)
    )


def create_ticket(session: Session, conversation_id: int, reason: str, priority: str = "normal") -> tuple[Ticket, bool]:
    """Open a ticket carrying the transcript; returns (ticket, created). An open one is reused."""
    if priority not in PRIORITIES:
        raise ValueError(f"priority {priority!r} is not one of {', '.join(PRIORITIES)}")
    if not reason.strip():
        raise ValueError("a ticket needs a reason")
    if session.get(Conversation, conversation_id) is None:
        raise ValueError(f"there is no conversation {conversation_id}")
    existing = open_ticket(session, conversation_id)
    if existing is not None:
        return existing, False
    ticket = Ticket(conversation_id=conversation_id, reason=reason.strip(), priority=priority, status="open",
                    transcript=transcript(session, conversation_id))
    session.add(ticket)
    session.flush()
    _tell_webhooks(session, "ticket.opened", ticket, transcript=ticket.transcript)
    return ticket, True


def set_ticket_status(session: Session, ticket_id: int, status: str, assignee: str | None = None) -> Ticket:
    """Move a ticket to open, assigned (to ``assignee``) or closed."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise ValueError(f"there is no ticket {ticket_id}")
    if status == "assigned" and not (assignee or ticket.assignee):
        raise ValueError("an assigned ticket needs an assignee")
    ticket.status = status
    if assignee is not None:
        ticket.assignee = assignee
    ticket.updated_at = datetime.now(timezone.utc)
    session.flush()
    _tell_webhooks(session, "ticket.updated", ticket)
    return ticket


def ticket_dict(ticket: Ticket) -> dict[str, Any]:
    """A ticket as tools and the dashboard show it."""
    return {"id": ticket.id, "conversation_id": ticket.conversation_id, "reason": ticket.reason,
            "priority": ticket.priority, "status": ticket.status, "assignee": ticket.assignee,
            "created_at": ticket.created_at.isoformat(), "messages": len(ticket.transcript)}


def _tell_webhooks(session: Session, event: str, ticket: Ticket, **extra: Any) -> None:
    """Queue ``event`` about ``ticket`` for the team's webhooks, in this transaction (``assistant.webhooks``)."""
    conversation = session.get(Conversation, ticket.conversation_id)
    emit(session, event, conversation.kb, {"ticket": ticket_dict(ticket),
                                           "conversation": {"id": conversation.id, "channel": conversation.channel,
                                                            "kb": conversation.kb}, **extra},
         conversation_id=conversation.id)


def tell_webhooks_of_message(session: Session, ticket: Ticket, message: Message) -> None:
    """A customer's message in a conversation whose ``ticket`` is not closed goes to the team's webhooks
    (``ticket.message``): the person's desk shows it without polling. Called by the agent, which
    receives every customer message of a live conversation."""
    _tell_webhooks(session, "ticket.message", ticket, message={
        "id": message.id, "role": message.role, "text": message.text, "at": message.created_at.isoformat(),
        "sentiment": message.sentiment_label, "score": message.sentiment_score})


def with_person(session: Session, conversation_id: int) -> Ticket | None:
    """The conversation's open ticket once a person has replied since it opened: the conversation is
    theirs until the ticket is closed, and the assistant stops answering in it."""
    ticket = open_ticket(session, conversation_id)
    if ticket is None:
        return None
    replied = session.scalar(select(Message.id).where(Message.conversation_id == conversation_id, Message.role == "agent",
                                                      Message.created_at >= ticket.created_at).limit(1))
    return ticket if replied is not None else None


def reply_as_agent(session: Session, caller: Caller, conversation_id: int, text: str, settings: Settings) -> Message:
    """A person's reply to the customer, stored in the conversation as an ``agent`` message (flushed).

    Staff of the conversation's knowledge base only (AccessDenied otherwise): a customer speaks
    through the assistant, and an operator limited to other knowledge bases does not see this
    conversation. An open ticket of the conversation becomes assigned to the one who replied, so the
    queue shows that someone has taken it. The caller commits and audits."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise ValueError(f"there is no conversation {conversation_id}")
    caller.check_staff(conversation.kb, "replying in that conversation")
    text = text.strip()
    if not text:
        raise ValueError("the reply is empty: write what the customer should read")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"the reply has {len(text)} characters; at most {MAX_TEXT_CHARS} fit in one message")
    message = add_message(session, conversation, "agent", text, settings=settings)
    ticket = open_ticket(session, conversation_id)
    if ticket is not None and ticket.status == "open":
        set_ticket_status(session, ticket.id, "assigned", caller.name)
    return message


def agent_replies(session: Session, caller: Caller, conversation_id: int, after_id: int = 0) -> list[dict[str, Any]]:
    """The people's replies in a conversation with an id above ``after_id``, oldest first: what a customer's
    chat polls for after a hand-over. Its own customer, or staff of its knowledge base (AccessDenied otherwise)."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise ValueError(f"there is no conversation {conversation_id}")
    caller.check_conversation(conversation_id, conversation.kb)
    rows = session.scalars(select(Message).where(Message.conversation_id == conversation_id, Message.role == "agent",
                                                 Message.id > after_id).order_by(Message.id))
    return [{"id": m.id, "text": m.text, "at": m.created_at.isoformat()} for m in rows]
