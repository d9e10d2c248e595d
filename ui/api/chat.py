"""``POST /v1/chat/completions`` and ``GET /v1/models`` in OpenAI's schema, so the ``openai`` client,
LangChain's ``ChatOpenAI`` and help-desk integrations talk to Helpmate as they talk to OpenAI.

``model`` names a knowledge base (``helpmate/<kb>``). Helpmate keeps the conversation: the last
message (the customer's) is the new turn; a request without ``conversation_id`` starts a
conversation (earlier ``user`` messages are stored as its first messages; earlier ``assistant``
messages are not, since Helpmate did not write them, and ``system`` messages are ignored, since a
client cannot change the assistant's rules). The response carries Helpmate's own fields under
``helpmate``: the answer kind, citations, the conversation id (and, once, its secret), the ticket,
the customer message's sentiment, and for an answer quoted from the passages instead of the
model's draft a ``note`` saying so.

Streaming sends OpenAI's chunks. The answer's text is sent as ``content`` only once it passed the
support check, so what a client accumulates is exactly the stored answer; while the model writes,
chunks carry its unchecked draft in ``helpmate.draft`` (the widget shows it greyed). A model server
that fails mid-answer ends the stream with an error event in OpenAI's shape; the customer's
message is stored already.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, AsyncIterator, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from assistant.access import AccessDenied, Caller
from assistant.agent import AgentFinal, AgentReply
from assistant.answering.assistant import REPLACED_NOTE, TokenEvent
from assistant.conversations.store import add_message
from assistant.database import session_scope
from assistant.database.models import Conversation, KnowledgeBase
from assistant.llm.base import ModelUnavailableError
from ui.api.auth import Context, authenticated
from ui.api.conversations import check_secret, citation, new_secret, ticket_summary
from ui.api.errors import ApiError, error_body

log = logging.getLogger("helpmate.api")
router = APIRouter(tags=["chat"])
MODEL_PREFIX = "helpmate/"
MAX_MESSAGE_CHARS = 8000
MODEL_DOWN = ("The assistant cannot answer just now: its language model is not reachable. Your message is saved "
              "in conversation {cid}; please try again in a moment.")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """OpenAI's request; sampling options are accepted and left to Helpmate's own settings."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(description="`helpmate/<knowledge base>`; GET /v1/models lists the ones your key may use.")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    user: str | None = Field(None, max_length=200, description="Your id for the end customer (stored with the conversation).")
    conversation_id: int | None = Field(None, description="Continue this conversation (Helpmate's extra field).")
    conversation_secret: str | None = Field(None, max_length=200, description="The secret returned when it started.")
    channel: str = Field("api", pattern=r"^[a-z0-9_-]{1,50}$", description="Where the customer writes from (analytics).")


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    parts = message.content or []
    if any(part.get("type") != "text" for part in parts):
        raise ApiError(400, "only text message content is supported", "unsupported_content", "messages")
    return "".join(str(part.get("text", "")) for part in parts)


def _question(request: ChatRequest) -> tuple[str, list[str]]:
    """The customer's new message and the earlier ``user`` messages of the request."""
    last = request.messages[-1]
    if last.role != "user":
        raise ApiError(400, "the last message must be the customer's (role user)", "invalid_messages", "messages")
    text = _text(last).strip()
    if not text:
        raise ApiError(400, "the customer's message is empty", "invalid_messages", "messages")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ApiError(400, f"the customer's message has {len(text)} characters, more than {MAX_MESSAGE_CHARS}",
                       "message_too_long", "messages")
    earlier = [t for m in request.messages[:-1] if m.role == "user" and (t := _text(m).strip())]
    return text, [t[:MAX_MESSAGE_CHARS] for t in earlier]


def usable_kbs(ctx: Context) -> list[str]:
    """The knowledge bases this key may chat with (for a customer key: public ones, of the key's)."""
    caller = ctx.caller()
    with session_scope(ctx.settings) as session:
        names = list(session.scalars(select(KnowledgeBase.name).order_by(KnowledgeBase.name)))
    return [name for name in names if caller.may_use_kb(name)]


def _kb(ctx: Context, model: str) -> str:
    kb = model.removeprefix(MODEL_PREFIX)
    if not model.startswith(MODEL_PREFIX) or kb not in usable_kbs(ctx):
        raise ApiError(404, f"the model {model!r} does not exist or this key may not use it; GET /v1/models lists yours "
                            "(they are named helpmate/<knowledge base>)", "model_not_found", "model")
    return kb


def _prepare(ctx: Context, request: ChatRequest, kb: str, earlier: list[str]) -> tuple[Caller, int, str | None]:
    """The turn's caller and conversation (continued with its secret, or started), and a new conversation's secret."""
    agent = ctx.state.turns.agent
    if request.conversation_id is not None:
        with session_scope(ctx.settings) as session:
            conversation = check_secret(session, request.conversation_id, request.conversation_secret)
            if conversation.kb != kb:
                raise ApiError(400, f"conversation {conversation.id} is on {MODEL_PREFIX}{conversation.kb}; send that model",
                               "model_mismatch", "model")
        return ctx.caller(request.conversation_id), request.conversation_id, None
    caller = ctx.caller()
    conversation_id = agent.start(request.channel, kb, customer_id=request.user, caller=caller)
    with session_scope(ctx.settings) as session:
        secret = new_secret(session, conversation_id, ctx.key.id)
        if earlier:
            conversation = session.get(Conversation, conversation_id)
            for text in earlier:
                add_message(session, conversation, "customer", text, settings=ctx.settings)
    return caller.in_conversation(conversation_id), conversation_id, secret


