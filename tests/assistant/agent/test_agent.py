"""The support agent: tools on a real database and index, the router on real phrasings, escalation
rules, the stored trace, a team's own tool over real HTTP, and (slow) the agent on the real vLLM server."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from assistant.access import Caller
from assistant.agent import SupportAgent
from assistant.agent.router import Router
from assistant.agent.tools import ToolContext, build_tools, load_extra_tools
from assistant.answering.assistant import Assistant
from assistant.conversations.store import add_message, start_conversation
from assistant.conversations.tickets import reply_as_agent, set_ticket_status
from assistant.database import session_scope
from assistant.database.models import Message, Ticket, WebhookDelivery
from assistant.llm.langchain_model import LangChainChatModel
from assistant.retrieval.retriever import Retriever
from assistant.webhooks import add_webhook
from tests.helpers import ingested_helpcenter

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
OPERATOR = Caller.staff("operator", "olivia")

ASKS_FOR_PERSON = [
    "Can I talk to a human?", "I want to speak to a real person please", "connect me to an agent", "Get me a manager now",
    "This bot is useless, put me through to someone", "I'd like to speak with customer service",
    "Is there a person I can talk to?", "Can somebody call me back about my order?", "human please",
    "I need help from an actual human", "Transfer me to a representative", "Can a member of your staff contact me?",
    "I would rather chat with a person", "Is there anybody real I could talk to about this?",
]
QUESTIONS = [
    "How do I return an item?", "What is your refund policy?", "Can I pay with bitcoin?", "My tent pole broke, what can I do?",
    "How long does shipping to Austria take?", "Who makes your sleeping bags?", "I am furious, my refund has not arrived",
    "How do I contact you by phone?", "What are your opening hours?", "Is someone available to repair my stove?",
]


@pytest.fixture(scope="module")
def kb(tmp_path_factory, embedder):
    """The small help center as knowledge base "help", on SQLite; yields settings."""
    with ingested_helpcenter(tmp_path_factory.mktemp("agent"), embedder) as (settings, _):
        yield settings


@pytest.fixture(scope="module")
def agent(kb, embedder) -> SupportAgent:
    return SupportAgent(kb, Assistant(kb, Retriever(kb, embedder)), now=lambda: NOW)


def as_customer(agent: SupportAgent) -> tuple[int, Caller]:
    """A new conversation on "help" (public) and its customer."""
    caller = Caller.customer(agent.settings, None)
    cid = agent.start(kb="help", caller=caller)
    return cid, caller.in_conversation(cid)


@pytest.fixture(scope="module")
def router(embedder) -> Router:
    return Router(embedder)


@pytest.mark.parametrize("text", ASKS_FOR_PERSON)
def test_router_hears_a_request_for_a_person(router, text):
    assert router.route(text).intent == "human"


@pytest.mark.parametrize("text", QUESTIONS)
def test_router_leaves_questions_to_the_knowledge_base(router, text):
    assert router.route(text).intent == "question"


@pytest.mark.parametrize(("text", "kind"), [
    ("Hi!", "greeting"), ("Hello there", "greeting"), ("Good morning", "greeting"), ("Hi Anna", "greeting"),
    ("Is anyone there?", "greeting"), ("Thanks, that helps", "thanks"), ("thank you so much!", "thanks"),
    ("Great, thanks a lot!", "thanks"), ("Thanks a lot!", "thanks"), ("Perfect 👍", "thanks"), ("ok thanks, bye", "goodbye"),
    ("No, that's all. Have a nice day!", "goodbye"),
])
def test_router_answers_greetings_thanks_and_goodbyes_itself(router, text, kind):
    route = router.route(text)
    assert (route.intent, route.arguments) == ("smalltalk", {"kind": kind})


@pytest.mark.parametrize("text", ["Hi, where is my order?", "Thanks. How long do returns take?", "ok cancel my order",
                                  "thanks for nothing", "Great tent, is it waterproof?", "No", "hello I need help"])
def test_router_leaves_greetings_with_a_question_to_the_knowledge_base(router, text):
    assert router.route(text).intent in ("question", "human")


def test_router_sends_operators_reports_and_conversation_lookups_to_tools(router):
    assert router.route("How did customer sentiment change this week?").intent == "report"
    assert router.route("Which channel has the most negative messages?").intent == "report"
    route = router.route("Show me conversation 42")
    assert (route.intent, route.arguments) == ("conversation", {"conversation_id": 42})


def test_tools_on_the_real_index_and_database(kb, agent):
    tools = agent.tools(OPERATOR)
    assert set(tools) >= {"search_knowledge_base", "sentiment_report", "get_conversation", "create_ticket"}
    passages = tools["search_knowledge_base"].invoke({"query": "How much is express shipping?", "kb": "help", "k": 2})
    assert passages[0]["number"] == 1 and "14.90 EUR" in passages[0]["text"] and passages[0]["source"].endswith("shipping.html")
    with session_scope(kb) as session:
        conversation = start_conversation(session, "email", kb="help", started_at=NOW - timedelta(days=1))
        for i, text in enumerate(["My parcel is two weeks late and nobody replies. Terrible.", "Thank you, it arrived, great help!"]):
            add_message(session, conversation, "customer", text, created_at=NOW - timedelta(hours=20 - i), settings=kb)
        cid = conversation.id
    report = tools["sentiment_report"].invoke({"period": "the past 7 days", "group_by": "channel", "kb": "help"})
    email = next(row for row in report["rows"] if row["group"] == "email")
    assert (email["messages"], email["negative"], email["positive"]) == (2, 1, 1)
    assert "email" in report["summary"] and "50.0%" in report["summary"]
    shown = tools["get_conversation"].invoke({"conversation_id": cid})
    assert [m["sentiment"] for m in shown["messages"]] == ["negative", "positive"]
    first = tools["create_ticket"].invoke({"conversation_id": cid, "reason": "late parcel", "priority": "high"})
    again = tools["create_ticket"].invoke({"conversation_id": cid, "reason": "still late"})
    assert first["created"] and not again["created"] and again["id"] == first["id"] and first["messages"] == 2
    with pytest.raises(ValueError, match="no conversation 999999"):
        tools["get_conversation"].invoke({"conversation_id": 999999})


def test_asking_for_a_person_opens_one_ticket_with_the_transcript(kb, agent):
    cid, customer = as_customer(agent)
    reply = agent.respond(cid, "I want to talk to a real person please", caller=customer)
    assert reply.kind == "escalation" and f"ticket #{reply.ticket['id']}" in reply.text
    again = agent.respond(cid, "Hello? Can I speak to a human?", caller=customer)
    assert again.ticket["id"] == reply.ticket["id"] and "already has your conversation" in again.text
    with session_scope(kb) as session:
        ticket = session.get(Ticket, reply.ticket["id"])
        assert (ticket.status, ticket.reason) == ("open", "the customer asked for a person")
        assert [m["role"] for m in ticket.transcript] == ["customer"]
        stored = session.get(Message, reply.message_id)
        assert stored.answer_kind == "escalation"
        call = stored.trace["tools"][0]
        assert (call["tool"], call["by"], call["arguments"]["conversation_id"], call["error"]) == ("create_ticket", "router", cid, None)
        assert call["duration_ms"] >= 0 and stored.trace["route"].startswith("human")


def test_hello_and_thanks_are_answered_in_kind_and_open_no_ticket(kb, agent):
    cid, customer = as_customer(agent)
    hello = agent.respond(cid, "Hi!", caller=customer)
    thanks = agent.respond(cid, "Thanks, bye!", caller=customer)
    assert (hello.kind, hello.text, hello.ticket) == ("smalltalk", "Hello! What can I help you with today?", None)
    assert (thanks.kind, thanks.text, thanks.ticket) == ("smalltalk", "Thank you for getting in touch. Goodbye!", None)
    with session_scope(kb) as session:
        assert session.scalar(select(Ticket).where(Ticket.conversation_id == cid)) is None  # not two refusals in a row


def test_two_answers_it_could_not_give_open_a_ticket(kb, agent):
    cid, customer = as_customer(agent)
    first = agent.respond(cid, "What is the capital of France?", caller=customer)
    assert (first.kind, first.ticket) == ("refusal", None)
    second = agent.respond(cid, "Who won the football world cup in 2014?", caller=customer)
    assert second.kind == "refusal" and second.ticket is not None and second.ticket["priority"] == "normal"
    # The hand-over is said, not offered as well ("Would you like me to connect you ...?" then "I've passed ...").
    assert "Would you like me" not in second.text and f"ticket #{second.ticket['id']}" in second.text
    assert "could not answer 2 times in a row" in second.trace["tools"][-1]["arguments"]["reason"]
    assert f"ticket #{second.ticket['id']}" in second.text


def test_consecutive_strongly_negative_messages_open_an_urgent_ticket(kb, agent):
    cid, customer = as_customer(agent)
    first = agent.respond(cid, "This is the worst shop ever, I am furious and disgusted.", caller=customer)
    assert first.sentiment[0] == "negative" and first.ticket is None
    second = agent.respond(cid, "Absolutely terrible service, I hate this, you are useless!", caller=customer)
    assert second.ticket is not None and second.ticket["priority"] == "high"
    assert "strongly negative" in second.trace["tools"][-1]["arguments"]["reason"]


def test_operator_report_and_a_failing_tool_through_the_agent(kb, agent):
    cid = agent.start(channel="operator", kb="help", caller=OPERATOR)
    report = agent.respond(cid, "How did customer sentiment change this week?", caller=OPERATOR)
    assert report.kind == "report" and "customer messages" in report.text
    assert report.trace["tools"][0]["tool"] == "sentiment_report" and report.trace["tools"][0]["error"] is None
    missing = agent.respond(cid, "show conversation 987654", caller=OPERATOR)
    assert missing.kind == "error" and "could not look that up" in missing.text
    assert "no conversation 987654" in missing.trace["tools"][0]["error"]


def test_a_question_is_answered_with_citations_and_the_retrieval_recorded(kb, agent):
    cid, customer = as_customer(agent)
    reply = agent.respond(cid, "How much does express shipping cost?", caller=customer)
    assert reply.kind in ("generated", "extractive") and "14.90" in reply.text
    assert reply.citations and reply.citations[0].source.endswith("shipping.html")
    with session_scope(kb) as session:
        stored = session.get(Message, reply.message_id)
        assert stored.retrieved_chunk_ids and stored.trace["answer"]["kind"] == reply.kind
        assert stored.model_version == reply.model


def test_once_a_person_replies_the_conversation_is_theirs_until_the_ticket_closes(kb, agent):
    with session_scope(kb) as session:  # the team's desk hears of the hand-over and of what the customer writes
        add_webhook(session, Caller.staff("admin", "root"), "https://desk.example.com/hooks", ["ticket.opened", "ticket.message"])
    cid, customer = as_customer(agent)
    ticket_id = agent.respond(cid, "I want to talk to a real person please", caller=customer).ticket["id"]
    unknown = agent.respond(cid, "What is the capital of France?", caller=customer)
    assert unknown.kind == "refusal" and "Would you like me to connect you" not in unknown.text  # they wait for one already
    assert unknown.text.endswith(f"A member of our team already has your conversation (ticket #{ticket_id}); "
                                 "they will get back to you here.")
    answered = agent.respond(cid, "How much does express shipping cost?", caller=customer)
    assert answered.kind in ("generated", "extractive")  # no person has replied yet: the assistant still answers
    with session_scope(kb) as session:
        reply_as_agent(session, OPERATOR, cid, "Hi, Olivia here. What is your order number?", kb)
    waiting = agent.respond(cid, "It is order 12345. And how much does express shipping cost?", caller=customer)
    assert (waiting.kind, waiting.ticket["id"], waiting.citations, waiting.model) == ("with_person", ticket_id, [], None)
    assert f"ticket #{ticket_id}" in waiting.text and "14.90" not in waiting.text and not waiting.repeated
    # Until the person writes again, more messages get that receipt back, not another copy in the transcript.
    again = agent.respond(cid, "The parcel number is 789.", caller=customer)
    assert (again.kind, again.repeated, again.message_id, again.text) == ("with_person", True, waiting.message_id, waiting.text)
    with session_scope(kb) as session:
        reply_as_agent(session, OPERATOR, cid, "Thanks, I am looking into it.", kb)
    later = agent.respond(cid, "Thank you!", caller=customer)
    assert later.kind == "with_person" and not later.repeated and later.message_id > waiting.message_id
    with session_scope(kb) as session:
        assert session.get(Message, waiting.customer_message_id).sentiment_label  # stored and scored for the person
        assert session.get(Message, again.customer_message_id).text == "The parcel number is 789."
        roles = [(m.role, m.answer_kind) for m in session.scalars(select(Message).where(Message.conversation_id == cid)
                                                                   .order_by(Message.id))]
        assert roles[-6:] == [("customer", None), ("assistant", "with_person"), ("customer", None), ("agent", None),
                              ("customer", None), ("assistant", "with_person")]
        set_ticket_status(session, ticket_id, "closed")
        owed = [(d.event, d.payload["data"].get("message", {}).get("text")) for d in session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.conversation_id == cid).order_by(WebhookDelivery.id))]
    assert owed == [("ticket.opened", None), ("ticket.message", "What is the capital of France?"),
                    ("ticket.message", "How much does express shipping cost?"),
                    ("ticket.message", "It is order 12345. And how much does express shipping cost?"),
                    ("ticket.message", "The parcel number is 789."), ("ticket.message", "Thank you!")]
    after = agent.respond(cid, "How much does express shipping cost?", caller=customer)
    assert after.kind in ("generated", "extractive") and "14.90" in after.text


def test_local_backend_refuses_tool_binding(kb, agent):
    with pytest.raises(ValueError, match="cannot call tools"):
        LangChainChatModel(chat_model=agent.assistant.model).bind_tools(list(agent.tools(OPERATOR).values()))


class _Orders(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path == "/orders/NG-10042":
            body = json.dumps({"order": "NG-10042", "status": "in transit", "carrier": "DHL"}).encode()
            self.send_response(200)
        else:
            body = b'{"error": "not found"}'
            self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_teams_own_tool_over_http(kb, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Orders)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ORDER_SERVICE_URL", f"http://127.0.0.1:{server.server_port}")
        (tool,) = load_extra_tools("examples.order_status_tool:order_status_tool", kb)
        assert tool.name == "order_status" and "order_number" in tool.args
        assert tool.invoke({"order_number": "NG-10042"})["status"] == "in transit"
        with pytest.raises(ValueError, match="no order NG-1"):
            tool.invoke({"order_number": "NG-1"})
        tools = build_tools(ToolContext(kb, Retriever(kb)), OPERATOR,
                            load_extra_tools("examples.order_status_tool:order_status_tool", kb))
        assert "order_status" in tools
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match="HELPMATE_AGENT_EXTRA_TOOLS entry 'nope' must look like"):
        load_extra_tools("nope", kb)


@pytest.mark.slow
def test_agent_on_the_real_vllm_server(kb, embedder, vllm_server):
    """The served model calls the search tool itself; escalation and a report come through the agent."""
    settings = kb.model_copy(update={"llm_backend": "vllm", "vllm_base_url": vllm_server, "agent_model_tools": "required"})
    agent = SupportAgent(settings, Assistant(settings, Retriever(settings, embedder)), now=lambda: NOW)
    cid, customer = as_customer(agent)
    answer = agent.respond(cid, "How much does express shipping cost?", caller=customer)
    calls = answer.trace["tools"]
    # The served model's own call (vLLM constrains it to a valid one); only customer-facing tools are offered.
    assert calls and calls[0]["by"] == "model" and calls[0]["tool"] in ("search_knowledge_base", "create_ticket"), calls
    assert answer.kind in ("generated", "extractive", "refusal")
    if answer.kind in ("generated", "extractive"):
        assert answer.citations and any(call["tool"] == "search_knowledge_base" for call in calls)
    human = agent.respond(cid, "Let me talk to a human, please.", caller=customer)
    assert human.kind == "escalation" and human.ticket is not None
    report = agent.respond(agent.start(channel="operator", kb="help", caller=OPERATOR), "How did customer sentiment change this week?",
                           caller=OPERATOR)
    assert report.kind == "report" and "customer messages" in report.text
    with session_scope(settings) as session:
        stored = session.scalars(select(Message).where(Message.conversation_id == cid, Message.role == "assistant")).all()
        assert stored[-1].answer_kind == "escalation" and stored[-1].trace["tools"][-1]["tool"] == "create_ticket"
        assert stored[0].trace["tools"][0]["by"] == "model"
