"""Operators' questions about customer sentiment, answered from the database with the numbers.

"How has sentiment changed this week?", "Which channel has the most negative messages?", "What
are customers unhappy about?", "Show the worst conversations of November": `helpmate ask` first
offers every question to ``answer_sentiment_question``; a question it does not recognise gets
None and goes on to the knowledge base. The answer is written from ``sentiment_summary`` and
``worst_conversations`` (the same aggregates the dashboard shows), never by a language model, so
every number in it is the database's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.orm import Session

from assistant.analytics.aggregates import customer_message_span, known_values, sentiment_summary, worst_conversations
from assistant.config import Settings
from assistant.database import session_scope

DEFAULT_PERIOD = timedelta(days=30)

_SENTIMENT = re.compile(
    r"\b(sentiments?|mood|negative|positive|neutral|(un)?happ(y|ier|iest)|angr(y|ier|iest)|upset|frustrat\w*|satisf\w*|"
    r"dissatisf\w*|complain\w*|annoyed|disappointed|worst)\b", re.I)
_SUBJECT = re.compile(
    r"\b(sentiments?|mood|customers?|clients?|users?|people|messages?|conversations?|tickets?|chats?|emails?|"
    r"channels?|topics?|trend\w*|over time)\b", re.I)
_FIRST_PERSON = re.compile(r"\b(i|i'm|im|me|my|mine)\b", re.I)
_PLURAL_SUBJECT = re.compile(r"\b(customers|clients|users|people|messages|conversations|tickets|chats|sentiment)\b", re.I)

_WORST = re.compile(r"\b(worst|angriest|unhappiest|most (negative|unhappy|angry|upset|frustrated) "
                    r"(conversations?|tickets?|chats?|customers?))\b", re.I)
_TOPIC = re.compile(r"\b(topics?|about what|what (are|were|is|was) \w+ (\w+ )?(unhappy|upset|angry|frustrated|complaining|"
                    r"dissatisfied|annoyed|disappointed) (about|with)|complain\w* about|complaints? about|why)\b", re.I)
_CHANNEL = re.compile(r"\bchannels?\b", re.I)
_KB = re.compile(r"\b(knowledge bases?|kbs?)\b", re.I)
_TREND = re.compile(r"\b(trends?|over time|per (day|hour|week)|daily|hourly|weekly|by (day|hour|week)|each (day|hour|week)|"
                    r"chang\w*|evolv\w*|develop\w*|going|improv\w*|worse|better)\b", re.I)
_TOP_N = re.compile(r"\b(?:top|worst|the)\s+(\d{1,3})\b|\b(\d{1,3})\s+(?:worst|most)\b", re.I)

_MONTHS = {name: number for number, name in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"], start=1)}
_UNITS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1), "month": timedelta(days=30)}
_DATE = r"(\d{4}-\d{2}-\d{2})"


@dataclass
class SentimentAnswer:
    """The answer text (with the numbers), what was asked, and the rows it was written from."""

    question: str
    kind: str  # overview | trend | by_channel | by_kb | by_topic | worst
    start: datetime
    end: datetime | None  # None: up to now
    text: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    filters: dict[str, str] = field(default_factory=dict)


def is_sentiment_question(question: str) -> bool:
    """True for an operator's question about customers' sentiment, not a customer's complaint.

    It needs a sentiment word and something to aggregate (customers, messages, channels, a
    trend, the word sentiment itself); "I'm unhappy with my order" speaks for one person and
    names nothing to aggregate, so it is left to the assistant.
    """
    if not _SENTIMENT.search(question) or not _SUBJECT.search(question):
        return False
    return not (_FIRST_PERSON.search(question) and not _PLURAL_SUBJECT.search(question))


def parse_period(question: str, now: datetime) -> tuple[datetime, datetime | None, str]:
    """The period a question names, as (start, end or None for "up to now", description), UTC.

    Understands today, yesterday, this/last week or month, last/past N hours/days/weeks/months,
    month names (with an optional year), ``since 2026-11-01``, ``on 2026-11-20`` and
    ``from/between 2026-11-01 and/to 2026-11-15`` (inclusive days). Default: the last 30 days.
    """
    q = question.lower()
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if m := re.search(rf"\b(?:from|between)\s+{_DATE}\s+(?:and|to|until)\s+{_DATE}", q):
        start, last = _day(m.group(1)), _day(m.group(2))
        return start, last + timedelta(days=1), f"from {m.group(1)} to {m.group(2)}"
    if m := re.search(rf"\bsince\s+{_DATE}", q):
        return _day(m.group(1)), None, f"since {m.group(1)}"
    if m := re.search(rf"\b(?:on\s+)?{_DATE}", q):
        return _day(m.group(1)), _day(m.group(1)) + timedelta(days=1), m.group(1)
    if re.search(r"\btoday\b", q):
        return today, None, "today"
    if re.search(r"\byesterday\b", q):
        return today - timedelta(days=1), today, "yesterday"
    monday = today - timedelta(days=today.weekday())
    if re.search(r"\bthis week\b", q):
        return monday, None, "this week"
    if re.search(r"\blast week\b", q):
        return monday - timedelta(weeks=1), monday, "last week"
    first_of_month = today.replace(day=1)
    if re.search(r"\bthis month\b", q):
        return first_of_month, None, "this month"
    if re.search(r"\blast month\b", q):
        previous = (first_of_month - timedelta(days=1)).replace(day=1)
        return previous, first_of_month, "last month"
    if m := re.search(r"\b(?:last|past|previous)\s+(\d+)\s+(hour|day|week|month)s?\b", q):
        n, unit = int(m.group(1)), m.group(2)
        return now - n * _UNITS[unit], None, f"the past {n} {unit}s"
    if m := re.search(r"\b(?:last|past|previous)\s+(hour|day|week|month|24 hours)\b", q):
        unit = m.group(1)
        span = timedelta(hours=24) if unit == "24 hours" else _UNITS[unit]
        return now - span, None, f"the past {unit}"
    if m := re.search(r"\b(" + "|".join(_MONTHS) + r")\b(?:\s+(\d{4}))?", q):
        year = int(m.group(2)) if m.group(2) else now.year
        start = datetime(year, _MONTHS[m.group(1)], 1, tzinfo=timezone.utc)
        if start > now and not m.group(2):
            start = start.replace(year=year - 1)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end, start.strftime("%B %Y")
    return now - DEFAULT_PERIOD, None, "the past 30 days"


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _mentioned(question: str, values: list[str]) -> list[str]:
    """The known values (channels, knowledge bases) a question names, longest first."""
    return [value for value in sorted(values, key=len, reverse=True)
            if re.search(rf"(?<!\w){re.escape(value)}(?!\w)", question, re.I)]


# The report each grouping gives; "conversation" lists the most negative conversations.
KIND_BY_GROUP: dict[str | None, str] = {None: "overview", "hour": "trend", "day": "trend", "week": "trend",
                                        "channel": "by_channel", "kb": "by_kb", "topic": "by_topic",
                                        "conversation": "worst"}


@dataclass
class ReportRequest:
    """What an operator asked for: the period (and its words), the grouping and the filters."""

    group_by: str | None
    start: datetime
    end: datetime | None
    period: str  # words that ``parse_period`` reads back to the same period
    kb: str | None = None
    channel: str | None = None
    limit: int = 5

    @property
    def kind(self) -> str:
        return KIND_BY_GROUP[self.group_by]


def plan_report(question: str, session: Session, now: datetime) -> ReportRequest:
    """The report an operator's question asks for; channels and knowledge bases are recognised by name."""
    start, end, period = parse_period(question, now)
    known = known_values(session)
    channels = _mentioned(question, known["channel"])
    kbs = _mentioned(question, known["kb"])
    # One named channel filters; two or more ("chat or email?") ask for a comparison.
    channel = channels[0] if len(channels) == 1 else None
    kb = kbs[0] if len(kbs) == 1 else None
    if _WORST.search(question):
        m = _TOP_N.search(question)
        limit = min(int(m.group(1) or m.group(2)), 50) if m else 5
        return ReportRequest("conversation", start, end, period, kb, channel, limit)
    if _TOPIC.search(question):
        group_by = "topic"
    elif (_CHANNEL.search(question) and not channel) or len(channels) > 1:
        group_by = "channel"
    elif (_KB.search(question) and not kb) or len(kbs) > 1:
        group_by = "kb"
    elif _TREND.search(question):
        group_by = _trend_bucket(question, start, end or now)
    else:
        group_by = None
    return ReportRequest(group_by, start, end, period, kb, channel)


