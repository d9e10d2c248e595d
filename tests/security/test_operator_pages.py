"""The operator pages treat knowledge bases as a boundary and customer text as data.

An operator limited to some knowledge bases never gets another one's conversations, alerts,
tickets, feedback or unanswered questions from any dashboard function, whatever ``kb`` is asked
for; customer text with Markdown, HTML, image or link syntax is shown as written; CSV exports
cannot run as spreadsheet formulas. Real databases (SQLite and PostgreSQL), the real sentiment
model, the real pages through Streamlit's AppTest.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from assistant.access import AccessDenied, Caller
from assistant.database import session_scope
from assistant.database.models import Alert, Ticket
from tests.conftest import REPO

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
PERIOD_DAYS = (date(2026, 11, 20), date(2026, 11, 20))
KBS = ("help", "faq", "internal")
ADMIN = Caller.staff("admin", "adam")
HELP_ONLY = Caller.staff("operator", "olivia", knowledge_bases=["help"])
HELP_AND_FAQ = Caller.staff("operator", "uma", knowledge_bases=["help", "faq"])
MARKUP = ("This is terrible and I am furious: **bold** <b>html</b> <img src=x onerror=alert(1)> "
          "![pixel](https://tracker.example/p.png) [reset your password](https://phish.example/login)")
FORMULA = "=HYPERLINK(\"https://phish.example\",\"click\")"


def _seed(settings, kb: str, minute: int, angry: str | None = None) -> int:
    """One conversation in ``kb``: an angry customer, a refusal, a thumbs down, a ticket and an alert."""
    from assistant.conversations.feedback import add_feedback
    from assistant.conversations.store import add_message, start_conversation
    from assistant.conversations.tickets import create_ticket

    start = T0 + timedelta(minutes=minute)
    with session_scope(settings) as session:
        conversation = start_conversation(session, "chat", kb=kb, started_at=start)
        add_message(session, conversation, "customer", angry or f"[{kb}] This is terrible, my order never arrived!",
                    created_at=start, settings=settings, spike_rule=None)
        answer = add_message(session, conversation, "assistant", f"[{kb}] I could not find that.", answer_kind="refusal",
                             model_version=f"model-{kb}", created_at=start + timedelta(seconds=30), settings=settings,
                             spike_rule=None)
        create_ticket(session, conversation.id, f"[{kb}] angry customer", "high")
        session.add(Alert(kind="negative_spike", kb=kb, channel="chat", window_start=start, window_end=start + timedelta(hours=1),
                          messages=5, negative=4, negative_share=0.8, baseline_share=0.1, threshold=0.5))
        conversation_id, answer_id = conversation.id, answer.id
    add_feedback("down", message_id=answer_id, given_by="agent", settings=settings, created_at=start + timedelta(minutes=1))
    return conversation_id


@pytest.fixture
def three_kbs(db_settings):
    """help, faq and internal, one conversation each (ids by name)."""
    return db_settings, {kb: _seed(db_settings, kb, minute) for minute, kb in enumerate(KBS)}


def test_an_operator_limited_to_one_knowledge_base_sees_nothing_of_another(three_kbs):
    from ui import dashboard_data as data

    settings, ids = three_kbs
    period = data.Period(*PERIOD_DAYS)
    with session_scope(settings) as session:
        # Everything the operator gets is help's, and equals what an admin gets for help alone.
        for name, call in [
            ("sentiment_over_time", lambda c, kb=None: data.sentiment_over_time(session, c, period, "day", kb)),
            ("sentiment_by kb", lambda c, kb=None: data.sentiment_by(session, c, period, "kb", kb)),
            ("sentiment_by channel", lambda c, kb=None: data.sentiment_by(session, c, period, "channel", kb)),
            ("alerts", lambda c, kb=None: data.alerts(session, c, period, kb).drop(columns=["id"])),
            ("most_negative", lambda c, kb=None: data.most_negative(session, c, period, kb)),
            ("feedback_by_model", lambda c, kb=None: data.feedback_by_model(session, c, period, kb)),
            ("unanswered", lambda c, kb=None: data.unanswered(session, c, period, kb)),
            ("tickets", lambda c, kb=None: data.tickets(session, c, kb=kb).drop(columns=["id", "created_at", "updated_at"])),
        ]:
            mine = call(HELP_ONLY)
            assert not mine.empty, name
            pd.testing.assert_frame_equal(mine.reset_index(drop=True), call(ADMIN, "help").reset_index(drop=True),
                                          obj=name)
            shown = mine.astype(str).to_csv()
            assert "faq" not in shown and "internal" not in shown, (name, shown)
            assert not call(ADMIN).reset_index(drop=True).equals(mine.reset_index(drop=True)), name  # the filter did filter
            with pytest.raises(AccessDenied, match=r"knowledge base you may see \(help\)"):
                call(HELP_ONLY, "internal")
        assert data.overview(session, HELP_ONLY, period) == data.overview(session, ADMIN, period, "help")
        assert data.overview(session, ADMIN, period)["open_tickets"] == 3
        assert data.knowledge_base_choices(session, HELP_ONLY) == ["help"]
        assert data.knowledge_base_choices(session, ADMIN) == ["faq", "help", "internal"]

        # A conversation or ticket of another knowledge base cannot be opened or moved by id either.
        assert data.transcript_rows(session, HELP_ONLY, ids["help"])[0]["text"].startswith("[help]")
        with pytest.raises(AccessDenied):
            data.transcript_rows(session, HELP_ONLY, ids["internal"])
        with pytest.raises(AccessDenied):
            data.transcript(session, HELP_ONLY, ids["faq"])
        internal_ticket = session.scalar(select(Ticket.id).where(Ticket.conversation_id == ids["internal"]))
        with pytest.raises(AccessDenied):
            data.update_ticket(session, HELP_ONLY, internal_ticket, "closed", "olivia")
        assert session.get(Ticket, internal_ticket).status == "open"
        with pytest.raises(AccessDenied, match="for our team only"):
            data.tickets(session, Caller.customer(settings, ids["help"]))


def test_an_operator_of_two_knowledge_bases_gets_both_merged_and_never_the_third(three_kbs):
    from ui import dashboard_data as data

    settings, _ = three_kbs
    period = data.Period(*PERIOD_DAYS)
    with session_scope(settings) as session:
        both = data.sentiment_over_time(session, HELP_AND_FAQ, period, "day")
        help_, faq = (data.sentiment_over_time(session, ADMIN, period, "day", kb) for kb in ("help", "faq"))
        assert both["messages"].sum() == help_["messages"].sum() + faq["messages"].sum() == 2
        assert data.overview(session, HELP_AND_FAQ, period)["messages"] == 2
        assert data.overview(session, ADMIN, period)["messages"] == 3
        by_kb = data.sentiment_by(session, HELP_AND_FAQ, period, "kb")
        assert sorted(by_kb["kb"]) == ["faq", "help"]
        assert set(data.most_negative(session, HELP_AND_FAQ, period)["kb"]) == {"faq", "help"}
        assert set(data.tickets(session, HELP_AND_FAQ)["kb"]) == {"faq", "help"}
        assert set(data.feedback_by_model(session, HELP_AND_FAQ, period)["model_version"]) == {"model-help", "model-faq"}
        # Limited to none: nothing at all.
        nobody = Caller.staff("operator", "new", knowledge_bases=[])
        assert data.tickets(session, nobody).empty and data.overview(session, nobody, period)["messages"] == 0


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(settings):
    from ui.dashboard_data import csv_bytes, unanswered, Period

    frame = pd.DataFrame({"text": [FORMULA, "+1-1", "-2+3", "@SUM(A1)", "\tx", "\rx", "plain", "a=b"],
                          "score": [-0.5, 1, 2, 3, 4, 5, 6, 7]})
    rows = list(csv.DictReader(io.StringIO(csv_bytes(frame).decode("utf-8"), newline="")))
    assert [r["text"] for r in rows] == ["'" + FORMULA, "'+1-1", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "plain", "a=b"]
    assert rows[0]["score"] == "-0.5"  # numbers stay numbers

    _seed(settings, "help", 0, angry=FORMULA)
    with session_scope(settings) as session:
        questions = unanswered(session, ADMIN, Period(*PERIOD_DAYS))
    exported = list(csv.DictReader(io.StringIO(csv_bytes(questions).decode("utf-8"), newline="")))
    assert exported[0]["question"] == "'" + FORMULA


# --- the dashboard page ----------------------------------------------------------------------------------


def _dashboard(name: str, password: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "ui" / "views" / "dashboard.py"), default_timeout=120).run()
    at.text_input(key="login_name").set_value(name)
    at.text_input(key="login_password").set_value(password)
    [b for b in at.button if b.label == "Log in"][0].click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Operator dashboard"
    return at


def test_customer_text_with_markup_is_shown_as_written_on_the_dashboard(settings):
    from ui.auth import add_user

    with session_scope(settings) as session:
        from assistant.database.models import KnowledgeBase

        session.add_all([KnowledgeBase(name="help"), KnowledgeBase(name="internal")])
    _seed(settings, "help", 0, angry=MARKUP)
    _seed(settings, "internal", 1, angry="[internal] This is awful and secret, the worst of all!")
    add_user("olivia", "operator-password", "operator", settings, knowledge_bases=["help"])
    at = _dashboard("olivia", "operator-password")

    # The transcript shows the message as plain text, character for character.
    assert MARKUP in [t.value for t in at.text]
    rendered = "\n".join(str(m.value) for m in list(at.markdown) + list(at.caption))
    assert "](https://" not in rendered and "<img" not in rendered and "<b>" not in rendered
    # Tables carry it as data too: the unanswered question and the most negative conversation.
    frames = [f.value for f in at.dataframe]
    questions = [f for f in frames if "question" in f.columns][0]
    assert list(questions["question"]) == [MARKUP]
    worst = [f for f in frames if "worst_message" in f.columns][0]
    assert list(worst["worst_message"]) == [MARKUP]
    # And nothing of the other knowledge base reaches this operator's page.
    everything = "\n".join(f.astype(str).to_csv() for f in frames) + "\n".join(t.value for t in at.text)
    assert "internal" not in everything and "secret" not in everything
    assert at.selectbox(key="dash_kb").options == ["All", "help"]
