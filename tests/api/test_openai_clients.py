"""Existing clients talk to `helpmate api` as they talk to OpenAI: the official ``openai`` client
(streaming and not) and LangChain's ``ChatOpenAI`` get cited answers from the demo help center, with
Helpmate's own fields beside them; what a streaming client accumulates is exactly the stored answer.
A model server that is down gives a clear error, and the customer's message is kept.

Real uvicorn, the demo knowledge base ingested with the packaged embedding model, the packaged
language model answering in-process (the local backend).
"""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from assistant.database import session_scope
from assistant.database.models import Conversation, Message
from tests.api.support import assert_openai_error, demo_env, free_port, key, real_agent, serve
from ui.api.app import create_app

QUESTION = "How long do I have to return an item?"
FOLLOW_UP = "How much does express shipping cost?"


@pytest.fixture(scope="module")
def demo(tmp_path_factory, embedder, demo_snapshot):
    with demo_env(tmp_path_factory.mktemp("api_demo"), "sqlite", demo_snapshot, embedder) as settings:
        with serve(create_app(settings, agent=real_agent(settings, embedder))) as base:
            yield settings, base, key(settings, "customer", ("demo",))


def _messages(settings, conversation_id: int) -> list[Message]:
    with session_scope(settings) as session:
        return list(session.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)))


def _count(settings, text: str) -> int:
    with session_scope(settings) as session:
        return len(session.scalars(select(Message.id).where(Message.role == "customer", Message.text == text)).all())


def _check_citations(text: str, citations: list[dict], topic: str) -> None:
    """Every citation is marked in the text and names its document (not its path); one is on ``topic``."""
    assert citations, text
    assert {c["number"] for c in citations} <= {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    for citation in citations:
        assert citation["document"].endswith(".md") and "/" not in citation["document"] and citation["text"]
        parts = citation["heading"].split(" > ")
        assert citation["heading"] and len(set(parts)) == len(parts), citation  # the title said once
    assert any(topic in f"{c['document']} {c['title']} {c['section']}".lower() for c in citations), citations


def test_the_openai_client_gets_cited_answers_streaming_and_not(demo):
    from openai import OpenAI

    settings, base, customer = demo
    client = OpenAI(base_url=f"{base}/v1", api_key=customer, max_retries=0, timeout=600)
    assert [model.id for model in client.models.list()] == ["helpmate/demo"]

    answer = client.chat.completions.create(model="helpmate/demo", messages=[{"role": "user", "content": QUESTION}],
                                            user="cust-1842")
    text = answer.choices[0].message.content
    extra = answer.model_extra["helpmate"]
    assert extra["kind"] in ("generated", "extractive")
    assert ("note" in extra) == (extra["kind"] == "extractive")  # why the draft a client showed is gone
    _check_citations(text, extra["citations"], "return")
    cid, secret = extra["conversation_id"], extra["conversation_secret"]
    stored = _messages(settings, cid)
    assert [(m.role, m.text) for m in stored] == [("customer", QUESTION), ("assistant", text)]
    assert extra["sentiment"]["label"] == stored[0].sentiment_label and extra["message_id"] == stored[1].id
    with session_scope(settings) as session:
        assert session.get(Conversation, cid).customer_id == "cust-1842"

    chunks = list(client.chat.completions.create(
        model="helpmate/demo", messages=[{"role": "user", "content": FOLLOW_UP}], stream=True,
        extra_body={"conversation_id": cid, "conversation_secret": secret}))
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and last.model_extra["helpmate"]["conversation_id"] == cid
    assert any((chunk.model_extra.get("helpmate") or {}).get("draft") for chunk in chunks)  # the model's draft, live
    _check_citations(streamed, last.model_extra["helpmate"]["citations"], "shipping")
    stored = _messages(settings, cid)
    assert [m.role for m in stored] == ["customer", "assistant", "customer", "assistant"]
    assert stored[-1].text == streamed and stored[-2].text == FOLLOW_UP


def test_langchain_chat_openai_gets_cited_answers(demo):
    from langchain_openai import ChatOpenAI

    settings, base, customer = demo
    llm = ChatOpenAI(base_url=f"{base}/v1", api_key=customer, model="helpmate/demo", max_retries=0, timeout=600)
    answer = llm.invoke(QUESTION)
    assert re.search(r"\[\d\]", answer.content), answer.content  # cited
    streamed = "".join(chunk.content for chunk in llm.stream(FOLLOW_UP))
    assert re.search(r"\[\d\]", streamed), streamed
    with session_scope(settings) as session:
        answers = list(session.scalars(select(Message.text).where(Message.role == "assistant").order_by(Message.id.desc())
                                       .limit(2)))
    assert answers == [streamed, answer.content]


def test_a_model_server_that_is_down_gives_a_clear_error_and_keeps_the_message(demo, embedder):
    from openai import APIError, OpenAI

    settings, _, customer = demo
    down = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    agent = real_agent(settings, embedder, llm_backend="vllm", vllm_base_url=down, vllm_retries=0, vllm_timeout_s=5)
    with serve(create_app(settings, agent=agent)) as base:
        response = httpx.post(f"{base}/v1/chat/completions", headers={"Authorization": f"Bearer {customer}"}, timeout=120,
                              json={"model": "helpmate/demo", "messages": [{"role": "user", "content": QUESTION}]})
        error = assert_openai_error(response, 503, "model_unavailable")
        assert "try again" in error["message"] and down not in response.text and response.headers["Retry-After"]
        first = error["helpmate"]["conversation_id"]
        client = OpenAI(base_url=f"{base}/v1", api_key=customer, timeout=120)  # with its default retries
        with pytest.raises(APIError) as raised:
            list(client.chat.completions.create(model="helpmate/demo", stream=True,
                                                messages=[{"role": "user", "content": FOLLOW_UP}]))
        assert "cannot answer just now" in raised.value.message
        second = raised.value.body["helpmate"]["conversation_id"]
        before = _count(settings, QUESTION)
        with pytest.raises(APIError, match="cannot answer just now"):
            client.chat.completions.create(model="helpmate/demo", messages=[{"role": "user", "content": QUESTION}])
        assert _count(settings, QUESTION) == before + 1  # not retried: the message is stored, a retry would repeat it
    assert [(m.role, m.text) for m in _messages(settings, first)] == [("customer", QUESTION)]
    assert [(m.role, m.text) for m in _messages(settings, second)] == [("customer", FOLLOW_UP)]