def run_report(session: Session, request: ReportRequest, now: datetime, question: str = "") -> SentimentAnswer:
    """The aggregates a request names and the answer written from them, every number the database's."""
    filters = {name: value for name, value in (("channel", request.channel), ("kb", request.kb)) if value}
    where = f"{request.period} ({_period_text(request.start, request.end, now)}, UTC)"
    scope = "".join(f", {name} {value}" for name, value in filters.items())
    if request.kind == "worst":
        rows = worst_conversations(session, request.start, request.end, limit=request.limit, kb=request.kb,
                                   channel=request.channel)
        text = _worst_text(rows, where, scope)
    else:
        rows = sentiment_summary(session, request.start, request.end, group_by=request.group_by, kb=request.kb,
                                 channel=request.channel)
        text = _summary_text(request.kind, request.group_by, rows, where, scope)
    if not rows:
        first, last = customer_message_span(session)
        text = f"No scored customer messages in {where}{scope}."
        if last is not None:
            text += f" Stored customer messages run from {first:%Y-%m-%d} to {last:%Y-%m-%d}; ask about that period."
        else:
            text += " None are stored yet (import history with `helpmate import-conversations FILE`)."
    return SentimentAnswer(question=question, kind=request.kind, start=request.start, end=request.end, text=text,
                           rows=rows, filters=filters)


