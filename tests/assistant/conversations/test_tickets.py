"""A person answers a handed-over customer: the reply is an ``agent`` message of the conversation, the
ticket is assigned to whoever replied, the conversation is that person's until the ticket closes, and
only the conversation's customer and staff of its knowledge base read the replies (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from assistant.access import AccessDenied, Caller
from assistant.conversations.store import MAX_TEXT_CHARS, add_message, start_conversation
from assistant.conversations.tickets import agent_replies, create_ticket, reply_as_agent, set_ticket_status, with_person
from assistant.database import session_scope
from assistant.database.models import Message, Ticket

ANNA = Caller.staff("operator", "anna", ["help"])


def _handed_over(settings) -> tuple[int, int]:
    with session_scope(settings) as session:
        conversation = start_conversation(session, "chat", kb="help")
        add_message(session, conversation, "customer", "My parcel never came and I want a person.", settings=settings)
        ticket, _ = create_ticket(session, conversation.id, "the customer asked for a person")
        return conversation.id, ticket.id


def test_an_operator_reply_is_stored_for_the_customer_and_takes_the_ticket(db_settings):
    conversation_id, ticket_id = _handed_over(db_settings)
    with session_scope(db_settings) as session:
        assert with_person(session, conversation_id) is None  # handed over, but nobody has replied yet
        first = reply_as_agent(session, ANNA, conversation_id, "  Hello, I am Anna. I have sent a new parcel today.  ",
                               db_settings)
        assert (first.role, first.text, first.sentiment_label) == ("agent", "Hello, I am Anna. I have sent a new parcel today.",
                                                                  None)
    with session_scope(db_settings) as session:
        ticket = session.get(Ticket, ticket_id)
        assert (ticket.status, ticket.assignee) == ("assigned", "anna")
        # a colleague's later reply does not take the ticket from Anna
        reply_as_agent(session, Caller.staff("admin", "boss"), conversation_id, "Tracking: 0042.", db_settings)
    with session_scope(db_settings) as session:
        assert session.get(Ticket, ticket_id).assignee == "anna"
        customer = Caller.customer(db_settings, conversation_id)
        replies = agent_replies(session, customer, conversation_id)
        assert [r["text"] for r in replies] == ["Hello, I am Anna. I have sent a new parcel today.", "Tracking: 0042."]
        assert [r["text"] for r in agent_replies(session, customer, conversation_id, after_id=replies[0]["id"])] == [
            "Tracking: 0042."]
        assert agent_replies(session, ANNA, conversation_id) == replies  # staff of its knowledge base read them too
        assert with_person(session, conversation_id).id == ticket_id  # the assistant leaves the conversation to Anna
        set_ticket_status(session, ticket_id, "closed")
        assert with_person(session, conversation_id) is None
        create_ticket(session, conversation_id, "asked again")
        assert with_person(session, conversation_id) is None  # the earlier replies belong to the closed ticket


def test_only_staff_of_the_conversations_knowledge_base_reply_and_only_its_customer_reads(db_settings):
    conversation_id, _ = _handed_over(db_settings)
    with session_scope(db_settings) as session:
        other = start_conversation(session, "chat", kb="help").id
    with session_scope(db_settings) as session:
        for caller in (Caller.customer(db_settings, conversation_id), Caller.staff("operator", "bob", ["internal"])):
            with pytest.raises(AccessDenied):
                reply_as_agent(session, caller, conversation_id, "I am the team, trust me.", db_settings)
        with pytest.raises(AccessDenied):
            agent_replies(session, Caller.customer(db_settings, other), conversation_id)
        with pytest.raises(ValueError, match="empty"):
            reply_as_agent(session, ANNA, conversation_id, "   ", db_settings)
        with pytest.raises(ValueError, match="at most"):
            reply_as_agent(session, ANNA, conversation_id, "x" * (MAX_TEXT_CHARS + 1), db_settings)
        with pytest.raises(ValueError, match="no conversation"):
            reply_as_agent(session, ANNA, other + 1000, "Hello", db_settings)
        assert session.query(Message).filter(Message.role == "agent").count() == 0
