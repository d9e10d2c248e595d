"""Conversations through the API: the secret that continues one, reading it, rating its answers,
handing it to a person, and that person's reply.

A conversation started through the API gets a secret, returned once (``conversation_secret``) and
stored as a hash. The customer key is public, so a customer reaches a conversation only with its
secret (header ``X-Conversation-Secret``): the key alone opens nobody's conversation, and ids,
which are sequential, reveal nothing. Operator and admin keys read the conversations of their
knowledge bases (audited); continuing a conversation in the chat always needs its secret, since
whoever continues it speaks as its customer. Operator and admin keys reply to the customer in the
conversation (``POST .../messages``, an ``agent`` message the customer's chat reads like the rest).
"""

from __future__ import annotations

import secrets
from typing import Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.access import Caller, audit
from assistant.answering.grounding import cited_numbers
from assistant.conversations.feedback import TooMuchFeedback, add_feedback
from assistant.conversations.store import MAX_TEXT_CHARS
from assistant.conversations.tickets import create_ticket, open_ticket, reply_as_agent
from assistant.database import session_scope
from assistant.database.models import ApiConversation, Chunk, Conversation, Document, Message, Ticket
from assistant.retrieval.types import heading_path
from ui.api.auth import Context, authenticated
from ui.api.errors import ApiError
from ui.api.keys import digest, same_digest
from ui.chat_backend import document_name

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
SECRET_HEADER = "X-Conversation-Secret"


def new_secret(session: Session, conversation_id: int, key_id: int) -> str:
    """A fresh secret for a conversation the API just started (only its hash is kept)."""
    secret = secrets.token_urlsafe(24)
    session.add(ApiConversation(conversation_id=conversation_id, secret_hash=digest(secret), key_id=key_id))
    return secret


def _not_yours(conversation_id: int) -> ApiError:
    return ApiError(403, f"conversation {conversation_id} is not one you may open: send the conversation_secret "
                         "you got when it started", "conversation_secret_required")


def check_secret(session: Session, conversation_id: int, secret: str | None) -> Conversation:
    """The conversation, when ``secret`` is its secret; otherwise 403 (the same whether it exists or not)."""
    row = session.get(ApiConversation, conversation_id)
    if not secret or row is None or not same_digest(secret, row.secret_hash):
        raise _not_yours(conversation_id)
    return session.get(Conversation, conversation_id)


def open_conversation(ctx: Context, session: Session, conversation_id: int, secret: str | None) -> tuple[Caller, Conversation]:
    """Who acts on the conversation and the conversation: staff of its knowledge base, or its customer with the secret."""
    caller = ctx.caller()
    if caller.is_staff:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise ApiError(404, f"there is no conversation {conversation_id}", "conversation_not_found")
        caller.check_staff(conversation.kb, "that conversation")
        return caller, conversation
    conversation = check_secret(session, conversation_id, secret)
    caller = ctx.caller(conversation_id)
    if not caller.may_use_kb(conversation.kb):
        raise _not_yours(conversation_id)
    return caller, conversation


def rebuild_citations(session: Session, message: Message) -> list[dict[str, Any]]:
    """The citations of a stored answer: its ``[n]`` marks point into the passages it was given."""
    ids = [int(i) for i in message.retrieved_chunk_ids or []]
    numbers = [n for n in cited_numbers(message.text) if 1 <= n <= len(ids)]
    if not numbers:
        return []
    rows = {chunk.id: (chunk, source) for chunk, source in session.execute(
        select(Chunk, Document.source).join(Document, Document.id == Chunk.document_id)
        .where(Chunk.id.in_([ids[n - 1] for n in numbers])))}
    cited = []
    for number in numbers:
        if ids[number - 1] in rows:
            chunk, source = rows[ids[number - 1]]
            cited.append(citation(number, source, chunk.title, chunk.section, chunk.page, chunk.text))
    return cited


def citation(number: int, source: str, title: str | None, section: str | None, page: int | None, text: str) -> dict[str, Any]:
    """A citation as the API shows it: the document's name, never where it lies on the server, and the
    ``heading`` to show (title and section, the title said once)."""
    return {"number": number, "document": document_name({"source": source}), "title": title, "section": section,
            "heading": heading_path(title, section), "page": page, "text": text}


def ticket_summary(ticket: Ticket | dict[str, Any] | None) -> dict[str, Any] | None:
    if ticket is None:
        return None
    if isinstance(ticket, dict):
        return {key: ticket.get(key) for key in ("id", "status", "priority", "created")}
    return {"id": ticket.id, "status": ticket.status, "priority": ticket.priority}


