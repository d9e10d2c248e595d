"""Through the HTTP API a key reaches what its role allows and nothing else, on SQLite and PostgreSQL.

A customer key is public (it sits in a web page): it chats on public knowledge bases and reaches a
conversation only with that conversation's secret; it reads no one's conversation, report, alert,
ticket queue or ingestion job. An operator key reads them for its knowledge bases. Real uvicorn,
real database, real index and models; the turns here need no language model (a hand-over to a
person is decided by the router), so they are quick.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from assistant.access import Caller, audit_log, set_visibility
from assistant.conversations.store import add_message, start_conversation
from assistant.database import session_scope
from assistant.database.models import ApiConversation, ApiKey, Feedback, Message
from ingest.pipeline import Ingestor
from tests.api.support import assert_openai_error, chat, database_env, headers, key, real_agent, serve
from tests.helpers import make_helpcenter
from ui.api.app import create_app

SECRET = "Mrs Jane Example, 12 Elm Street: my card 4111 was charged twice and I am furious"
HUMAN = "I want to talk to a person please"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request, tmp_path_factory, embedder):
    """A public help center "help", an internal knowledge base, another customer's conversation, the API
    serving them, and one key per role."""
    root = tmp_path_factory.mktemp(f"api_access_{request.param}")
    with database_env(root, request.param) as settings:
        Ingestor("help", settings, embedder, show_progress=False).run([make_helpcenter(root / "kb")])
        internal = root / "internal"
        internal.mkdir()
        (internal / "margins.md").write_text("# Margins\n\nOur margin on tents is 42 percent.\n")
        Ingestor("internal", settings, embedder, show_progress=False).run([internal])
        set_visibility(settings, "help", "public", Caller.staff("admin", "test"))
        with session_scope(settings) as session:
            other = start_conversation(session, "email", kb="help", customer_id="jane")
            add_message(session, other, "customer", SECRET, settings=settings)
            other_id = other.id
        keys = {"customer": key(settings, "customer"), "operator": key(settings, "operator"),
                "internal_operator": key(settings, "operator", ("internal",)), "admin": key(settings, "admin")}
        with serve(create_app(settings, agent=real_agent(settings, embedder))) as base:
            yield settings, base, keys, other_id


def get(base, path, api_key, secret=None, **params):
    return httpx.get(f"{base}{path}", headers=headers(api_key, secret), params=params, timeout=60)


def test_a_customer_key_reads_no_conversation_report_or_queue_and_an_operator_key_does(world):
    settings, base, keys, other_id = world
    customer = keys["customer"]
    assert_openai_error(get(base, f"/v1/conversations/{other_id}", customer), 403, "conversation_secret_required")
    assert_openai_error(get(base, f"/v1/conversations/{other_id}", customer, "guessed-secret"), 403)
    for path in ("/v1/reports/sentiment", "/v1/alerts", "/v1/tickets", "/v1/ingestion-jobs"):
        error = assert_openai_error(get(base, path, customer), 403, "access_denied")
        assert SECRET not in error["message"]
    moved = httpx.patch(f"{base}/v1/tickets/1", json={"status": "closed"}, headers=headers(customer), timeout=30)
    assert_openai_error(moved, 403)

    operator = keys["operator"]
    shown = get(base, f"/v1/conversations/{other_id}", operator)
    assert shown.status_code == 200, shown.text
    message = shown.json()["messages"][0]
    assert message["text"] == SECRET and message["sentiment"]["label"] == "negative"
    assert shown.json()["customer_id"] == "jane"
    report = get(base, "/v1/reports/sentiment", operator, group_by="channel")
    assert report.status_code == 200, report.text
    assert {row["channel"] for row in report.json()["rows"]} >= {"email"} and report.json()["overview"]["messages"] >= 1
    assert get(base, "/v1/tickets", operator).status_code == 200
    assert get(base, "/v1/alerts", operator).status_code == 200
    assert any(entry.action == "conversation.read" and entry.target == f"conversation {other_id}"
               for entry in audit_log(settings))

    limited = keys["internal_operator"]
    assert_openai_error(get(base, f"/v1/conversations/{other_id}", limited), 403, "access_denied")
    assert_openai_error(get(base, "/v1/reports/sentiment", limited, kb="help"), 403)
    assert get(base, "/v1/reports/sentiment", limited).json()["overview"]["messages"] == 0  # only its own knowledge base


def test_a_customer_continues_reads_and_rates_only_with_the_conversation_secret(world):
    settings, base, keys, other_id = world
    customer = keys["customer"]
    first = chat(base, customer, HUMAN, "help", user="visitor-7")
    assert first.status_code == 200, first.text
    extra = first.json()["helpmate"]
    cid, secret, answer_id = extra["conversation_id"], extra["conversation_secret"], extra["message_id"]
    assert extra["kind"] == "escalation" and extra["ticket"]["id"] and extra["sentiment"]["label"]

    assert_openai_error(chat(base, customer, "hello again", "help", conversation_id=cid), 403)
    assert_openai_error(chat(base, customer, "hello again", "help", conversation_id=cid, conversation_secret="x" * 32), 403)
    assert_openai_error(chat(base, customer, "hello", "help", conversation_id=other_id, conversation_secret=secret), 403)
    again = chat(base, customer, HUMAN, "help", conversation_id=cid, conversation_secret=secret)
    assert again.status_code == 200 and again.json()["helpmate"]["conversation_id"] == cid
    assert "conversation_secret" not in again.json()["helpmate"]  # given once, when it started

    read = get(base, f"/v1/conversations/{cid}", customer, secret)
    assert read.status_code == 200
    assert [m["role"] for m in read.json()["messages"]] == ["customer", "assistant", "customer", "assistant"]
    assert "sentiment" not in read.json()["messages"][0] and "customer_id" not in read.json()  # operators' fields

    def rate(conversation, secret_, message_id):
        return httpx.post(f"{base}/v1/conversations/{conversation}/feedback", json={"message_id": message_id, "rating": "down"},
                          headers=headers(customer, secret_), timeout=30)

    assert_openai_error(rate(cid, None, answer_id), 403)
    with session_scope(settings) as session:
        other_message = session.scalar(select(Message.id).where(Message.conversation_id == other_id))
    assert_openai_error(rate(cid, secret, other_message), 400, "invalid_message")
    rated = rate(cid, secret, answer_id)
    assert rated.status_code == 201 and rated.json()["review_status"] == "pending"

    handover = httpx.post(f"{base}/v1/conversations/{cid}/handover", headers=headers(customer, secret), timeout=30)
    assert handover.json()["ticket"] == {**extra["ticket"], "status": "open", "created": False}
    with session_scope(settings) as session:
        stored = session.get(ApiConversation, cid)
        assert stored.secret_hash != secret and len(stored.secret_hash) == 64  # only its hash
        assert session.scalar(select(func.count(ApiKey.id)).where(ApiKey.key_hash == customer)) == 0
        assert session.scalar(select(Feedback.given_by).where(Feedback.message_id == answer_id)) == "customer"


def test_an_operator_key_replies_to_a_handed_over_customer_who_reads_it_with_the_secret(world):
    settings, base, keys, _ = world
    customer, operator = keys["customer"], keys["operator"]
    started = chat(base, customer, HUMAN, "help")
    cid, secret = started.json()["helpmate"]["conversation_id"], started.json()["helpmate"]["conversation_secret"]
    text = "Hello, Anna here: I have refunded the second charge today."

    def reply(api_key, conversation=cid, said=text, secret_=None):
        return httpx.post(f"{base}/v1/conversations/{conversation}/messages", json={"text": said},
                          headers=headers(api_key, secret_), timeout=30)

    assert_openai_error(reply(customer), 403, "access_denied")
    assert_openai_error(reply(customer, secret_=secret), 403, "access_denied")  # its customer speaks through the chat
    assert_openai_error(reply(keys["internal_operator"]), 403, "access_denied")
    assert_openai_error(reply(operator, said="   "), 400, "invalid_reply")
    assert_openai_error(reply(operator, conversation=10**6), 404, "conversation_not_found")
    sent = reply(operator)
    assert sent.status_code == 201, sent.text
    assert (sent.json()["role"], sent.json()["text"], sent.json()["ticket"]["status"]) == ("agent", text, "assigned")

    read = get(base, f"/v1/conversations/{cid}", customer, secret)
    assert read.json()["messages"][-1] == {"id": sent.json()["id"], "role": "agent", "text": text,
                                           "created_at": sent.json()["created_at"]}
    assert read.json()["ticket"]["status"] == "assigned"
    newer = get(base, f"/v1/conversations/{cid}", customer, secret, after=sent.json()["id"] - 1)  # what a poll asks for
    assert [m["id"] for m in newer.json()["messages"]] == [sent.json()["id"]] and newer.json()["ticket"]["status"] == "assigned"
    assert any(e.action == "conversation.reply" and e.target == f"conversation {cid}" for e in audit_log(settings))
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Message.id)).where(Message.conversation_id == cid,
                                                                   Message.role == "agent")) == 1


def test_a_customer_key_reaches_only_public_knowledge_bases(world):
    settings, base, keys, _ = world
    listed = get(base, "/v1/models", keys["customer"]).json()
    assert [m["id"] for m in listed["data"]] == ["helpmate/help"]
    assert_openai_error(chat(base, keys["customer"], HUMAN, "internal"), 404, "model_not_found")
    assert [m["id"] for m in get(base, "/v1/models", keys["operator"]).json()["data"]] == ["helpmate/help", "helpmate/internal"]
    assert [m["id"] for m in get(base, "/v1/models", keys["internal_operator"]).json()["data"]] == ["helpmate/internal"]
    with pytest.raises(ValueError, match="internal, so a customer key could not use it"):
        key(settings, "customer", ("internal",))


def test_bad_requests_get_openai_errors_never_a_traceback(world):
    settings, base, keys, _ = world
    url = f"{base}/v1/chat/completions"
    good = {"model": "helpmate/help", "messages": [{"role": "user", "content": HUMAN}]}
    auth = headers(keys["customer"])
    assert_openai_error(httpx.post(url, json=good, timeout=30), 401, "missing_api_key")
    assert_openai_error(httpx.post(url, json=good, headers=headers("hm_not-a-key"), timeout=30), 401, "invalid_api_key")
    assert_openai_error(httpx.post(url, json=good, headers=headers("sk-openai"), timeout=30), 401, "invalid_api_key")
    assert_openai_error(httpx.post(url, content=b"{not json", headers={**auth, "Content-Type": "application/json"},
                                   timeout=30), 400)
    assert_openai_error(httpx.post(url, json={"model": "helpmate/help"}, headers=auth, timeout=30), 400)
    assert_openai_error(httpx.post(url, json={**good, "messages": [{"role": "assistant", "content": "hi"}]}, headers=auth,
                                   timeout=30), 400, "invalid_messages")
    assert_openai_error(httpx.post(url, json={**good, "messages": [{"role": "user", "content": "x" * 9000}]}, headers=auth,
                                   timeout=30), 400, "message_too_long")
    image = [{"type": "image_url", "image_url": {"url": "http://example.invalid/x.png"}}]
    assert_openai_error(httpx.post(url, json={**good, "messages": [{"role": "user", "content": image}]}, headers=auth,
                                   timeout=30), 400, "unsupported_content")
    assert_openai_error(httpx.post(url, json={**good, "model": "gpt-4o"}, headers=auth, timeout=30), 404, "model_not_found")
    assert_openai_error(httpx.post(url, json={**good, "conversation_id": 10**9, "conversation_secret": "x"}, headers=auth,
                                   timeout=30), 403)
    assert_openai_error(httpx.get(f"{base}/v1/nowhere", headers=auth, timeout=30), 404)
    assert_openai_error(httpx.delete(f"{base}/v1/models", headers=auth, timeout=30), 405)
    assert_openai_error(get(base, "/v1/conversations/not-a-number", keys["operator"]), 400)
    assert_openai_error(get(base, "/v1/reports/sentiment", keys["operator"], start="2026-02-30"), 400)
