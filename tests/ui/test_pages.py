"""Each page's logic through Streamlit's AppTest: the real app scripts, models and database.

One data directory for the module: the small test help center ingested as "help", the demo
conversations imported (sentiment scored), an operator and an admin.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from assistant.answering.assistant import REPLACED_NOTE

from tests.helpers import make_helpcenter
from tests.ui.support import UIData, prepare
from tests.conftest import REPO

VIEWS = REPO / "ui" / "views"
TIMEOUT = 240  # the first answer loads the language model on CPU


@pytest.fixture(scope="module")
def ui_data(tmp_path_factory, embedder):
    from assistant.config import get_settings
    from assistant.database import dispose_engines

    root = tmp_path_factory.mktemp("ui_pages")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HELPMATE_DATA_DIR", str(root / "data"))
        patch.delenv("HELPMATE_DATABASE_URL", raising=False)
        patch.setenv("HELPMATE_LLM_BACKEND", "local")
        patch.delenv("HELPMATE_UI_KB", raising=False)
        data = prepare(root / "data", make_helpcenter(root / "helpcenter"), "help")
        yield data
        dispose_engines()
        get_settings.cache_clear()


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(VIEWS / f"{name}.py"), default_timeout=TIMEOUT)


def _log_in(at: AppTest, name: str, password: str) -> AppTest:
    """Fill the login form and press its button (the only form_submit_button on the page before login)."""
    at.text_input(key="login_name").set_value(name)
    at.text_input(key="login_password").set_value(password)
    return [b for b in at.button if b.label == "Log in"][0].click().run()


def _texts(at: AppTest) -> str:
    """Every text on the page as it reads (the chat escapes messages' Markdown; unescaped here)."""
    parts = [re.sub(r"\\(.)", r"\1", m.value) for m in at.markdown] + [e.value for e in at.error] + [i.value for i in at.info]
    parts += [c.value for c in at.caption] + [s.value for s in at.success] + [w.value for w in at.warning]
    return "\n".join(str(p) for p in parts)


def test_chat_answers_with_citations_and_stores_thumbs_and_a_better_answer(ui_data: UIData):
    from assistant.config import get_settings
    from assistant.database import session_scope
    from assistant.database.models import Feedback, Message, Ticket

    at = _page("chat").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="chat_kb").value == "help"
    at.chat_input[0].set_value("How many days do I have to return an item?").run()
    assert not at.exception, at.exception
    turns = at.session_state["helpmate_chat"]["turns"]
    assert [t["role"] for t in turns] == ["customer", "assistant"]
    answer = turns[1]
    assert answer["kind"] in ("generated", "extractive"), answer
    # The draft streamed into the bubble; a replaced one is explained above the quoted passage text.
    assert (REPLACED_NOTE in [c.value for c in at.caption]) == (answer["kind"] == "extractive")
    assert "30 days" in answer["text"]
    assert answer["citations"] and answer["citations"][0]["source"].endswith("returns.md")
    # Labels are Markdown, escaped so a document's title cannot add links or images; unescaped they read plainly.
    labels = [re.sub(r"\\(.)", r"\1", e.label) for e in at.expander]
    assert any(label.startswith("[1]") and "returns.md" in label for label in labels), labels
    # The document's name, never where it lies on the server.
    sources = [c.value for c in at.caption if c.value.startswith("Source:")]
    assert sources and all("/" not in s and "returns" in s for s in sources[:1]), sources

    at.button(key="down_1").click().run()
    assert not at.exception, at.exception
    settings = get_settings()
    with session_scope(settings) as session:
        rows = session.scalars(select(Feedback).where(Feedback.message_id == answer["message_id"])).all()
        assert [(r.rating, r.given_by) for r in rows] == [("down", "customer")]
        assert "30 days" in rows[0].answer and "return" in rows[0].question.lower()
        stored = session.get(Message, answer["message_id"])
        assert stored.role == "assistant" and stored.answer_kind == answer["kind"]
    assert "Thanks; your feedback" in _texts(at)

    at.text_area(key="better_text_1").set_value("You have 30 days from delivery to return an item for a full refund.")
    [b for b in at.button if b.label == "Send suggestion"][0].click().run()
    with session_scope(settings) as session:
        corrected = session.scalars(select(Feedback.corrected_answer).where(
            Feedback.message_id == answer["message_id"], Feedback.corrected_answer.is_not(None))).all()
    assert corrected == ["You have 30 days from delivery to return an item for a full refund."]

    at.button(key="talk_to_person").click().run()
    assert not at.exception, at.exception
    conversation_id = at.session_state["helpmate_chat"]["conversation_id"]
    with session_scope(settings) as session:
        tickets = session.scalars(select(Ticket).where(Ticket.conversation_id == conversation_id)).all()
    assert len(tickets) == 1 and tickets[0].status == "open"
    assert f"ticket #{tickets[0].id}" in _texts(at)


