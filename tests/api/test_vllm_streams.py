"""Many customers at once, and the model server going away, through `helpmate api` with the vllm backend
and the run's real vLLM server (one test stops it and starts it again).

32 clients stream at once against one API process: all complete, none errs, and each conversation
holds exactly its question and the answer that client received (SQLite and PostgreSQL). Then the
server is killed while streams are running: each client still waiting gets an error event in
OpenAI's shape, every customer message is stored, and once the server is back the same
conversations get answers again.
"""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack

import pytest
from sqlalchemy import func, select

from assistant.database import session_scope
from assistant.database.models import Message
from tests.api.support import demo_env, key, real_agent, serve
from tests.conftest import REPO
from ui.api.app import create_app

pytestmark = pytest.mark.slow
QUESTIONS = [json.loads(line)["question"] for line in (REPO / "demo" / "questions.jsonl").read_text().splitlines()
             if line.strip() and json.loads(line).get("source")]


@pytest.fixture(scope="module")
def apis(tmp_path_factory, embedder, demo_snapshot, model_server):
    """``api(database)``: the demo help center on that database, served by one API process on the vllm backend."""
    base_url = model_server.base_url
    built: dict[str, tuple] = {}
    with ExitStack() as stack:
        def api(database: str) -> tuple:
            if database not in built:
                root = tmp_path_factory.mktemp(f"api_vllm_{database}")
                settings = stack.enter_context(demo_env(root, database, demo_snapshot, embedder))
                agent = real_agent(settings, embedder, llm_backend="vllm", vllm_base_url=base_url, vllm_timeout_s=300.0)
                base = stack.enter_context(serve(create_app(settings, agent=agent)))
                built[database] = (settings, base, key(settings, "customer", ("demo",)), agent)
            return built[database]

        yield api


def _stream(base: str, api_key: str, text: str, writing: threading.Event | None, extra: dict | None, result: dict) -> None:
    """One client: a streaming chat turn with the official openai client; what it got lands in ``result``."""
    from openai import APIError, OpenAI

    client = OpenAI(base_url=f"{base}/v1", api_key=api_key, max_retries=0, timeout=600)
    content, helpmate = "", {}
    try:
        for chunk in client.chat.completions.create(model="helpmate/demo", stream=True, extra_body=extra or {},
                                                    messages=[{"role": "user", "content": text}]):
            fields = chunk.model_extra.get("helpmate") or {}
            helpmate.update({k: v for k, v in fields.items() if k != "draft"})
            if fields.get("draft"):
                result["drafted"] = True
                if writing is not None:
                    writing.set()  # the model is writing an answer
            content += chunk.choices[0].delta.content or ""
            if chunk.choices[0].finish_reason:
                result["finished"] = True
        result.update(content=content, helpmate=helpmate)
    except APIError as error:
        result.update(error=error.message, body=error.body, helpmate=helpmate)
    except Exception as error:  # noqa: BLE001 - recorded; the test asserts there is none
        result.update(unexpected=f"{type(error).__name__}: {error}", helpmate=helpmate)


def _run_clients(count: int, target, args_of) -> tuple[list[dict], list[threading.Thread]]:
    results = [{} for _ in range(count)]
    threads = [threading.Thread(target=target, args=(*args_of(i), results[i])) for i in range(count)]
    for thread in threads:
        thread.start()
    return results, threads


def _model_questions(agent, count: int) -> list[str]:
    """Questions whose passages are close enough that the model writes the answer (no refusal)."""
    floor = agent.settings.answer_min_relevance + 0.05
    chosen = [q for q in QUESTIONS
              if max(h.dense_score or 0.0 for h in agent.assistant.retriever.search(q, "demo", k=4)) >= floor]
    assert len(chosen) >= count
    return chosen[:count]


def _newest(settings) -> int:
    with session_scope(settings) as session:
        return session.scalar(select(func.max(Message.id))) or 0


def _stored(settings, after_id: int) -> int:
    """Customer messages stored after message ``after_id``."""
    with session_scope(settings) as session:
        return len(session.scalars(select(Message.id).where(Message.role == "customer", Message.id > after_id)).all())


