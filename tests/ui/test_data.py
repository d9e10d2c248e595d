"""The dashboard's and admin page's data functions on real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from assistant.access import Caller
from tests.helpers import make_helpcenter

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
ADMIN = Caller.staff("admin", "adam")  # sees every knowledge base; tests/security covers limited operators


def _conversation(session, settings, kb, turns, channel="chat", start=T0):
    """Store a conversation of (role, text, extra) turns one minute apart; returns the assistant messages."""
    from assistant.conversations.store import add_message, start_conversation

    conversation = start_conversation(session, channel, kb=kb, started_at=start)
    stored = []
    for minute, (role, text, extra) in enumerate(turns):
        stored.append(add_message(session, conversation, role, text, created_at=start + timedelta(minutes=minute),
                                  settings=settings, spike_rule=None, **extra))
    return conversation, [m for m in stored if m.role == "assistant"]


def test_feedback_rate_and_thumbs_up_share_by_model_version(db_settings):
    from assistant.database import session_scope
    from assistant.conversations.feedback import add_feedback
    from ui.dashboard_data import Period, feedback_by_model

    with session_scope(db_settings) as session:
        answers = []
        for i, version in enumerate(["base", "base", "base", "adapter-v2"]):
            _, stored = _conversation(session, db_settings, "help", [
                ("customer", f"Where is my order number {i}?", {}),
                ("assistant", f"It ships in {i + 1} days.", {"model_version": version, "answer_kind": "generated"}),
            ], start=T0 + timedelta(hours=i))
            answers.append(stored[0].id)
    for message_id, rating in zip(answers, ["up", "down", "up", "down"]):
        add_feedback(rating, message_id=message_id, settings=db_settings, created_at=T0 + timedelta(hours=5))
    with session_scope(db_settings) as session:
        table = feedback_by_model(session, ADMIN, Period(date(2026, 11, 20), date(2026, 11, 20)))
        rows = {row["model_version"]: row for row in table.to_dict("records")}
        assert rows["base"]["answers"] == 3 and rows["base"]["feedback"] == 3
        assert rows["base"]["feedback_rate"] == 1.0 and rows["base"]["thumbs_up_share"] == pytest.approx(2 / 3, abs=1e-4)
        assert rows["adapter-v2"]["thumbs_up_share"] == 0.0
        # Outside the period there is nothing.
        assert feedback_by_model(session, ADMIN, Period(date(2026, 11, 1), date(2026, 11, 2))).empty


def test_unanswered_questions_are_the_refusals_with_their_question(db_settings):
    from assistant.database import session_scope
    from ui.dashboard_data import Period, unanswered

    with session_scope(db_settings) as session:
        _conversation(session, db_settings, "help", [
            ("customer", "Do you sell kayaks?", {}),
            ("assistant", "I couldn't find this in our help center.", {
                "answer_kind": "refusal", "trace": {"answer": {"kind": "refusal", "reason": "best passage similarity 0.21"}}}),
            ("customer", "How long is the return window?", {}),
            ("assistant", "30 days [1].", {"answer_kind": "generated"}),
        ])
        table = unanswered(session, ADMIN, Period(date(2026, 11, 20), date(2026, 11, 20)))
        assert list(table["question"]) == ["Do you sell kayaks?"]
        assert table["reason"][0] == "best passage similarity 0.21"
        assert unanswered(session, ADMIN, Period(date(2026, 11, 20), date(2026, 11, 20)), kb="other").empty


def test_sentiment_over_time_counts_every_class_per_day(db_settings):
    from assistant.database import session_scope
    from ui.dashboard_data import Period, overview, sentiment_over_time

    with session_scope(db_settings) as session:
        _conversation(session, db_settings, "help", [
            ("customer", "This is terrible, my tent arrived broken and nobody answers!", {}),
            ("customer", "Thank you so much, the replacement is wonderful!", {}),
        ])
        _conversation(session, db_settings, "help", [("customer", "What are your opening hours?", {})],
                      start=T0 + timedelta(days=1))
        period = Period(date(2026, 11, 20), date(2026, 11, 21))
        frame = sentiment_over_time(session, ADMIN, period, "day")
        by_day = frame.groupby("period")["messages"].sum().to_dict()
        assert by_day == {"2026-11-20": 2, "2026-11-21": 1}
        day_one = frame[frame["period"] == "2026-11-20"].set_index("sentiment")["messages"].to_dict()
        assert day_one["negative"] == 1 and day_one["positive"] == 1
        head = overview(session, ADMIN, period)
        assert head["messages"] == 3 and head["share_negative"] == pytest.approx(1 / 3, abs=1e-3)


def test_ticket_queue_puts_urgent_first_and_hides_closed(db_settings):
    from assistant.database import session_scope
    from assistant.conversations.tickets import create_ticket, reply_as_agent, set_ticket_status
    from ui.dashboard_data import tickets

    with session_scope(db_settings) as session:
        ids = []
        for priority in ["normal", "urgent", "low"]:
            conversation, _ = _conversation(session, db_settings, "help", [("customer", "I need help", {})])
            ids.append(create_ticket(session, conversation.id, "asked for a person", priority)[0].id)
        set_ticket_status(session, ids[2], "closed")
        queue = tickets(session, ADMIN)
        assert list(queue["priority"]) == ["urgent", "normal"]
        assert len(tickets(session, ADMIN, ("open", "assigned", "closed"))) == 3
        # who wrote last: the customer waits for an answer until a person replies
        assert list(queue["last_from"]) == ["customer", "customer"]
        reply_as_agent(session, ADMIN, int(queue["conversation_id"][0]), "I am on it.", db_settings)
        assert list(tickets(session, ADMIN)["last_from"]) == ["agent", "customer"]


def test_uploads_are_ingested_one_by_one_and_failures_listed(settings, tmp_path):
    from assistant.access import Caller
    from ui.admin_ops import documents, ingest_files, knowledge_bases, save_uploads

    source = make_helpcenter(tmp_path / "src")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not really a pdf")
    uploads = [(p.name, p.read_bytes()) for p in (source / "returns.md", source / "warranty.pdf", broken)]
    paths = save_uploads(settings, "uploads", uploads)
    assert [p.parent for p in paths] == [settings.data_dir / "uploads" / "uploads"] * 3
    seen = []
    results = ingest_files(settings, "uploads", paths, on_file=lambda i, r: seen.append((i, r.name, r.status)))
    assert seen == [(0, "returns.md", "added"), (1, "warranty.pdf", "added"), (2, "broken.pdf", "failed")]
    assert results[2].error and results[0].chunks > 0
    admin = Caller.staff("admin", "ada")
    docs = documents(settings, admin, "uploads")
    assert set(docs["status"]) == {"indexed", "failed"}
    failed = documents(settings, admin, "uploads", failed_only=True)
    assert list(failed["source"].map(lambda s: s.rsplit("/", 1)[-1])) == ["broken.pdf"] and failed["error"][0]
    assert knowledge_bases(settings).set_index("name").loc["uploads", "documents"] == 3
    # Unchanged files are recognised on a second upload.
    again = ingest_files(settings, "uploads", save_uploads(settings, "uploads", uploads[:1]))
    assert again[0].status == "unchanged"


def test_upload_names_cannot_escape_the_upload_folder(settings):
    from ui.admin_ops import check_kb_name, save_uploads

    saved = save_uploads(settings, "help", [("../../etc/evil.md", b"# hi\n\ntext")])
    assert saved[0] == settings.data_dir / "uploads" / "help" / "evil.md"
    with pytest.raises(ValueError, match="knowledge base name"):
        check_kb_name("../x")


def test_finetune_run_started_from_the_admin_page_runs_in_the_background(settings):
    """With too little new feedback the periodic job is a no-op; it still runs as its own process
    on the page's data directory and reports in JSON."""
    import json
    import time

    from ui.admin_ops import start_finetune_run

    run = start_finetune_run(settings, ["--min-new-feedback", "5"])
    deadline = time.monotonic() + 180
    while not run.finished():
        assert time.monotonic() < deadline, run.log_tail()
        time.sleep(0.5)
    assert run.process.returncode == 0, run.log_tail()
    assert run.log_path.parent == settings.data_dir / "logs"
    result = json.loads([line for line in run.log_tail(200).splitlines() if line.startswith("{")][-1])
    assert result["promoted"] is False and result["reason"]


