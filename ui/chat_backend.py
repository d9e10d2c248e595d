"""What the chat page does, without Streamlit: answer a customer turn, take feedback, hand over
to a person. Kept apart from the page so it is tested and benchmarked directly.

A turn goes through the support agent (``assistant.agent.SupportAgent``): it stores the
customer's and the assistant's messages (with sentiment, answer kind and tool trace) and may open
a ticket itself. The page gets ``Token`` events while the model writes, then one ``Reply``.

The visitor is an anonymous customer (``Caller.customer``) bound to the conversation their session
started, on a public knowledge base; every call here takes that caller, and the agent's tools
check it again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator

from assistant.access import Caller, public_knowledge_bases
from assistant.config import Settings
from assistant.database import session_scope
from assistant.retrieval.types import heading_path

CHANNEL = "chat"
HANDOVER_REASON = "the customer asked to talk to a person (chat button)"


@dataclass(frozen=True)
class Token:
    """A piece of the answer as the model writes it (not yet checked)."""

    text: str


@dataclass
class Reply:
    """The checked answer of one turn, as stored; ``replaced``: not the text that was streamed."""

    text: str
    kind: str
    citations: list[dict[str, Any]]
    message_id: int | None
    model: str | None
    latency_ms: float | None
    replaced: bool = False
    ticket_id: int | None = None
    trace: Any = None
    first_token_ms: float | None = None
    repeated: bool = False  # the receipt already shown since the person's last message (same message_id)


def _citation_dict(citation: Any) -> dict[str, Any]:
    if isinstance(citation, dict):
        return dict(citation)
    return {key: getattr(citation, key, None) for key in ("number", "chunk_id", "source", "title", "section", "page", "text")}


def start_chat(settings: Settings, kb: str, client: str | None = None) -> Caller:
    """A new chat conversation on the public knowledge base ``kb``, and its customer, bound to it."""
    from assistant.conversations.store import start_conversation

    caller = Caller.customer(settings, None, client)
    caller.check_kb(kb)
    with session_scope(settings) as session:
        return caller.in_conversation(start_conversation(session, CHANNEL, kb=kb).id)


def customer(settings: Settings, conversation_id: int, client: str | None = None) -> Caller:
    """The customer of a conversation this session started, with today's public knowledge bases."""
    return Caller.customer(settings, conversation_id, client)


class ChatBackend:
    """Answers chat turns for one process; the models inside are loaded once and shared."""

    def __init__(self, settings: Settings):
        from assistant.agent import SupportAgent

        self.settings = settings
        self.agent = SupportAgent(settings)

    def warm(self, kb: str) -> None:
        """Load the embedding model, the index of ``kb``, the sentiment model (its one-message encoder
        traced) and the language model before the first customer waits for them. Raises
        ModelUnavailableError when the model cannot be reached."""
        from assistant.llm.base import GenerationOptions
        from assistant.sentiment.model import get_sentiment_model

        get_sentiment_model(self.settings).score("Hello")

        try:
            self.agent.assistant.retrieve("warm up", kb)
        except ValueError:  # no such knowledge base yet: nothing to load
            pass
        self.agent.assistant.model.generate([{"role": "user", "content": "Hello"}], GenerationOptions(max_tokens=1))

    def ask(self, caller: Caller, text: str) -> Iterator[Token | Reply]:
        """Answer ``text`` in the caller's conversation (from its knowledge base) and store both
        messages: ``Token`` events, then one ``Reply``. Raises ModelUnavailableError when the model
        cannot be reached; the customer's message is stored all the same, so the operators see it."""
        from assistant.agent import AgentFinal
        from assistant.answering.assistant import TokenEvent

        started = time.perf_counter()
        first_token_ms = None
        assert caller.conversation_id is not None, "start_chat gives the customer their conversation"
        for event in self.agent.stream(caller.conversation_id, text, caller=caller):
            if isinstance(event, TokenEvent):
                if first_token_ms is None:
                    first_token_ms = (time.perf_counter() - started) * 1000
                yield Token(event.text)
            elif isinstance(event, AgentFinal):
                reply = event.reply
                ticket = reply.ticket or {}
                yield Reply(text=reply.text, kind=reply.kind, citations=[_citation_dict(c) for c in reply.citations],
                            message_id=reply.message_id, model=reply.model, latency_ms=reply.latency_ms,
                            replaced=event.replaced, ticket_id=ticket.get("id"), trace=reply.trace,
                            first_token_ms=first_token_ms, repeated=reply.repeated)
                return
        raise RuntimeError("the support agent's stream ended without a reply")


def request_person(settings: Settings, caller: Caller, reason: str = HANDOVER_REASON) -> tuple[int, bool]:
    """Open (or reuse) the ticket of the caller's conversation; returns (ticket id, newly created)."""
    from assistant.conversations.tickets import create_ticket

    assert caller.conversation_id is not None, "start_chat gives the customer their conversation"
    with session_scope(settings) as session:
        ticket, created = create_ticket(session, caller.conversation_id, reason, priority="normal")
        return ticket.id, created


def new_agent_replies(settings: Settings, caller: Caller, after_id: int = 0) -> list[dict[str, Any]]:
    """What a person of the team wrote in the caller's conversation after message ``after_id`` (``id``,
    ``text``, ``at``), oldest first: the chat looks for it while a ticket is open."""
    from assistant.conversations.tickets import agent_replies

    assert caller.conversation_id is not None, "start_chat gives the customer their conversation"
    with session_scope(settings) as session:
        return agent_replies(session, caller, caller.conversation_id, after_id)


def give_feedback(settings: Settings, message_id: int, rating: str, corrected_answer: str | None = None,
                  comment: str | None = None, caller: Caller | None = None) -> int:
    """Store a customer's thumbs (``up``/``down``) or better answer for an assistant message through
    the feedback store (which copies the question, passages and model version); returns its id.

    ``caller`` is the chat session's customer (``Caller.customer``): the store refuses a message of
    another conversation (AccessDenied) and feedback beyond the conversation's limit
    (``TooMuchFeedback``), and keeps the feedback pending until an operator reviews it. Without one,
    the customer is taken to be the rated message's own (the limit and the review still apply).
    """
    from assistant.access import Caller
    from assistant.conversations.feedback import add_feedback
    from assistant.database.models import Message

    with session_scope(settings) as session:
        if caller is None:
            message = session.get(Message, message_id)
            caller = Caller.customer(settings, message.conversation_id if message else None)
        feedback = add_feedback(rating, message_id=message_id, corrected_answer=corrected_answer, comment=comment,
                                given_by="customer", source="ui", caller=caller, settings=settings, session=session)
        return feedback.id


def document_name(citation: dict[str, Any]) -> str:
    """The cited document's file name (``policy.md``): customers never see where it lies on the server."""
    source = str(citation.get("source") or "").replace("\\", "/").rstrip("/")
    return source.rsplit("/", 1)[-1] or "document"


def citation_label(citation: dict[str, Any]) -> str:
    """``[1] Returns policy > Return window — policy.md, page 2``: the document's name, never its path."""
    heading = heading_path(citation.get("title"), citation.get("section"))
    name = document_name(citation)
    page = f", page {citation['page']}" if citation.get("page") else ""
    return f"[{citation.get('number')}] {heading or name} — {name}{page}"


def knowledge_bases(settings: Settings) -> list[str]:
    """The knowledge bases the chat offers: the public ones (an admin publishes them)."""
    return public_knowledge_bases(settings)