def _conversation(settings, conversation_id: int) -> list[tuple[str, str]]:
    with session_scope(settings) as session:
        return [(m.role, m.text) for m in session.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                                          .order_by(Message.id))]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_32_concurrent_streaming_clients_all_complete_and_nothing_is_lost(apis, database):
    settings, base, customer, _ = apis(database)
    results, threads = _run_clients(32, _stream, lambda i: (base, customer, QUESTIONS[i % len(QUESTIONS)], None, None))
    for thread in threads:
        thread.join(900)
    assert all(r.get("finished") and "error" not in r and "unexpected" not in r for r in results), \
        [r for r in results if not r.get("finished")][:3]
    conversations = {r["helpmate"]["conversation_id"] for r in results}
    assert len(conversations) == 32
    for index, result in enumerate(results):
        assert result["content"] and result["helpmate"]["kind"] in ("generated", "extractive", "refusal", "escalation")
        assert _conversation(settings, result["helpmate"]["conversation_id"]) == [
            ("customer", QUESTIONS[index % len(QUESTIONS)]), ("assistant", result["content"])]


def test_stopping_the_model_server_mid_stream_gives_each_client_an_error_and_answers_resume(apis, model_server):
    settings, base, customer, agent = apis("sqlite")
    clients = 6
    questions = _model_questions(agent, clients)
    writing = threading.Event()
    before = _newest(settings)
    results, threads = _run_clients(clients, _stream, lambda i: (base, customer, questions[i], writing, None))
    assert writing.wait(600), results
    model_server.pause()  # the first answer is being written; from now on no unfinished answer can finish
    try:
        _every_stream_fails_and_keeps_its_message(settings, base, customer, questions, results, threads, before, model_server)
    finally:  # whatever failed, the run's other tests get their server back
        model_server.restart()
    resumed, threads = _run_clients(clients, _stream, lambda i: (
        base, customer, "Thanks. " + questions[i], None, {key_: _started(results[i])[key_]
                                                          for key_ in ("conversation_id", "conversation_secret")}))
    for thread in threads:
        thread.join(600)
    for index, result in enumerate(resumed):
        assert result.get("finished") and "error" not in result, result
        earlier = [("assistant", results[index]["content"])] if results[index].get("finished") else []
        assert _conversation(settings, _started(results[index])["conversation_id"]) == [
            ("customer", questions[index]), *earlier, ("customer", "Thanks. " + questions[index]),
            ("assistant", result["content"])]


def _started(result: dict) -> dict:
    """The conversation fields a client got, from its error body or from its finished stream."""
    return result["body"]["helpmate"] if "body" in result else result["helpmate"]


def _every_stream_fails_and_keeps_its_message(settings, base, customer, questions, results, threads, before, model_server):
    """With the server frozen and then killed: each client still waiting for its answer gets the model_unavailable
    error, its message is stored and no half answer; a new message while the server is down gets the same.

    A short answer can be complete in the moment between the first draft token reaching its client and the
    freeze: such a client finished before the server stopped, so its whole turn must be stored instead."""
    clients = len(questions)
    deadline = time.monotonic() + 300
    while _stored(settings, before) < clients:  # every turn has stored its message and is on its way to the model
        assert time.monotonic() < deadline, results
        time.sleep(0.1)
    time.sleep(2)
    model_server.kill()
    for thread in threads:
        thread.join(300)
    assert any(r.get("drafted") and not r.get("finished") for r in results), results  # a stream was cut mid-answer
    for index, result in enumerate(results):
        assert "unexpected" not in result, result
        if result.get("finished"):
            assert "error" not in result, result
            assert _conversation(settings, result["helpmate"]["conversation_id"]) == [
                ("customer", questions[index]), ("assistant", result["content"])]
            continue
        assert "cannot answer just now" in result["error"] and result["body"]["code"] == "model_unavailable"
        assert result["helpmate"]["conversation_id"] == result["body"]["helpmate"]["conversation_id"]  # the stream had begun
        conversation = result["body"]["helpmate"]["conversation_id"]
        assert _conversation(settings, conversation) == [("customer", questions[index])]  # kept, no half answer

    down: dict = {}
    _stream(base, customer, questions[0], None, None, down)  # while the server is down: an error, the message kept
    assert down["body"]["code"] == "model_unavailable"
    assert _conversation(settings, down["body"]["helpmate"]["conversation_id"]) == [("customer", questions[0])]