def answer_sentiment_question(question: str, settings: Settings,
                              now: datetime | None = None) -> SentimentAnswer | None:
    """Answer an operator's sentiment question from SQL aggregates, or None if it is not one."""
    if not is_sentiment_question(question):
        return None
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    with session_scope(settings) as session:
        return run_report(session, plan_report(question, session, now), now, question)


def _period_text(start: datetime, end: datetime | None, now: datetime) -> str:
    if end is None:
        return f"{start:%Y-%m-%d %H:%M} to now"
    last = end - timedelta(seconds=1)
    if start.date() == last.date():
        return f"{start:%Y-%m-%d}"
    return f"{start:%Y-%m-%d} to {last:%Y-%m-%d}"


def _trend_bucket(question: str, start: datetime, end: datetime) -> str:
    if re.search(r"\b(hourly|per hour|by hour|each hour)\b", question, re.I) or end - start <= timedelta(days=2):
        return "hour"
    if re.search(r"\b(weekly|per week|by week|each week)\b", question, re.I) or end - start > timedelta(days=92):
        return "week"
    return "day"


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%"


def _line(row: dict[str, Any]) -> str:
    return (f"{_count(row['messages'], 'customer message')}, "
            f"{row['negative']} negative ({_percent(row['share_negative'])}), "
            f"{row['neutral']} neutral, {row['positive']} positive; mean score {row['mean_score']:+.2f}")


def _summary_text(kind: str, group_by: str | None, rows: list[dict[str, Any]], where: str, scope: str) -> str:
    if not rows:
        return ""
    if kind == "overview":
        return f"Customer sentiment in {where}{scope}: {_line(rows[0])}."
    if kind == "by_topic":
        total = sum(row["messages"] for row in rows)
        lines = [f"- {row['group']}: {_count(row['messages'], 'negative message')} "
                 f"({_percent(row['messages'] / total)} of them)" for row in rows[:10]]
        more = f"\n({len(rows) - 10} more topics)" if len(rows) > 10 else ""
        return f"What customers were unhappy about in {where}{scope}, by topic of {total} negative messages:\n" + "\n".join(lines) + more
    if kind == "trend":
        lines = [f"- {row['group']}: {_line(row)}" for row in rows]
        if len(rows) == 1:  # nothing to compare: no "went from 25% to 25%"
            return f"Customer sentiment per {group_by} in {where}{scope}:\n{lines[0]}\n(Only one {group_by} has messages.)"
        peak = max(rows, key=lambda row: (row["share_negative"], row["messages"]))
        first, last = rows[0], rows[-1]
        summary = (f"Share negative went from {_percent(first['share_negative'])} ({first['group']}) to "
                   f"{_percent(last['share_negative'])} ({last['group']}); highest {_percent(peak['share_negative'])} "
                   f"on {peak['group']} ({peak['negative']} of {peak['messages']}).")
        return f"Customer sentiment per {group_by} in {where}{scope}:\n" + "\n".join(lines) + "\n" + summary
    name = {"by_channel": "channel", "by_kb": "knowledge base"}[kind]
    lines = [f"- {row['group']}: {_line(row)}" for row in rows]
    worst = max(rows, key=lambda row: (row["share_negative"], row["messages"]))
    return (f"Customer sentiment by {name} in {where}{scope}:\n" + "\n".join(lines) +
            f"\nHighest share negative: {worst['group']} ({_percent(worst['share_negative'])}).")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _worst_text(rows: list[dict[str, Any]], where: str, scope: str) -> str:
    if not rows:
        return ""
    lines = []
    for rank, row in enumerate(rows, start=1):
        name = row["external_id"] or f"#{row['conversation_id']}"
        quote = " ".join(row["worst_message"].split())
        quote = quote if len(quote) <= 160 else quote[:157] + "..."
        topic = f" (topic: {row['worst_topic']})" if row["worst_topic"] else ""
        lines.append(f"{rank}. {name} ({row['channel']}, started {row['started_at']:%Y-%m-%d}): {row['messages']} customer "
                     f"messages, {row['negative']} negative, mean score {row['mean_score']:+.2f}, lowest {row['min_score']:+.2f}; "
                     f"worst message: \"{quote}\"{topic}")
    return f"The {len(rows)} most negative conversations in {where}{scope}:\n" + "\n".join(lines)
