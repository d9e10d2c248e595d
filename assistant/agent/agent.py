"""The support agent: one turn of a conversation, from the customer's message to the stored reply.

customer message → stored with its sentiment → router → tool (ticket, report, conversation) or
grounded answer → escalation policy → reply stored with its trace. The router decides the common
cases without the model. Every turn has a ``Caller`` (``assistant.access``): the tools are bound
to it and check it themselves, and a customer's request for a report or a conversation is
answered as an ordinary question, never with operators' data. Questions for the knowledge base go to ``Assistant`` (retrieval,
generation, support check, citations) or, when ``HELPMATE_AGENT_MODEL_TOOLS`` is on and the
backend is vLLM, to a LangGraph loop in which the served model calls the tools itself
(``model_loop``); its answer is checked against the passages it found like any other. Once a
person of the team has replied in a handed-over conversation, it is theirs until the ticket is
closed (``tickets.with_person``): the customer's message is stored and the reply only says so,
once: until the person writes again, further messages get the same receipt back (``repeated``)
without another copy in the transcript.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from langchain_core.tools import BaseTool
from sqlalchemy import select

from assistant.access import AccessDenied, Caller
from assistant.agent import escalation
from assistant.agent.router import Route, Router
from assistant.agent.smalltalk import REPLIES as SMALLTALK_REPLIES
from assistant.agent.tools import OPERATOR_TOOLS, ToolContext, build_tools, load_extra_tools
from assistant.agent.turn import Turn
from assistant.answering.assistant import REFUSAL_OFFER, Answer, Assistant, Citation, FinalEvent, TokenEvent
from assistant.config import Settings, get_settings
from assistant.conversations.store import add_message, start_conversation
from assistant.conversations.tickets import open_ticket, tell_webhooks_of_message, with_person
from assistant.database import session_scope
from assistant.database.models import Conversation, Message

TICKET_FAILED_TEXT = ("I'm sorry, I could not reach our team's queue just now. Please try again in a moment, "
                      "or write to us by e-mail; your conversation is saved.")
ALREADY_WITH_TEAM_TEXT = "A member of our team already has your conversation (ticket #{ticket}); they will get back to you here."
WITH_PERSON_TEXT = "Your message is with our team (ticket #{ticket}); they will reply here."
TOOL_FAILED_TEXT = "I'm sorry, I could not look that up just now ({error}). Please try again in a moment."
NOT_ALLOWED_TEXT = "I'm sorry, I can't show that: {reason}."


@dataclass
class AgentReply:
    """What the customer (or operator) sees, and everything stored with it."""

    text: str
    kind: str  # generated | extractive | refusal | verified (answers) | escalation | with_person | smalltalk | report | conversation | declined | error
    citations: list[Citation]
    ticket: dict[str, Any] | None
    trace: dict[str, Any]
    conversation_id: int
    message_id: int
    customer_message_id: int
    sentiment: tuple[str | None, float | None]
    model: str | None
    latency_ms: float
    answer: Answer | None = None
    # A receipt already given since the person's last message: nothing new is stored, and
    # ``message_id`` is that receipt's. A chat shows it once; an API client may show it again.
    repeated: bool = False


@dataclass(frozen=True)
class AgentFinal:
    """The last event of ``SupportAgent.stream``: the checked, stored reply."""

    reply: AgentReply
    replaced: bool = False  # the reply's text is not what was streamed as tokens


class SupportAgent:
    """``agent = SupportAgent(settings)``; ``cid = agent.start()``; ``agent.respond(cid, "...")``.

    One agent serves many conversations and threads: it holds only shared, read-only parts
    (models, retriever, tools); each turn reads and writes its conversation in the database.
    """

    def __init__(self, settings: Settings | None = None, assistant: Assistant | None = None,
                 now: Callable[[], datetime] | None = None):
        self.settings = settings or get_settings()
        self.assistant = assistant or Assistant(self.settings)
        self.router = Router(self.assistant.retriever.embedder)
        self._tool_context = ToolContext(self.settings, self.assistant.retriever, now=now)
        self._extra_tools = load_extra_tools(self.settings.agent_extra_tools, self.settings)
        self.now = now

    def tools(self, caller: Caller) -> dict[str, BaseTool]:
        """The tools of a turn, bound to its caller (binding is cheap; the team's own tools load once)."""
        return build_tools(self._tool_context, caller, self._extra_tools)

    def start(self, channel: str = "chat", kb: str = "default", customer_id: str | None = None, *, caller: Caller) -> int:
        """A new conversation's id; a customer may start one on a public knowledge base only.

        A customer's caller is then bound to it: ``caller.in_conversation(conversation_id)``.
        """
        caller.check_kb(kb)
        with session_scope(self.settings) as session:
            return start_conversation(session, channel, kb=kb, customer_id=customer_id).id

    def respond(self, conversation_id: int, text: str, *, caller: Caller) -> AgentReply:
        """The stored reply to one customer message."""
        for event in self.stream(conversation_id, text, caller=caller):
            if isinstance(event, AgentFinal):
                return event.reply
        raise RuntimeError("the agent's stream ended without a reply")

    def stream(self, conversation_id: int, text: str, *, caller: Caller) -> Iterator[TokenEvent | AgentFinal]:
        """Token events while a model writes an answer, then one ``AgentFinal``.

        A model server that is down raises ``ModelUnavailableError`` after the customer's message
        is stored, so nothing the customer wrote is lost. A customer writing into another
        conversation than their own gets ``AccessDenied`` before anything is stored.
        """
        if caller.role == "customer" and caller.conversation_id != conversation_id:
            raise AccessDenied("you can only write in your own conversation")
        turn = self._receive(conversation_id, text, caller)
        if turn.person_ticket is not None:  # a person of the team answers this conversation now, not the assistant
            turn.trace.route = "with_person: a person of the team replied since the ticket opened"
            text = WITH_PERSON_TEXT.format(ticket=turn.person_ticket["id"])
            if turn.receipt_id is not None:
                yield AgentFinal(self._repeat_receipt(turn, text), True)
            else:
                yield AgentFinal(self._store(turn, text, "with_person", None, turn.person_ticket), True)
            return
        route = self.router.route(text)
        if route.intent in ("report", "conversation") and not caller.is_staff:
            route = Route("question", reason=f"{route.reason}, which is for our team: answered as a question")
        turn.trace.route = f"{route.intent}: {route.reason}"
        answer: Answer | None = None
        replaced = False
        ticket: dict[str, Any] | None = None
        if route.intent == "human":
            ticket, reply_text = self._open_ticket(turn, "the customer asked for a person", "normal", "router")
            kind = "escalation"
        elif route.intent in ("report", "conversation"):
            reply_text, kind = self._report(turn, route, text)
        elif route.intent == "smalltalk":
            reply_text, kind = SMALLTALK_REPLIES[route.arguments["kind"]], "smalltalk"
        else:
            streamed = False
            for event in self._answer(turn, text):
                if isinstance(event, TokenEvent):
                    streamed = True
                    yield event
                else:
                    answer, replaced = event.answer, event.replaced or not streamed
            assert answer is not None
            reply_text, kind = answer.text, answer.kind
            if kind == "refusal" and turn.waiting_ticket is not None and reply_text.endswith(REFUSAL_OFFER):
                # Do not offer a person to a customer already waiting for one.
                reply_text = reply_text[:-len(REFUSAL_OFFER)] + ALREADY_WITH_TEAM_TEXT.format(ticket=turn.waiting_ticket)
                replaced = True
            if turn.ticket is not None:
                ticket = turn.ticket
                reply_text = f"{reply_text}\n\n" + escalation.HANDOVER_TEXT.format(ticket=ticket["id"])
        if ticket is None:
            ticket, with_note = self._escalate_if_needed(turn, kind, reply_text)
            replaced = replaced or with_note != reply_text
            reply_text = with_note
        yield AgentFinal(self._store(turn, reply_text, kind, answer, ticket), replaced or answer is None)

    # --- steps --------------------------------------------------------------------------------

    def _receive(self, conversation_id: int, text: str, caller: Caller) -> Turn:
        started = time.perf_counter()
        with session_scope(self.settings) as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise ValueError(f"there is no conversation {conversation_id}; start one first")
            caller.check_kb(conversation.kb or "default")
            earlier = session.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                      .order_by(Message.created_at, Message.id)).all()
            history = [("user" if m.role == "customer" else "assistant", m.text) for m in earlier]
            message = add_message(session, conversation, "customer", text, settings=self.settings,
                                  created_at=self.now() if self.now else None)
            waiting = open_ticket(session, conversation_id)
            if waiting is not None:
                tell_webhooks_of_message(session, waiting, message)
            person = with_person(session, conversation_id)
            # The newest written (highest id): a person's reply and the turns may carry other clocks.
            last_reply = max((m for m in earlier if m.role != "customer"), key=lambda m: m.id, default=None)
            receipt = last_reply if person and last_reply and last_reply.answer_kind == "with_person" else None
            return Turn(conversation_id, conversation.kb or "default", history, message.id,
                        (message.sentiment_label, message.sentiment_score), started, caller, self.tools(caller),
                        person_ticket={"id": person.id, "status": person.status, "priority": person.priority,
                                       "created": False} if person else None,
                        receipt_id=receipt.id if receipt else None, waiting_ticket=waiting.id if waiting else None)

    def _open_ticket(self, turn: Turn, reason: str, priority: str, by: str) -> tuple[dict[str, Any] | None, str]:
        result, error = turn.trace.call(turn.tools["create_ticket"], {"conversation_id": turn.conversation_id,
                                                                     "reason": reason, "priority": priority}, by)  # type: ignore[arg-type]
        if error:
            return None, TICKET_FAILED_TEXT
        template = escalation.HANDOVER_TEXT if result["created"] else ALREADY_WITH_TEAM_TEXT
        return result, template.format(ticket=result["id"])

    def _report(self, turn: Turn, route: Route, text: str) -> tuple[str, str]:
        if route.intent == "conversation":
            result, error = turn.trace.call(turn.tools["get_conversation"], route.arguments, "router")
            if error:
                return _tool_failed(error)
            lines = [f"Conversation #{result['id']} ({result['channel']}, started {result['started_at'][:16]}):"]
            lines += [f"- {m['role']}" + (f" [{m['sentiment']} {m['score']:+.2f}]" if m["sentiment"] else "") + f": {m['text']}"
                      for m in result["messages"]]
            return "\n".join(lines), "conversation"
        from assistant.analytics.questions import plan_report

        now = self.now() if self.now else datetime.now(timezone.utc)
        with session_scope(self.settings) as session:
            request = plan_report(text, session, now)
        # An operator limited to some knowledge bases gets the report of this conversation's one.
        kb = request.kb or (turn.kb if turn.caller.knowledge_bases is not None else None)
        arguments = {"period": request.period, "group_by": request.group_by, "kb": kb,
                     "channel": request.channel, "limit": request.limit}
        result, error = turn.trace.call(turn.tools["sentiment_report"], arguments, "router")
        if error:
            return _tool_failed(error)
        return result["summary"], "report"

    def _answer(self, turn: Turn, text: str) -> Iterator[TokenEvent | FinalEvent]:
        if self.settings.agent_model_tools != "off" and self.settings.llm_backend == "vllm":
            from assistant.agent.model_loop import answer_with_tools

            customer_tools = {name: tool for name, tool in turn.tools.items() if name not in OPERATOR_TOOLS}
            yield FinalEvent(*answer_with_tools(self.settings, self.assistant.model, self.assistant.grounder,
                                                customer_tools, turn, text))
            return
        yield from self.assistant.stream(text, turn.kb, turn.history)

    def _escalate_if_needed(self, turn: Turn, kind: str, text: str) -> tuple[dict[str, Any] | None, str]:
        with session_scope(self.settings) as session:
            messages = session.scalars(select(Message).where(Message.conversation_id == turn.conversation_id)
                                       .order_by(Message.created_at, Message.id)).all()
            decision = escalation.check(messages, self.settings, this_answer_refused=kind == "refusal")
        if decision is None:
            return None, text
        ticket, note = self._open_ticket(turn, decision.reason, decision.priority, "policy")
        if ticket is not None and not ticket["created"]:
            return ticket, text  # the customer was told when that ticket was opened
        if ticket is not None and text.endswith(REFUSAL_OFFER):  # done, no longer offered
            text = text[:-len(REFUSAL_OFFER)].rstrip()
        return ticket, f"{text}\n\n{note}"

    def _store(self, turn: Turn, text: str, kind: str, answer: Answer | None, ticket: dict[str, Any] | None) -> AgentReply:
        latency_ms = (time.perf_counter() - turn.started) * 1000
        trace = turn.trace.as_dict()
        if answer is not None:
            trace["answer"] = {"kind": answer.kind, "rewritten_question": answer.rewritten_question,
                               "relevance": round(answer.relevance, 4), "reason": answer.reason,
                               "passages": [f"{h.title or h.source}" for h in answer.retrieved]}
        if ticket is not None:
            trace["ticket"] = ticket["id"]
        with session_scope(self.settings) as session:
            conversation = session.get(Conversation, turn.conversation_id)
            message = add_message(
                session, conversation, "assistant", text, model_version=answer.model if answer else None,
                retrieved_chunk_ids=[h.chunk_id for h in answer.retrieved] if answer else None, latency_ms=latency_ms,
                answer_kind=kind, trace=trace, settings=self.settings, created_at=self.now() if self.now else None,
            )
            message_id = message.id
        return AgentReply(text, kind, answer.citations if answer else [], ticket, trace, turn.conversation_id, message_id,
                          turn.customer_message_id, turn.sentiment, answer.model if answer else None, latency_ms, answer)

    def _repeat_receipt(self, turn: Turn, text: str) -> AgentReply:
        """The receipt that already stands since the person's last message, given back, not stored again."""
        assert turn.receipt_id is not None
        return AgentReply(text, "with_person", [], turn.person_ticket, turn.trace.as_dict(), turn.conversation_id,
                          turn.receipt_id, turn.customer_message_id, turn.sentiment, None,
                          (time.perf_counter() - turn.started) * 1000, repeated=True)


def _tool_failed(error: str) -> tuple[str, str]:
    """The reply when the router's tool failed: a refusal for what the caller may not see, else an apology."""
    denied = f"{AccessDenied.__name__}: "
    if error.startswith(denied):
        return NOT_ALLOWED_TEXT.format(reason=error[len(denied):]), "declined"
    return TOOL_FAILED_TEXT.format(error=error), "error"