def test_the_review_queue_holds_pending_customer_feedback_of_the_callers_knowledge_bases(db_settings):
    from assistant.access import AccessDenied, Caller
    from assistant.conversations.feedback import add_feedback, review_feedback
    from assistant.database import session_scope
    from ui.dashboard_data import pending_feedback

    with session_scope(db_settings) as session:
        help_conversation, (help_answer,) = _conversation(session, db_settings, "help", [
            ("customer", "How long is the return window?", {}), ("assistant", "14 days [1].", {})])
        _, (notes_answer,) = _conversation(session, db_settings, "notes", [
            ("customer", "Internal question?", {}), ("assistant", "Internal answer.", {})])
        help_conversation, help_answer, notes_answer = help_conversation.id, help_answer.id, notes_answer.id
    suggestion = add_feedback("down", message_id=help_answer, corrected_answer="30 days from delivery.", comment="Wrong",
                              caller=Caller.customer(db_settings, help_conversation), settings=db_settings)
    thumb = add_feedback("down", message_id=notes_answer, settings=db_settings)
    decided = add_feedback("up", message_id=help_answer, settings=db_settings)
    review_feedback(db_settings, decided.id, approve=False, by=Caller.staff("admin", "adam"))
    add_feedback("down", question="Q?", answer="A.", kb="help", corrected_answer="B.", given_by="agent", settings=db_settings)
    with session_scope(db_settings) as session:
        everything = pending_feedback(session, Caller.staff("admin", "adam"))
        assert list(everything["id"]) == [suggestion.id, thumb.id], "pending only: not rejected, not staff feedback"
        row = everything.iloc[0].to_dict()
        assert (row["kb"], row["conversation"], row["rating"], row["question"], row["answer"], row["suggested_answer"],
                row["comment"]) == ("help", str(help_conversation), "down", "How long is the return window?", "14 days [1].",
                                    "30 days from delivery.", "Wrong")
        limited = Caller.staff("operator", "olivia", ["help"])
        assert list(pending_feedback(session, limited)["id"]) == [suggestion.id]
        assert list(pending_feedback(session, Caller.staff("admin", "adam"), kb="notes")["id"]) == [thumb.id]
        with pytest.raises(AccessDenied):
            pending_feedback(session, limited, kb="notes")
        with pytest.raises(AccessDenied, match="for our team only"):
            pending_feedback(session, Caller.customer(db_settings, help_conversation))