@router.get("/{conversation_id}", summary="Read a conversation (operators; its customer with its secret)")
def read_conversation(conversation_id: int, ctx: Context = Depends(authenticated),
                      secret: str | None = Header(None, alias=SECRET_HEADER),
                      after: int = Query(0, ge=0, description="Only messages with a higher id (what a poll has not seen).")
                      ) -> dict[str, Any]:
    with session_scope(ctx.settings) as session:
        caller, conversation = open_conversation(ctx, session, conversation_id, secret)
        messages = session.scalars(select(Message).where(Message.conversation_id == conversation_id, Message.id > after)
                                   .order_by(Message.created_at, Message.id)).all()
        shown = []
        for message in messages:
            item: dict[str, Any] = {"id": message.id, "role": message.role, "text": message.text,
                                    "created_at": message.created_at.isoformat()}
            if message.role == "assistant":
                item.update(kind=message.answer_kind, citations=rebuild_citations(session, message))
            if caller.is_staff:
                item.update(sentiment={"label": message.sentiment_label, "score": message.sentiment_score},
                            topic=message.topic, model=message.model_version, trace=message.trace)
            shown.append(item)
        ticket = session.scalar(select(Ticket).where(Ticket.conversation_id == conversation_id).order_by(Ticket.id.desc()))
        result = {"id": conversation.id, "kb": conversation.kb, "channel": conversation.channel,
                  "started_at": conversation.started_at.isoformat(), "messages": shown, "ticket": ticket_summary(ticket)}
        if caller.is_staff:
            result["customer_id"] = conversation.customer_id
    if caller.is_staff:
        audit(ctx.settings, caller, "conversation.read", f"conversation {conversation_id}", {"kb": conversation.kb})
    return result


class FeedbackIn(BaseModel):
    message_id: int = Field(description="The assistant message rated (`helpmate.message_id` of the answer).")
    rating: Literal["up", "down", "1", "2", "3", "4", "5"]
    corrected_answer: str | None = Field(None, max_length=20_000, description="A better answer, if you have one.")
    comment: str | None = Field(None, max_length=20_000)


@router.post("/{conversation_id}/feedback", summary="Thumbs or a correction for one answer", status_code=201)
def give_feedback(conversation_id: int, body: FeedbackIn, ctx: Context = Depends(authenticated),
                  secret: str | None = Header(None, alias=SECRET_HEADER)) -> dict[str, Any]:
    """A customer's feedback waits for an operator's review before it can become training data; an
    operator's or admin's is approved as it is stored (as with `helpmate feedback add`)."""
    with session_scope(ctx.settings) as session:
        caller, conversation = open_conversation(ctx, session, conversation_id, secret)
        message = session.get(Message, body.message_id)
        if message is None or message.conversation_id != conversation_id or message.role != "assistant":
            raise ApiError(400, f"message {body.message_id} is not an answer of conversation {conversation_id}",
                           "invalid_message", "message_id")
        try:
            row = add_feedback(body.rating, message_id=body.message_id, corrected_answer=body.corrected_answer,
                               comment=body.comment, given_by="customer" if caller.role == "customer" else "agent",
                               source="api", caller=caller, settings=ctx.settings, session=session)
        except TooMuchFeedback as error:
            raise ApiError(403, str(error), "feedback_limit") from None
        except ValueError as error:
            raise ApiError(400, str(error), "invalid_feedback") from None
        return {"id": row.id, "message_id": row.message_id, "rating": row.rating, "review_status": row.review_status}


class HandoverIn(BaseModel):
    reason: str = Field("the customer asked to talk to a person", max_length=2000)


@router.post("/{conversation_id}/handover", summary="Talk to a person: open (or reuse) the conversation's ticket")
def hand_over(conversation_id: int, body: HandoverIn | None = None, ctx: Context = Depends(authenticated),
              secret: str | None = Header(None, alias=SECRET_HEADER)) -> dict[str, Any]:
    with session_scope(ctx.settings) as session:
        open_conversation(ctx, session, conversation_id, secret)
        existing = open_ticket(session, conversation_id)
        ticket, created = (existing, False) if existing else create_ticket(
            session, conversation_id, (body or HandoverIn()).reason, priority="normal")
        return {"ticket": {**ticket_summary(ticket), "created": created}}


class ReplyIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="What the customer reads, as written.")


@router.post("/{conversation_id}/messages", status_code=201,
             summary="Reply to the customer as a person of the team (operator and admin keys)")
def reply(conversation_id: int, body: ReplyIn, ctx: Context = Depends(authenticated)) -> dict[str, Any]:
    """The reply is stored as an ``agent`` message; the conversation's open ticket is assigned to the
    key's name. Customers speak through `/v1/chat/completions`, so a customer key gets 403 here."""
    caller = ctx.require_staff("replying as the team")
    with session_scope(ctx.settings) as session:
        if session.get(Conversation, conversation_id) is None:
            raise ApiError(404, f"there is no conversation {conversation_id}", "conversation_not_found")
        try:
            message = reply_as_agent(session, caller, conversation_id, body.text, ctx.settings)
        except ValueError as error:
            raise ApiError(400, str(error), "invalid_reply", "text") from None
        result = {"id": message.id, "role": message.role, "text": message.text, "created_at": message.created_at.isoformat(),
                  "ticket": ticket_summary(open_ticket(session, conversation_id))}
    audit(ctx.settings, caller, "conversation.reply", f"conversation {conversation_id}", {"message": result["id"]})
    return result