def test_chat_answers_a_greeting_in_kind_with_nothing_to_rate(ui_data: UIData):
    at = _page("chat").run()
    at.chat_input[0].set_value("Hi!").run()
    assert not at.exception, at.exception
    reply = at.session_state["helpmate_chat"]["turns"][-1]
    assert (reply["kind"], reply["text"]) == ("smalltalk", "Hello! What can I help you with today?")
    assert not [b for b in at.button if b.key == "up_1"]  # no thumbs under it


def test_chat_says_clearly_when_the_model_server_is_down(ui_data: UIData, monkeypatch):
    import socket

    from assistant.config import get_settings

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HELPMATE_LLM_BACKEND", "vllm")
    monkeypatch.setenv("HELPMATE_VLLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("HELPMATE_VLLM_RETRIES", "0")
    monkeypatch.setenv("HELPMATE_VLLM_TIMEOUT_S", "2")
    get_settings.cache_clear()
    try:
        at = _page("chat").run()
        at.chat_input[0].set_value("How many days do I have to return an item?").run()
        assert not at.exception, at.exception
        errors = [e.value for e in at.error]
        assert any("answer model is not reachable" in e for e in errors), errors
        # Reruns keep the conversation, error included.
        at.run()
        assert [t["role"] for t in at.session_state["helpmate_chat"]["turns"]] == ["customer", "assistant"]
    finally:
        get_settings.cache_clear()


def test_dashboard_asks_for_an_operator_and_then_shows_sentiment(ui_data: UIData):
    at = _page("dashboard").run()
    assert not at.exception, at.exception
    assert not at.get("vega_lite_chart")
    assert [b.label for b in at.button] == ["Log in"]

    _log_in(at, ui_data.operator[0], "not-the-password")
    assert "Wrong user name or password." in [e.value for e in at.error]

    _log_in(at, ui_data.operator[0], ui_data.operator[1])
    assert not at.exception, at.exception
    assert at.title[0].value == "Operator dashboard"
    assert len(at.get("vega_lite_chart")) >= 2  # over time, and by channel
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Customer messages"]) > 0
    assert {"Download sentiment_over_time (CSV)", "Download most_negative (CSV)"} <= {
        b.proto.label for b in at.get("download_button")}
    # The drill-down shows the chosen conversation's transcript with sentiment per message.
    assert any(c.value.startswith("customer · ") and ("negative" in c.value) for c in at.caption)


def test_dashboard_moves_a_ticket_through_the_queue(ui_data: UIData):
    from assistant.config import get_settings
    from assistant.database import session_scope
    from assistant.database.models import Conversation, Ticket
    from assistant.conversations.tickets import create_ticket

    settings = get_settings()
    with session_scope(settings) as session:
        conversation_id = session.scalar(select(Conversation.id).order_by(Conversation.id).limit(1))
        ticket, _ = create_ticket(session, conversation_id, "customer is angry about a late parcel", "high")
        ticket_id = ticket.id
    at = _page("dashboard").run()
    _log_in(at, ui_data.admin[0], ui_data.admin[1])  # an admin may use the operator page
    assert not at.exception, at.exception
    forms = at.get("form")
    assert forms, "the ticket form is shown when the queue has tickets"
    at.selectbox[[s.label for s in at.selectbox].index("Ticket")].set_value(ticket_id)
    at.selectbox[[s.label for s in at.selectbox].index("New status")].set_value("assigned")
    [b for b in at.button if b.label == "Update ticket"][0].click().run()
    assert not at.exception, at.exception
    with session_scope(settings) as session:
        stored = session.get(Ticket, ticket_id)
        assert (stored.status, stored.assignee) == ("assigned", ui_data.admin[0])


def test_admin_page_needs_an_admin_and_lists_documents(ui_data: UIData):
    at = _page("admin").run()
    _log_in(at, ui_data.operator[0], ui_data.operator[1])
    assert any("needs an admin" in e.value for e in at.error)
    assert not at.title or at.title[0].value != "Admin"

    _log_in(at, ui_data.admin[0], ui_data.admin[1])
    assert not at.exception, at.exception
    assert at.title[0].value == "Admin"
    frames = at.dataframe
    kbs = frames[0].value
    assert list(kbs["name"]) == ["help"] and int(kbs["documents"][0]) >= 6
    docs = frames[1].value
    assert set(docs["status"]) == {"indexed"} and len(docs) == int(kbs["documents"][0])
    assert any(source.endswith("warranty.pdf") for source in docs["source"])
    assert at.button(key="admin_ingest").disabled  # nothing uploaded yet

    warranty = next(source for source in docs["source"] if source.endswith("warranty.pdf"))
    at.selectbox(key="admin_passages_doc").set_value(warranty).run()
    assert not at.exception, at.exception
    [passages] = [f.value for f in at.dataframe if "tokens" in f.value.columns]
    assert list(passages["number"]) == [1, 2] and list(passages["page"]) == [1, 2]
    assert "three extra years" in passages["text"][1]


def test_admin_sets_who_sees_which_knowledge_base_and_reads_the_audit_log(ui_data: UIData):
    from assistant.access import public_knowledge_bases
    from assistant.config import get_settings
    from ui.auth import list_users

    settings = get_settings()
    at = _page("admin").run()
    _log_in(at, ui_data.admin[0], ui_data.admin[1])
    assert not at.exception, at.exception
    try:
        at.toggle(key="admin_public_help").set_value(False).run()
        assert not at.exception, at.exception
        assert public_knowledge_bases(settings) == [] and "help is now internal." in [s.value for s in at.success]
        assert at.toggle(key="admin_public_help").value is False

        operator = ui_data.operator[0]
        at.checkbox[[c.label for c in at.checkbox].index(f"{operator}: all knowledge bases")].uncheck()
        at.multiselect[[m.label for m in at.multiselect].index(f"Knowledge bases of {operator}")].select("help")
        at.button(key=f"admin_kbs_save_{operator}").click().run()
        assert not at.exception, at.exception
        assert {u["name"]: u["knowledge_bases"] for u in list_users(settings)}[operator] == ["help"]

        log = [f.value for f in at.dataframe if "action" in f.value.columns][0]
        assert {"login", "kb.visibility", "user.knowledge_bases"} <= set(log["action"])
        newest = log[log["action"] == "kb.visibility"].iloc[0]  # newest first
        assert (newest["actor"], newest["target"], newest["detail"]) == (ui_data.admin[0], "help",
                                                                         '{"visibility": "internal"}')
    finally:  # the other tests of this module use the published help center and an unlimited operator
        from assistant.access import Caller, set_visibility
        from ui.auth import set_knowledge_bases

        set_visibility(settings, "help", "public", Caller.staff("admin", "test"))
        set_knowledge_bases(ui_data.operator[0], None, settings, by=Caller.staff("admin", "test"))


def test_admin_adds_tests_and_removes_a_webhook(ui_data: UIData):
    from assistant.access import audit_log
    from assistant.config import get_settings
    from assistant.webhooks import verify_signature
    from tests.helpers import WebhookReceiver

    receiver = WebhookReceiver()
    try:
        at = _page("admin").run()
        _log_in(at, ui_data.admin[0], ui_data.admin[1])
        at.text_input(key="admin_webhook_url").set_value("desk.example.com/hooks")
        [b for b in at.button if b.label == "Add webhook"][0].click().run()
        assert any("is not an http" in e.value for e in at.error)  # shown escaped, as typed
        at.text_input(key="admin_webhook_url").set_value(receiver.url)
        at.multiselect(key="admin_webhook_events").set_value(["ticket.opened"])
        at.selectbox(key="admin_webhook_kb").set_value("help")
        [b for b in at.button if b.label == "Add webhook"][0].click().run()
        assert not at.exception, at.exception
        secret = at.code[0].value  # shown once
        assert secret.startswith("whsec_") and any("shown this once" in s.value for s in at.success)
        webhooks = [f.value for f in at.dataframe if "url" in f.value.columns][0]
        assert list(webhooks["url"]) == [receiver.url] and "secret" not in webhooks.columns
        at.run()
        assert not at.code  # not shown again

        receiver.statuses = [502]
        at.button(key="admin_webhook_test").click().run()
        assert any("not taken (HTTP 502" in e.value for e in at.error)
        at.button(key="admin_webhook_test").click().run()
        assert any("the receiver took it" in s.value for s in at.success)
        headers, body = receiver.received[-1]
        assert verify_signature(secret, headers["X-Helpmate-Signature"], body)
        at.button(key="admin_webhook_remove").click().run()
        assert not at.exception, at.exception
        assert any("Webhook 1 removed." == s.value for s in at.success)
        assert "admin_webhook_test" not in [b.key for b in at.button]  # nothing active left to test
        actions = [e.action for e in audit_log(get_settings())]
        assert {"webhook.add", "webhook.remove"} <= set(actions)
    finally:
        receiver.close()


def test_admin_promotes_and_rolls_back_model_versions(settings, tmp_path):
    """The page's buttons go through finetune.registry: statuses change in the database."""
    from assistant.database import session_scope
    from assistant.database.models import ModelVersion
    from finetune.registry import record_candidate, set_evaluation
    from ui.auth import add_user

    add_user("adam", "admin-password-1", "admin", settings)
    for name, score in [("helpmate-ft-001-aaaa", 0.41), ("helpmate-ft-002-bbbb", 0.47)]:
        adapter = tmp_path / name
        adapter.mkdir()
        # The registry checks that a trained adapter folder is there; nothing here loads it.
        (adapter / "adapter_config.json").write_text('{"peft_type": "LORA"}')
        record_candidate(name, adapter, "smollm2-135m-instruct", {"loss": 1.0}, "a" * 64, settings=settings)
        set_evaluation(name, {"token_f1": score, "citation_accuracy": 0.9}, settings=settings)

    def statuses() -> dict[str, str]:
        with session_scope(settings) as session:
            return dict(session.execute(select(ModelVersion.name, ModelVersion.status)).all())

    at = _page("admin").run()
    _log_in(at, "adam", "admin-password-1")
    assert not at.exception, at.exception
    versions = [f.value for f in at.dataframe if "eval.token_f1" in f.value.columns][0]
    assert dict(zip(versions["name"], versions["eval.token_f1"])) == {"helpmate-ft-001-aaaa": 0.41,
                                                                      "helpmate-ft-002-bbbb": 0.47}

    def promote(name: str) -> None:
        [s for s in at.selectbox if s.label == "Version to promote"][0].set_value(name)
        [b for b in at.button if b.label == "Promote"][0].click().run()
        assert not at.exception, at.exception

    promote("helpmate-ft-001-aaaa")
    assert statuses() == {"helpmate-ft-001-aaaa": "active", "helpmate-ft-002-bbbb": "candidate"}
    assert "helpmate-ft-001-aaaa is now active." in [s.value for s in at.success]
    promote("helpmate-ft-002-bbbb")
    assert statuses() == {"helpmate-ft-001-aaaa": "retired", "helpmate-ft-002-bbbb": "active"}
    [b for b in at.button if b.label == "Roll back"][0].click().run()
    assert not at.exception, at.exception
    assert statuses() == {"helpmate-ft-001-aaaa": "active", "helpmate-ft-002-bbbb": "rejected"}
    assert any("now answering with helpmate-ft-001-aaaa" in s.value for s in at.success)


def test_talk_to_a_person_works_before_any_question(ui_data: UIData):
    from assistant.config import get_settings
    from assistant.database import session_scope
    from assistant.database.models import Ticket

    at = _page("chat").run()
    at.button(key="talk_to_person").click().run()
    assert not at.exception, at.exception
    state = at.session_state["helpmate_chat"]
    with session_scope(get_settings()) as session:
        ticket = session.get(Ticket, state["ticket_id"])
        assert ticket.conversation_id == state["conversation_id"] and ticket.status == "open"
    # Asking twice does not queue the customer twice.
    at.button(key="talk_to_person").click().run()
    assert at.session_state["helpmate_chat"]["ticket_id"] == ticket.id
    assert "already with our team" in at.session_state["helpmate_chat"]["turns"][-1]["text"]


def test_an_operator_answers_a_handed_over_customer_who_reads_it_in_the_chat(ui_data: UIData):
    from assistant.access import audit_log
    from assistant.config import get_settings
    from assistant.database import session_scope
    from assistant.database.models import Message, Ticket

    chat = _page("chat").run()
    chat.button(key="talk_to_person").click().run()
    state = chat.session_state["helpmate_chat"]
    settings = get_settings()

    dashboard = _page("dashboard").run()
    _log_in(dashboard, ui_data.operator[0], ui_data.operator[1])
    assert not dashboard.exception, dashboard.exception
    dashboard.selectbox(key="dash_reply_ticket").set_value(state["ticket_id"]).run()
    reply = "Hello, this is **Anna**: your new parcel left today."
    dashboard.text_area(key="dash_reply_text").set_value(reply)
    [b for b in dashboard.button if b.label == "Send reply"][0].click().run()
    assert not dashboard.exception, dashboard.exception
    assert any(f"ticket #{state['ticket_id']}" in s.value for s in dashboard.success)
    with session_scope(settings) as session:
        stored = session.scalars(select(Message).where(Message.conversation_id == state["conversation_id"],
                                                       Message.role == "agent")).one()
        assert stored.text == reply
        ticket = session.get(Ticket, state["ticket_id"])
        assert (ticket.status, ticket.assignee) == ("assigned", ui_data.operator[0])
    assert any(e.action == "conversation.reply" and e.target == f"conversation {state['conversation_id']}"
               and e.actor == ui_data.operator[0] for e in audit_log(settings))

    chat.run()  # what the page's fragment does every few seconds
    assert not chat.exception, chat.exception
    assert chat.session_state["helpmate_chat"]["turns"][-1] == {"role": "agent", "text": reply}
    assert "Reply from our team" in [c.value for c in chat.caption]
    assert reply in _texts(chat)  # shown as written: the stars are escaped, not bold
    chat.run()
    assert [t["role"] for t in chat.session_state["helpmate_chat"]["turns"]].count("agent") == 1  # shown once

    # Anna has the conversation now: the customer's messages go to her, with one receipt however many they write.
    for text in ("It is order 12345.", "And the parcel number is 789."):
        chat.chat_input[0].set_value(text).run()
        assert not chat.exception, chat.exception
    turns = chat.session_state["helpmate_chat"]["turns"]
    assert [(t["role"], t.get("kind")) for t in turns[-3:]] == [("customer", None), ("assistant", "with_person"), ("customer", None)]
    with session_scope(settings) as session:
        kinds = session.scalars(select(Message.answer_kind).where(Message.conversation_id == state["conversation_id"],
                                                                  Message.role == "assistant")).all()
    assert kinds.count("with_person") == 1
