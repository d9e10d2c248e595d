"""Operators' sentiment questions: recognised, given a period, answered with the database's numbers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from assistant.analytics.aggregates import sentiment_summary, worst_conversations
from assistant.database import session_scope
from assistant.analytics.questions import _summary_text, answer_sentiment_question, is_sentiment_question, parse_period

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=timezone.utc)  # Wednesday

OPERATOR_QUESTIONS = [
    "How has customer sentiment changed this week?",
    "What's the sentiment trend over the last 30 days?",
    "Which channel has the most negative messages?",
    "What are customers unhappy about?",
    "Show me the worst conversations from last week",
    "How many negative messages did we get yesterday?",
    "Are customers happier on chat or email?",
    "sentiment by topic in November",
    "What share of customer messages were positive today?",
]
NOT_SENTIMENT = [
    "How do I return an item?",
    "I am really unhappy with my order, it arrived broken!",
    "My tent's zipper broke and I'm angry. Can I get a refund?",
    "What are your opening hours on Saturday?",
    "Which channel should I use to contact you?",
    "Is the express shipping positive for the environment?",
]


@pytest.mark.parametrize("question", OPERATOR_QUESTIONS)
def test_recognises_operator_questions(question):
    assert is_sentiment_question(question)


@pytest.mark.parametrize("question", NOT_SENTIMENT)
def test_leaves_customer_questions_to_the_assistant(question, settings):
    assert not is_sentiment_question(question)
    assert answer_sentiment_question(question, settings, now=NOW) is None


@pytest.mark.parametrize("question, start, end", [
    ("sentiment today", "2026-11-18 00:00", None),
    ("sentiment yesterday", "2026-11-17 00:00", "2026-11-18 00:00"),
    ("sentiment this week", "2026-11-16 00:00", None),
    ("sentiment last week", "2026-11-09 00:00", "2026-11-16 00:00"),
    ("sentiment last month", "2026-10-01 00:00", "2026-11-01 00:00"),
    ("sentiment in the last 3 days", "2026-11-15 12:00", None),
    ("sentiment over the past 24 hours", "2026-11-17 12:00", None),
    ("sentiment in December", "2025-12-01 00:00", "2026-01-01 00:00"),
    ("sentiment in november 2026", "2026-11-01 00:00", "2026-12-01 00:00"),
    ("sentiment since 2026-11-10", "2026-11-10 00:00", None),
    ("sentiment on 2026-11-12", "2026-11-12 00:00", "2026-11-13 00:00"),
    ("sentiment between 2026-11-01 and 2026-11-07", "2026-11-01 00:00", "2026-11-08 00:00"),
    ("customer sentiment", "2026-10-19 12:00", None),
])
def test_periods(question, start, end):
    got_start, got_end, _ = parse_period(question, NOW)
    assert got_start.strftime("%Y-%m-%d %H:%M") == start
    assert (got_end.strftime("%Y-%m-%d %H:%M") if got_end else None) == end


def _numbers(text: str) -> list[str]:
    return re.findall(r"-?\+?\d+(?:\.\d+)?%?", text)


def test_trend_answer_carries_the_aggregates(history):
    answer = answer_sentiment_question("How has customer sentiment changed since 2026-11-16?", history, now=NOW)
    assert answer.kind == "trend"
    with session_scope(history) as session:
        expected = sentiment_summary(session, datetime(2026, 11, 16, tzinfo=timezone.utc), None, group_by="day")
    assert answer.rows == expected
    assert "2026-11-16: 5 customer messages, 1 negative (20.0%), 2 neutral, 2 positive" in answer.text
    assert "2026-11-17: 3 customer messages, 2 negative (66.7%)" in answer.text
    assert "highest 66.7% on 2026-11-17 (2 of 3)" in answer.text
    one_day = _summary_text("trend", "day", answer.rows[:1], "this week", "")
    assert "went from" not in one_day and one_day.endswith("(Only one day has messages.)")  # nothing to compare


def test_channel_topic_overview_and_filters(history):
    by_channel = answer_sentiment_question("Which channel has the most negative messages this week?", history, now=NOW)
    assert by_channel.kind == "by_channel"
    assert "- email: 5 customer messages, 3 negative (60.0%)" in by_channel.text
    assert "Highest share negative: email (60.0%)" in by_channel.text

    topics = answer_sentiment_question("What are customers unhappy about this week?", history, now=NOW)
    assert topics.kind == "by_topic"
    assert "- Delivery problems: 2 negative messages (66.7% of them)" in topics.text
    assert "- Refunds: 1 negative message (33.3% of them)" in topics.text

    overview = answer_sentiment_question("How negative were customers on email this week?", history, now=NOW)
    assert (overview.kind, overview.filters) == ("overview", {"channel": "email"})
    assert "5 customer messages, 3 negative (60.0%), 1 neutral, 1 positive; mean score -0.32" in overview.text


def test_worst_conversations_answer(history):
    answer = answer_sentiment_question("Show the 2 worst conversations this week", history, now=NOW)
    assert answer.kind == "worst" and len(answer.rows) == 2
    with session_scope(history) as session:
        assert answer.rows == worst_conversations(session, answer.start, None, limit=2)
    assert answer.text.splitlines()[1].startswith("1. c-mail (email, started 2026-11-16): 4 customer messages, 3 negative, mean score -0.55")
    assert '"negative message" (topic: Delivery problems)' in answer.text


def test_a_period_without_messages_says_what_exists(history):
    answer = answer_sentiment_question("What was customer sentiment last month?", history, now=NOW)
    assert answer.rows == []
    assert "No scored customer messages in last month (2026-10-01 to 2026-10-31, UTC)" in answer.text
    assert "from 2026-11-16 to 2026-11-17" in answer.text


def test_an_empty_database_points_to_the_import(settings):
    answer = answer_sentiment_question("How is customer sentiment today?", settings, now=NOW)
    assert "helpmate import-conversations" in answer.text
    assert _numbers(answer.text)  # the period is stated
    assert answer.start == NOW.replace(hour=0) - timedelta(hours=0)