def extras(reply: AgentReply, secret: str | None) -> dict[str, Any]:
    """Helpmate's fields of a finished turn."""
    label, score = reply.sentiment
    fields = {"kind": reply.kind, "citations": [citation(c.number, c.source, c.title, c.section, c.page, c.text)
                                                for c in reply.citations],
              "conversation_id": reply.conversation_id, "message_id": reply.message_id,
              "customer_message_id": reply.customer_message_id, "ticket": ticket_summary(reply.ticket),
              "sentiment": {"label": label, "score": score}, "model": reply.model,
              "latency_ms": round(reply.latency_ms, 1)}
    if reply.repeated:
        fields["repeated"] = True  # the receipt given since the person's last message: message_id is that one's
    if reply.kind == "extractive":
        fields["note"] = REPLACED_NOTE  # a client that showed the draft says why it is gone
    if secret:
        fields["conversation_secret"] = secret
    return fields


def _failure(error: BaseException, conversation_id: int, secret: str | None) -> ApiError:
    """The answer to an error that ended a turn (the customer's message is stored unless it was refused)."""
    where = {"conversation_id": conversation_id, **({"conversation_secret": secret} if secret else {})}
    if isinstance(error, ModelUnavailableError):
        log.warning("model unavailable in conversation %s: %s", conversation_id, error)
        return ApiError(503, MODEL_DOWN.format(cid=conversation_id), "model_unavailable",
                        headers={"Retry-After": "5", "x-should-retry": "false"}, extra=where)
    if isinstance(error, AccessDenied):
        return ApiError(403, str(error), "access_denied", extra=where)
    if isinstance(error, ValueError):
        return ApiError(400, str(error), "invalid_request", extra=where)
    reference = uuid.uuid4().hex[:12]
    log.error("turn failed (reference %s) in conversation %s", reference, conversation_id, exc_info=error)
    return ApiError(500, f"something went wrong on our side (reference {reference}); your message is saved in "
                         f"conversation {conversation_id}", "internal_error", extra=where)


def _chunk(completion_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None,
           helpmate: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if helpmate:
        body["helpmate"] = helpmate
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _stream(events: AsyncIterator[Any], model: str, conversation_id: int, secret: str | None) -> AsyncIterator[str]:
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    opening = {"conversation_id": conversation_id, **({"conversation_secret": secret} if secret else {})}
    yield _chunk(completion_id, created, model, {"role": "assistant", "content": ""}, helpmate=opening)
    async for event in events:
        if isinstance(event, TokenEvent):
            yield _chunk(completion_id, created, model, {}, helpmate={"draft": event.text})
        elif isinstance(event, AgentFinal):
            reply = event.reply
            yield _chunk(completion_id, created, model, {"content": reply.text})
            yield _chunk(completion_id, created, model, {}, "stop", extras(reply, secret))
        elif isinstance(event, BaseException):
            error = _failure(event, conversation_id, secret)
            yield f"data: {json.dumps(error_body(error.status, error.message, error.code, None, error.extra))}\n\n"
    yield "data: [DONE]\n\n"


@router.post("/v1/chat/completions", summary="Ask the support agent (OpenAI's chat completions)")
async def chat_completions(request: ChatRequest, ctx: Context = Depends(authenticated)) -> Any:
    turns = ctx.state.turns
    text, earlier = _question(request)
    kb = await turns.call(_kb, ctx, request.model)
    caller, conversation_id, secret = await turns.call(_prepare, ctx, request, kb, earlier)
    events = turns.events(caller, conversation_id, text)
    model = f"{MODEL_PREFIX}{kb}"
    if request.stream:
        return StreamingResponse(_stream(events, model, conversation_id, secret), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    async for event in events:
        if isinstance(event, BaseException):
            raise _failure(event, conversation_id, secret)
        if isinstance(event, AgentFinal):
            reply = event.reply
            return JSONResponse({
                "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                                             "finish_reason": "stop"}],
                "usage": None, "helpmate": extras(reply, secret)})
    raise ApiError(500, "the support agent ended without a reply; your message is saved", "internal_error")


@router.get("/v1/models", summary="The knowledge bases this key may use, as models")
def models(ctx: Context = Depends(authenticated)) -> dict[str, Any]:
    with session_scope(ctx.settings) as session:
        created = {name: at for name, at in session.execute(select(KnowledgeBase.name, KnowledgeBase.created_at))}
    return {"object": "list", "data": [{"id": f"{MODEL_PREFIX}{kb}", "object": "model", "owned_by": "helpmate",
                                        "created": int(created[kb].timestamp()) if created.get(kb) else 0}
                                       for kb in usable_kbs(ctx)]}
