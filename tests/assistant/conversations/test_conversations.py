"""Storing conversations: the chat path, importing history (good and malformed files), backfill."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from assistant.conversations.store import add_message, backfill_sentiment, import_conversations, start_conversation
from assistant.database import session_scope
from assistant.database.models import Alert, Conversation, Message
from assistant.sentiment.model import get_sentiment_model
from tests.conftest import REPO

DEMO = REPO / "demo" / "conversations.csv"

MALFORMED = (
    "conversation_id,timestamp,role,text,channel\n"                                                          # line 1
    "T-1,2026-11-20T09:00:00+01:00,customer,My order arrived with a broken tent pole and nobody answers my emails.,email\n"  # 2
    'T-1,2026-11-20T10:30:00+01:00,agent,"We are sorry, a replacement pole is on its way.\n'                    # 3
    'It should arrive on Monday.",email\n'                                                                      # 4
    "T-2,yesterday,customer,Where is my parcel?,chat\n"                                                        # 5: bad time
    "T-2,2026-11-20T11:00:00Z,robot,Hello,chat\n"                                                              # 6: bad role
    "T-2,2026-11-20T11:01:00Z,customer,,chat\n"                                                                # 7: no text
    "T-2,2026-11-20T11:02:00Z,customer,Thanks, that was quick,chat\n"                                          # 8: unquoted comma
    "T-2,2026-11-20T11:03:00Z,customer,Thank you so much for the quick help, you are great!,chat\n"            # 9: unquoted comma
    'T-2,2026-11-20T11:04:00Z,customer,"Thank you so much for the quick help, you are great!",chat\n'          # 10
    "T-1,2026-11-20T12:00:00Z,customer,Any news?,chat\n"                                                       # 11: wrong channel
)


def test_chat_path_scores_customer_messages_and_keeps_what_the_assistant_used(db_settings):
    with session_scope(db_settings) as session:
        conversation = start_conversation(session, "chat", kb="help", customer_id="cust-7")
        angry = add_message(session, conversation, "customer",
                            "This is the third time I am asking. My refund still has not arrived and I am furious.",
                            created_at=datetime(2026, 11, 20, 23, 30, tzinfo=timezone(timedelta(hours=-5))), settings=db_settings)
        answer = add_message(session, conversation, "assistant", "Refunds are paid within 5 business days.",
                             model_version="smollm2-135m-instruct", retrieved_chunk_ids=[3, 9], latency_ms=812.5,
                             answer_kind="extractive", trace={"tools": []}, settings=db_settings)
        happy = add_message(session, conversation, "user", "Great, thank you so much for the quick help!", settings=db_settings)
        ids = (conversation.id, angry.id, answer.id, happy.id)
    model = get_sentiment_model(db_settings)
    with session_scope(db_settings) as session:
        conversation = session.get(Conversation, ids[0])
        angry, answer, happy = (session.get(Message, i) for i in ids[1:])
        assert [m.role for m in conversation.messages] == ["customer", "assistant", "customer"]
        assert (angry.sentiment_label, angry.sentiment_model) == ("negative", model.version)
        assert -1.0 <= angry.sentiment_score < -0.3
        assert angry.created_at == datetime(2026, 11, 21, 4, 30, tzinfo=timezone.utc)  # stored in UTC, read back aware
        assert (happy.role, happy.sentiment_label) == ("customer", "positive")
        assert answer.sentiment_label is None and answer.sentiment_score is None
        assert (answer.retrieved_chunk_ids, answer.latency_ms, answer.answer_kind, answer.trace) == ([3, 9], 812.5, "extractive", {"tools": []})
        with pytest.raises(ValueError, match="role 'robot'"):
            add_message(session, conversation, "robot", "beep", settings=db_settings)
        with pytest.raises(ValueError, match="empty"):
            add_message(session, conversation, "customer", "   ", settings=db_settings)


def test_chat_path_alerts_when_a_channel_turns_negative(settings):
    complaints = ["My parcel is two weeks late and nobody replies. So frustrating!", "The zipper broke on the first night, terrible quality.",
                  "Still no refund after a month, this is unacceptable.", "Your hotline hung up on me twice. Awful service.",
                  "The jacket arrived torn and dirty. Very disappointed."]
    start = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
    with session_scope(settings) as session:
        conversation = start_conversation(session, "email", kb="shop", started_at=start)
        for i, text in enumerate(complaints):
            add_message(session, conversation, "customer", text, created_at=start + timedelta(minutes=i), settings=settings)
    with session_scope(settings) as session:
        alerts = session.scalars(select(Alert)).all()
        assert [(a.kb, a.channel, a.messages, a.negative) for a in alerts] == [("shop", "email", 5, 5)]


def test_import_keeps_good_rows_and_reports_bad_ones_by_line(db_settings, tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text(MALFORMED)
    report = import_conversations(path, settings=db_settings)
    assert [(bad.line, bad.error.split(" ")[0]) for bad in report.bad_rows] == [
        (5, "timestamp"), (6, "role"), (7, "text"), (8, "has"), (9, "has"), (11, "conversation")]
    assert "'T-1' is on channel 'email', not 'chat'" in report.bad_rows[-1].error
    assert (report.rows, report.messages_added, report.conversations_added, report.customer_messages) == (9, 3, 2, 2)  # records, not lines
    with session_scope(db_settings) as session:
        messages = session.scalars(select(Message).order_by(Message.created_at)).all()
        assert [m.role for m in messages] == ["customer", "agent", "customer"]
        assert messages[1].text == "We are sorry, a replacement pole is on its way.\nIt should arrive on Monday."
        assert messages[0].created_at == datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
        assert [m.sentiment_label for m in messages] == ["negative", None, "positive"]
        assert messages[0].topic  # negative messages always get a topic (a cluster here: no knowledge base)
        assert session.scalar(select(Conversation.started_at).where(Conversation.external_id == "T-1")) == messages[0].created_at

    again = import_conversations(path, settings=db_settings)
    assert (again.messages_added, again.duplicates, again.conversations_added) == (0, 3, 0)


def test_import_reads_jsonl_and_refuses_unreadable_files(settings, tmp_path):
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join([
        json.dumps({"conversation_id": "J-1", "timestamp": "2026-11-20T09:00:00Z", "role": "customer",
                    "text": "I love the new tent, thanks!", "channel": "Chat", "customer_id": "c-1"}),
        '{"conversation_id": "J-1", "timestamp": ',
        "[1, 2, 3]",
        "",
        json.dumps({"conversation_id": "J-1", "timestamp": "2026-11-20T09:01:00Z", "role": "bot", "text": "Glad to hear it!", "channel": "chat"}),
    ]) + "\n")
    report = import_conversations(path, settings=settings)
    assert [bad.line for bad in report.bad_rows] == [2, 3]
    assert report.messages_added == 2
    with session_scope(settings) as session:
        conversation = session.scalar(select(Conversation))
        assert (conversation.channel, conversation.customer_id) == ("chat", "c-1")
        assert [m.role for m in conversation.messages] == ["customer", "assistant"]

    missing = tmp_path / "missing.csv"
    missing.write_text("id,time,text\n1,2026-11-20,hello\n")
    with pytest.raises(ValueError, match="lacks conversation_id, timestamp, role, channel"):
        import_conversations(missing, settings=settings)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("conversation_id,timestamp,role,text,channel\nL-1,2026-11-20,customer,Très déçu,email\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        import_conversations(latin1, settings=settings)
    spreadsheet = tmp_path / "tickets.xlsx"
    spreadsheet.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="reads .csv"):
        import_conversations(spreadsheet, settings=settings)


def test_cli_import_exits_2_and_lists_bad_lines(settings, tmp_path):
    from ui.cli import app

    path = tmp_path / "tickets.csv"
    path.write_text(MALFORMED)
    result = CliRunner().invoke(app, ["import-conversations", str(path), "--no-progress", "--json"])
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert report["messages_added"] == 3 and [bad["line"] for bad in report["bad_rows"]] == [5, 6, 7, 8, 9, 11]
    help_text = CliRunner().invoke(app, ["import-conversations", "--help"]).output
    for column in ("conversation_id", "timestamp", "role", "text", "channel"):
        assert column in help_text


@pytest.mark.needs(DEMO.exists(), reason="demo/conversations.csv is not there")
def test_demo_conversations_import_cleanly_with_topics_from_the_help_center(settings, embedder):
    from ingest.pipeline import Ingestor

    Ingestor("demo", settings, embedder, show_progress=False).run([REPO / "demo" / "helpcenter"])
    report = import_conversations(DEMO, kb="demo", settings=settings)
    assert report.bad_rows == []
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Message.id))) == report.messages_added == report.rows
        assert session.scalar(select(func.count(Message.id)).where(Message.role == "customer",
                                                                     Message.sentiment_label.is_(None))) == 0
        assert session.scalar(select(func.count(Message.id)).where(Message.sentiment_label == "negative",
                                                                     Message.topic.is_(None))) == 0
        alerts = session.scalars(select(Alert)).all()
    # The demo's complaints cluster around late deliveries, refunds and broken zippers ...
    top = list(report.topics)[:4]
    assert any("Deliver" in t or "Track" in t or "Shipping" in t for t in top), report.topics
    # A topic is never a customer's name from an e-mail's signature ("Why does it take so long? ...
    # \n\nFelix" was "does, felix, long"), nor a filler word.
    words = {word.strip().lower() for topic in report.topics for word in topic.split(",")}
    assert not words & {"felix", "schmid", "does", "dear", "cheers"}, report.topics
    # ... and its negative e-mails spike on Friday 2026-11-20.
    assert any(a.channel == "email" and a.window_end.date() in (datetime(2026, 11, 20).date(), datetime(2026, 11, 21).date())
               for a in alerts), [(a.channel, a.window_end) for a in alerts]


def test_backfill_scores_what_is_missing_or_outdated(settings, tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text(MALFORMED)
    import_conversations(path, settings=settings)
    with session_scope(settings) as session:
        session.execute(update(Message).where(Message.role == "customer").values(sentiment_label=None, sentiment_score=None,
                                                                                  sentiment_model=None, topic=None))
    counts = backfill_sentiment(settings)
    assert (counts["rescored"], counts["negative"], counts["topics"]) == (2, 1, 1)
    assert backfill_sentiment(settings)["rescored"] == 0  # nothing left to do
    with session_scope(settings) as session:
        labels = session.scalars(select(Message.sentiment_label).where(Message.role == "customer").order_by(Message.created_at)).all()
    assert labels == ["negative", "positive"]


ANGRY_WITH_DETAILS = ("Still no refund to DE89 3704 0044 0532 0130 00 after three weeks, this is ridiculous! "
                      "Write to jane dot doe at example dot com or call +49 176 12345678.")
ANGRY_REDACTED = "Still no refund to [IBAN] after three weeks, this is ridiculous! Write to [EMAIL] or call [PHONE]."


def test_redact_on_store_keeps_personal_data_out_of_stored_chat_messages(db_settings):
    redacting = db_settings.model_copy(update={"redact_on_store": True})
    model = get_sentiment_model(redacting)
    with session_scope(redacting) as session:
        conversation = start_conversation(session, "chat", kb="help", customer_id="cust-9")
        angry = add_message(session, conversation, "customer", ANGRY_WITH_DETAILS, settings=redacting)
        # An agent's reply quotes the customer in its trace (tool arguments, the rewritten question).
        reply = add_message(session, conversation, "assistant", "Refunds are paid within 5 business days.", settings=redacting,
                            trace={"tools": [{"tool": "search_knowledge_base", "arguments": {"query": ANGRY_WITH_DETAILS}}]})
        ids = angry.id, reply.id
    with session_scope(redacting) as session:
        angry, reply = (session.get(Message, i) for i in ids)
        assert angry.text == ANGRY_REDACTED
        assert reply.trace["tools"][0]["arguments"]["query"] == ANGRY_REDACTED
        assert reply.text == "Refunds are paid within 5 business days."
        original = model.score(ANGRY_WITH_DETAILS)  # scored on what the customer wrote, not on the placeholders
        assert (angry.sentiment_label, angry.sentiment_score) == (original.label, pytest.approx(original.score))
        assert angry.sentiment_score != pytest.approx(model.score(ANGRY_REDACTED).score)
    with session_scope(db_settings) as session:  # the setting is off by default: stored as written
        conversation = start_conversation(session, "chat", kb="help")
        assert add_message(session, conversation, "customer", ANGRY_WITH_DETAILS, settings=db_settings).text == ANGRY_WITH_DETAILS


def test_redact_on_store_redacts_imported_customer_messages_and_reimports_nothing_twice(settings, tmp_path):
    redacting = settings.model_copy(update={"redact_on_store": True})
    path = tmp_path / "tickets.csv"
    path.write_text(
        "conversation_id,timestamp,role,text,channel,customer_id\n"
        f'R-1,2026-11-20T09:00:00Z,customer,"{ANGRY_WITH_DETAILS}",email,cust-9\n'
        "R-1,2026-11-20T09:30:00Z,agent,We refunded the card ending 1111 today; our line is +49 89 1234 5678.,email,cust-9\n"
        "R-1,2026-11-20T10:00:00Z,customer,My SSN is 123-45-6789 and I was born on 12 March 1985.,email,cust-9\n"
    )
    report = import_conversations(path, settings=redacting)
    assert (report.messages_added, report.customer_messages, report.negative) == (3, 2, 1)
    with session_scope(redacting) as session:
        messages = session.scalars(select(Message).order_by(Message.created_at)).all()
        assert [m.text for m in messages] == [
            ANGRY_REDACTED,
            "We refunded the card ending 1111 today; our line is +49 89 1234 5678.",  # the team's own words are kept
            "My SSN is [NATIONAL_ID] and I was born on [DOB].",
        ]
        # Scored from the original texts, in one batch as the import scores them (a batch runs the embedding
        # backend, one message alone the chat's: their scores differ in the third decimal).
        originals = [ANGRY_WITH_DETAILS, "My SSN is 123-45-6789 and I was born on 12 March 1985."]
        assert messages[0].sentiment_score == pytest.approx(get_sentiment_model(redacting).score_batch(originals)[0].score)
        assert messages[0].topic  # negative: a topic from the stored (redacted) text
    again = import_conversations(path, settings=redacting)  # compared as stored, so nothing is added twice
    assert (again.messages_added, again.duplicates) == (0, 3)
