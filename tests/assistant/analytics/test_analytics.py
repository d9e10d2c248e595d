"""Sentiment aggregates, topics and spike alerts on each real database.

Messages here are written with known labels and scores (not scored by the model), so every
expected number is worked out by hand; the model's own scoring is tested in test_sentiment.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from assistant.analytics.aggregates import customer_message_span, sentiment_summary, worst_conversations
from assistant.analytics.spikes import detect_negative_spikes, scan_negative_spikes, SpikeRule
from assistant.analytics.topics import cluster_topics, kb_topics
from assistant.database import session_scope
from assistant.database.models import Alert
from tests.assistant.analytics.conftest import T0, conversation_row, message_row

def test_summary_by_day_counts_in_utc(history):
    with session_scope(history) as session:
        rows = sentiment_summary(session, T0 - timedelta(days=1), T0 + timedelta(days=2), group_by="day")
    assert [row["group"] for row in rows] == ["2026-11-16", "2026-11-17"]
    monday, tuesday = rows
    assert (monday["messages"], monday["negative"], monday["neutral"], monday["positive"]) == (5, 1, 2, 2)
    assert monday["share_negative"] == 0.2
    assert monday["mean_score"] == pytest.approx((0.8 + 0.1 - 0.1 + 0.6 - 0.9) / 5, abs=1e-4)
    assert (tuesday["messages"], tuesday["negative"]) == (3, 2)


def test_summary_by_hour_channel_topic_and_filters(history):
    with session_scope(history) as session:
        hours = sentiment_summary(session, T0, T0 + timedelta(hours=3), group_by="hour")
        channels = sentiment_summary(session, None, None, group_by="channel")
        topics = sentiment_summary(session, None, None, group_by="topic")
        email_only = sentiment_summary(session, None, None, group_by=None, channel="email")
        window = sentiment_summary(session, T0, T0 + timedelta(hours=1), group_by=None)
        weeks = sentiment_summary(session, None, None, group_by="week")
    assert [(row["group"], row["messages"]) for row in hours] == [("2026-11-16T09:00", 2), ("2026-11-16T10:00", 1), ("2026-11-16T11:00", 1)]
    assert [(row["group"], row["messages"], row["negative"]) for row in channels] == [("email", 5, 3), ("chat", 3, 0)]
    assert [(row["group"], row["messages"]) for row in topics] == [("Delivery problems", 2), ("Refunds", 1)]
    assert email_only == [{"group": "all", "messages": 5, "negative": 3, "neutral": 1, "positive": 1,
                           "share_negative": 0.6, "mean_score": pytest.approx(-0.32, abs=1e-4)}]
    assert window[0]["messages"] == 2  # the end is exclusive: the 10:00 e-mail is left out
    assert weeks == [{"group": "2026-11-16", "messages": 8, "negative": 3, "neutral": 3, "positive": 2,
                      "share_negative": 0.375, "mean_score": pytest.approx(-0.0875, abs=1e-4)}]


def test_summary_of_an_empty_period_is_empty(history):
    with session_scope(history) as session:
        assert sentiment_summary(session, T0 + timedelta(days=30), None, group_by=None) == []
        assert sentiment_summary(session, None, None, group_by="day", channel="phone") == []
        with pytest.raises(ValueError, match="cannot group"):
            sentiment_summary(session, group_by="month")


def test_worst_conversations_come_first_with_their_worst_message(history):
    with session_scope(history) as session:
        rows = worst_conversations(session, limit=2)
        first, last = customer_message_span(session)
    assert [row["external_id"] for row in rows] == ["c-mail", "c-chat"]
    worst = rows[0]
    assert (worst["messages"], worst["negative"], worst["min_score"]) == (4, 3, -0.9)
    assert worst["mean_score"] == pytest.approx((-0.1 - 0.9 - 0.7 - 0.5) / 4, abs=1e-4)
    assert worst["worst_topic"] == "Delivery problems"
    assert first == T0 and last == T0 + timedelta(days=1, hours=2)


def _burst(settings, channel, start, labels, kb="shop", external_id=None):
    with session_scope(settings) as session:
        conversation = conversation_row(session, external_id or f"{channel}-{start:%d%H}", channel, kb)
        for i, label in enumerate(labels):
            message_row(session, conversation, start + timedelta(minutes=10 * i), label, -0.8 if label == "negative" else 0.5)


def test_a_spike_in_negative_share_creates_one_alert(db_settings):
    rule = SpikeRule(window=timedelta(hours=6), baseline=timedelta(days=2), threshold=0.3, min_messages=4)
    _burst(db_settings, "email", T0 - timedelta(days=1), ["positive"] * 8 + ["negative"] * 2)  # baseline: 20% negative
    _burst(db_settings, "chat", T0 - timedelta(days=1), ["positive"] * 4)
    _burst(db_settings, "email", T0, ["negative"] * 4 + ["positive"] * 2)  # 67% negative
    _burst(db_settings, "chat", T0, ["negative", "positive", "positive", "positive"])  # 25%: no spike
    at = T0 + timedelta(hours=2)
    with session_scope(db_settings) as session:
        alerts = detect_negative_spikes(session, at, rule)
        assert [(a.kb, a.channel, a.messages, a.negative, a.baseline_share) for a in alerts] == [("shop", "email", 6, 4, 0.2)]
        # The same spike seen again an hour later is the same alert, not a second one.
        assert detect_negative_spikes(session, at + timedelta(hours=1), rule) == []
    with session_scope(db_settings) as session:
        stored = session.scalars(select(Alert)).all()
    assert len(stored) == 1
    assert stored[0].window_start == at - rule.window and stored[0].window_end == at
    assert stored[0].negative_share == pytest.approx(4 / 6, abs=1e-4)


def test_too_few_messages_or_a_steady_share_raise_no_alert(db_settings):
    rule = SpikeRule(window=timedelta(hours=6), baseline=timedelta(days=2), threshold=0.3, min_messages=4)
    _burst(db_settings, "chat", T0, ["negative"] * 3)  # 100% but only 3 messages
    _burst(db_settings, "phone", T0 - timedelta(days=1), ["negative"] * 6 + ["positive"] * 4)  # always 60%
    _burst(db_settings, "phone", T0, ["negative"] * 3 + ["positive"] * 2)
    with session_scope(db_settings) as session:
        assert detect_negative_spikes(session, T0 + timedelta(hours=2), rule) == []


def test_scanning_history_finds_the_spike_once_and_scoped_checks_stay_in_their_pair(db_settings):
    rule = SpikeRule(window=timedelta(hours=3), baseline=timedelta(days=1), threshold=0.3, min_messages=4)
    _burst(db_settings, "email", T0 - timedelta(hours=12), ["positive"] * 6)
    _burst(db_settings, "email", T0, ["negative"] * 5)
    _burst(db_settings, "email", T0, ["negative"] * 5, kb="other", external_id="other-mail")
    with session_scope(db_settings) as session:
        scoped = detect_negative_spikes(session, T0 + timedelta(hours=1), rule, kb="other", channel="email", scoped=True)
        assert [(a.kb, a.channel) for a in scoped] == [("other", "email")]
        found = scan_negative_spikes(session, T0 - timedelta(days=1), T0 + timedelta(hours=6), rule)
    assert [(a.kb, a.channel) for a in found] == [("shop", "email")]
    assert T0 < found[0].window_end <= T0 + timedelta(hours=2)


def test_clusters_of_real_complaints_get_readable_labels(embedder):
    zipper = ["The zipper on my tent broke after two nights.", "Tent zipper is broken already, useless.",
              "The zipper of the tent door snapped on the first trip.", "My new tent's zipper keeps jamming and broke."]
    refund = ["Still no refund three weeks after I sent the jacket back.", "Where is my refund? You received the return weeks ago.",
              "I returned the boots a month ago and never got my money back.", "Refund still missing for my returned order."]
    texts = zipper + refund
    topics = cluster_topics(texts, embedder.encode(texts), max_clusters=2)
    assert len(set(topics[:4])) == 1 and len(set(topics[4:])) == 1 and topics[0] != topics[4]
    assert "zipper" in topics[0] and "refund" in topics[4]


def test_kb_topics_come_from_document_titles(settings, embedder, tmp_path):
    from ingest.pipeline import Ingestor
    from tests.helpers import make_helpcenter

    Ingestor("help", settings, embedder, show_progress=False).run([make_helpcenter(tmp_path / "kb")])
    topics = kb_topics(["I sent the item back two weeks ago and my refund still has not arrived, this is unacceptable!",
                        "Express shipping at almost 15 euros is a rip-off and it still came late.",
                        "asdf qwerty zxcv"], "help", settings)
    assert topics[0] == "Returns policy"
    assert topics[1] == "Shipping costs"
    assert topics[2] is None  # nothing in the knowledge base is about it
    assert kb_topics(["Where is my refund?"], "no-such-kb", settings) == [None]
