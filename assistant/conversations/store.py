"""Conversations and messages in the database; every customer message is scored as it is stored.

Three ways in: ``add_message`` on the chat path (one message, scored in milliseconds, checked for
a spike of negative messages at once), ``import_conversations`` for historical tickets (batches,
progress bar, bad rows reported by line and skipped), and ``backfill_sentiment`` when the
sentiment model changes. All three give negative messages a topic (``assistant.analytics.aggregates``).

With ``redact_on_store`` the first two store customer messages redacted (``redaction``): e-mail
addresses, phone, card, account and national id numbers, dates of birth and IP addresses become
placeholders before the text reaches the database, so no operator, export or backup ever holds
them. Sentiment is still scored on what the customer wrote (see ``_stored_text``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from assistant.analytics.spikes import detect_negative_spikes, scan_negative_spikes, SpikeRule
from assistant.analytics.topics import assign_topics, kb_topics
from assistant.config import Settings
from assistant.conversations.framing import strip_email_framing
from assistant.database import session_scope
from assistant.database.models import Conversation, Message
from assistant.conversations.records import BadRow, read_records
from assistant.conversations.redaction import redact, redact_values
from assistant.sentiment.model import get_sentiment_model, Scorer

ROLES: tuple[str, ...] = ("customer", "assistant", "agent")
_ROLE_ALIASES = {"customer": "customer", "user": "customer", "client": "customer",
                 "assistant": "assistant", "bot": "assistant", "ai": "assistant",
                 "agent": "agent", "operator": "agent", "human": "agent", "staff": "agent"}
IMPORT_COLUMNS: tuple[str, ...] = ("conversation_id", "timestamp", "role", "text", "channel")
OPTIONAL_COLUMNS: tuple[str, ...] = ("customer_id",)
MAX_TEXT_CHARS = 20_000


def normalise_role(value: str) -> str:
    """customer, assistant or agent (also accepts user/bot/operator and similar names)."""
    role = _ROLE_ALIASES.get(value.strip().lower())
    if role is None:
        raise ValueError(f"role {value!r} is not one of {', '.join(ROLES)}")
    return role


def parse_timestamp(value: str) -> datetime:
    """An ISO 8601 time (``2026-11-20T09:15:00+01:00``, ``...Z``, or a date); no offset means UTC."""
    text = value.strip()
    if not text:
        raise ValueError("timestamp is empty")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"timestamp {value!r} is not ISO 8601 (e.g. 2026-11-20T09:15:00+01:00)") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _stored_text(settings: Settings, role: str, text: str) -> str:
    """What is written for a message: a customer's text redacted when ``redact_on_store`` is set.

    Callers score sentiment on the original text, not on this: the score is of what the customer
    wrote and holds no personal data itself, and the values redaction removes (an address, a card
    number) carry no feeling, while the placeholders that replace them are tokens the model never
    saw in training, which can move a score and now and then flip its label. The price: a later
    ``backfill_sentiment`` (after a model upgrade) can only score the stored, redacted text.
    """
    return redact(text) if settings.redact_on_store and role == "customer" else text


# --- the chat path -------------------------------------------------------------------------------


def start_conversation(session: Session, channel: str, kb: str | None = None, customer_id: str | None = None,
                       external_id: str | None = None, started_at: datetime | None = None) -> Conversation:
    """A new conversation row (flushed, so it has an id)."""
    if not channel.strip():
        raise ValueError("a conversation needs a channel (e.g. chat, email, phone)")
    conversation = Conversation(channel=channel.strip(), kb=kb, customer_id=customer_id, external_id=external_id,
                                started_at=started_at or datetime.now(timezone.utc))
    session.add(conversation)
    session.flush()
    return conversation


def add_message(session: Session, conversation: Conversation, role: str, text: str, *,
                created_at: datetime | None = None, model_version: str | None = None,
                retrieved_chunk_ids: Sequence[int] | None = None, latency_ms: float | None = None,
                answer_kind: str | None = None, trace: dict[str, Any] | None = None,
                settings: Settings, spike_rule: SpikeRule | None = SpikeRule()) -> Message:
    """Store one message. A customer message gets its sentiment before it is written; a negative
    one also gets a topic, and its knowledge base and channel are checked for a spike
    (``spike_rule=None`` skips that check). With ``redact_on_store`` a customer message is stored
    redacted, and so are the strings of any message's ``trace`` (an agent's trace quotes the
    customer in its tool arguments and rewritten question)."""
    role = normalise_role(role)
    if not text.strip():
        raise ValueError("cannot store an empty message")
    stored = _stored_text(settings, role, text)
    if settings.redact_on_store and trace is not None:
        trace = redact_values(trace)
    message = Message(conversation_id=conversation.id, role=role, text=stored,
                      created_at=created_at or datetime.now(timezone.utc), model_version=model_version,
                      retrieved_chunk_ids=list(retrieved_chunk_ids) if retrieved_chunk_ids is not None else None,
                      latency_ms=latency_ms, answer_kind=answer_kind, trace=trace)
    if role == "customer":
        model = get_sentiment_model(settings)
        sentiment = model.score(text)  # the original text: see _stored_text
        message.sentiment_label, message.sentiment_score, message.sentiment_model = sentiment.label, sentiment.score, model.version
        if sentiment.label == "negative":
            # From the stored text without an e-mail's greeting and signature, as import and backfill
            # do. No matching document leaves the topic empty; `helpmate sentiment backfill` clusters those.
            message.topic = kb_topics([strip_email_framing(stored)], conversation.kb, settings)[0]
    session.add(message)
    session.flush()
    if role == "customer" and spike_rule is not None:
        detect_negative_spikes(session, message.created_at, spike_rule, kb=conversation.kb,
                               channel=conversation.channel, scoped=True)
    return message


# --- import --------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did; ``bad_rows`` lists every row left out, the rest were kept."""

    path: str
    rows: int = 0
    messages_added: int = 0
    conversations_added: int = 0
    duplicates: int = 0
    customer_messages: int = 0
    negative: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    seconds: float = 0.0
    bad_rows: list[BadRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Row:
    line: int
    external_id: str
    created_at: datetime
    role: str
    text: str
    channel: str
    customer_id: str | None


def _parse_row(line: int, record: dict[str, Any]) -> _Row:
    values = {}
    for column in IMPORT_COLUMNS:
        value = record.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"{column} is empty")
        values[column] = str(value)
    text = values["text"].strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text has {len(text)} characters, more than {MAX_TEXT_CHARS}")
    customer_id = record.get("customer_id")
    return _Row(line, values["conversation_id"].strip(), parse_timestamp(values["timestamp"]),
                normalise_role(values["role"]), text, values["channel"].strip().lower(),
                str(customer_id).strip() if customer_id not in (None, "") else None)


def read_conversation_rows(path: Path) -> tuple[list[_Row], list[BadRow]]:
    """Every row of a CSV (with a header) or JSONL file of messages, and the bad rows by line.

    Raises ValueError for a file that cannot be read at all (wrong type, missing columns, not UTF-8).
    """
    rows, bad = [], []
    for line, record in read_records(path, "conversations", IMPORT_COLUMNS, OPTIONAL_COLUMNS):
        if isinstance(record, str):
            bad.append(BadRow(line, record))
            continue
        try:
            rows.append(_parse_row(line, record))
        except ValueError as error:
            bad.append(BadRow(line, str(error)))
    return rows, bad


def _key(conversation_id: int, created_at: datetime, role: str, text: str) -> tuple:
    return conversation_id, created_at.astimezone(timezone.utc), role, text


def import_conversations(path: Path, kb: str | None = None, *, settings: Settings,
                         batch_size: int = 512, show_progress: bool = False,
                         spike_rule: SpikeRule = SpikeRule(), scorer: Scorer | None = None) -> ImportReport:
    """Load historical messages from CSV or JSONL, scoring customer messages in batches.

    Good rows are kept and bad ones reported with their line numbers. Each batch is committed on
    its own, and rows already in the database (same conversation, time, role and text) are
    skipped, so an import that stopped half-way is finished by running it again (with
    ``redact_on_store``, customer rows are compared redacted, as they were stored). Afterwards the
    negative messages get topics and the imported period is scanned for spikes. ``scorer`` scores
    the batches elsewhere (``assistant.sentiment.batch.RaySentimentScorer``: on a Ray cluster); it
    must run the same model version as this process.
    """
    from tqdm import tqdm

    began = time.perf_counter()
    report = ImportReport(path=str(path))
    rows, report.bad_rows = read_conversation_rows(path)
    report.rows = len(rows) + len(report.bad_rows)
    if not rows:
        report.seconds = round(time.perf_counter() - began, 2)
        return report
    model = get_sentiment_model(settings)
    if scorer is not None and getattr(scorer, "version", model.version) != model.version:
        raise ValueError(f"the scorer runs sentiment model {scorer.version} but this process has {model.version}; "
                         f"install the same helpmate release everywhere")
    scorer = scorer or model
    first_seen: dict[str, _Row] = {}
    for row in rows:
        if row.external_id not in first_seen or row.created_at < first_seen[row.external_id].created_at:
            first_seen[row.external_id] = row
    conversations = _ensure_conversations(first_seen, kb, settings, report)
    seen = _existing_keys(conversations, settings)
    negatives: list[tuple[int, str]] = []
    with tqdm(total=len(rows), unit="msg", desc="importing", disable=not show_progress) as bar:
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            fresh = []
            for row in batch:
                conversation_id, channel = conversations[row.external_id]
                if row.channel != channel:
                    report.bad_rows.append(BadRow(row.line, f"conversation {row.external_id!r} is on channel {channel!r}, not {row.channel!r}"))
                    continue
                stored = _stored_text(settings, row.role, row.text)
                key = _key(conversation_id, row.created_at, row.role, stored)  # as the database holds it
                if key in seen:
                    report.duplicates += 1
                    continue
                seen.add(key)
                fresh.append((conversation_id, row, stored))
            customers = [i for i, (_, row, _) in enumerate(fresh) if row.role == "customer"]
            # The original text: see _stored_text.
            sentiments = dict(zip(customers, scorer.score_batch([fresh[i][1].text for i in customers])))
            with session_scope(settings) as session:
                added = []
                for i, (conversation_id, row, stored) in enumerate(fresh):
                    message = Message(conversation_id=conversation_id, role=row.role, text=stored, created_at=row.created_at)
                    if i in sentiments:
                        message.sentiment_label, message.sentiment_score = sentiments[i].label, sentiments[i].score
                        message.sentiment_model = model.version
                    session.add(message)
                    added.append(message)
                session.flush()
                negatives += [(added[i].id, added[i].text) for i in customers if sentiments[i].label == "negative"]
            report.messages_added += len(fresh)
            report.customer_messages += len(customers)
            report.negative += sum(1 for s in sentiments.values() if s.label == "negative")
            bar.update(len(batch))
    report.topics = _store_topics(negatives, kb, settings, show_progress)
    with session_scope(settings) as session:
        span = [row.created_at for row in rows]
        report.alerts = len(scan_negative_spikes(session, min(span), max(span), spike_rule))
    report.bad_rows.sort(key=lambda bad: bad.line)
    report.seconds = round(time.perf_counter() - began, 2)
    return report


def _ensure_conversations(first_seen: dict[str, _Row], kb: str | None, settings: Settings,
                          report: ImportReport) -> dict[str, tuple[int, str]]:
    """external id -> (conversation id, channel), creating the conversations that are new."""
    found: dict[str, tuple[int, str]] = {}
    ids = list(first_seen)
    with session_scope(settings) as session:
        for start in range(0, len(ids), 500):
            for conversation in session.scalars(select(Conversation).where(Conversation.external_id.in_(ids[start:start + 500]))):
                found[conversation.external_id] = (conversation.id, conversation.channel)
        new = []
        for external_id in ids:
            if external_id not in found:
                row = first_seen[external_id]
                conversation = Conversation(external_id=external_id, channel=row.channel, kb=kb,
                                            customer_id=row.customer_id, started_at=row.created_at)
                session.add(conversation)
                new.append(conversation)
        session.flush()
        for conversation in new:
            found[conversation.external_id] = (conversation.id, conversation.channel)
    report.conversations_added = len(new)
    return found


def _existing_keys(conversations: dict[str, tuple[int, str]], settings: Settings) -> set[tuple]:
    ids = [conversation_id for conversation_id, _ in conversations.values()]
    keys: set[tuple] = set()
    with session_scope(settings) as session:
        for start in range(0, len(ids), 500):
            for row in session.execute(select(Message.conversation_id, Message.created_at, Message.role, Message.text)
                                       .where(Message.conversation_id.in_(ids[start:start + 500]))):
                keys.add(_key(*row))
    return keys


def _store_topics(negatives: list[tuple[int, str]], kb: str | None, settings: Settings,
                  show_progress: bool) -> dict[str, int]:
    """Topics for the given negative messages (id, text), written in one transaction; counts per topic.

    Read without an e-mail's salutation and signature: a customer's name is no topic.
    """
    if not negatives:
        return {}
    from tqdm import tqdm

    ids = [message_id for message_id, _ in negatives]
    texts = [strip_email_framing(text) for _, text in negatives]
    with tqdm(total=len(texts), unit="msg", desc="topics", disable=not show_progress) as bar:
        topics = assign_topics(texts, kb, settings)
        bar.update(len(texts))
    with session_scope(settings) as session:
        for message_id, topic in zip(ids, topics):
            session.execute(update(Message).where(Message.id == message_id).values(topic=topic))
    counts: dict[str, int] = {}
    for topic in topics:
        counts[topic] = counts.get(topic, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


# --- backfill ------------------------------------------------------------------------------------


def backfill_sentiment(settings: Settings, rescore_all: bool = False, batch_size: int = 512,
                       show_progress: bool = False, spike_rule: SpikeRule = SpikeRule()) -> dict[str, Any]:
    """Score customer messages that have no sentiment, or one from another model version.

    Run after upgrading the sentiment model (or with ``rescore_all``). Messages that end up
    negative without a topic get one (their conversation's knowledge base, else clustering); the
    rescored period is scanned for spikes again.
    """
    from tqdm import tqdm
    model = get_sentiment_model(settings)
    stale = Message.role == "customer"
    if not rescore_all:
        stale = stale & or_(Message.sentiment_label.is_(None), Message.sentiment_model.is_(None),
                            Message.sentiment_model != model.version)
    with session_scope(settings) as session:
        ids = list(session.scalars(select(Message.id).where(stale).order_by(Message.id)))
    counts = {"rescored": 0, "negative": 0, "topics": 0, "alerts": 0}
    first: datetime | None = None
    last: datetime | None = None
    with tqdm(total=len(ids), unit="msg", desc="scoring", disable=not show_progress) as bar:
        for start in range(0, len(ids), batch_size):
            with session_scope(settings) as session:
                messages = list(session.scalars(select(Message).where(Message.id.in_(ids[start:start + batch_size]))))
                for message, sentiment in zip(messages, model.score_batch([m.text for m in messages])):
                    if sentiment.label != "negative" or message.sentiment_label != "negative":
                        message.topic = None
                    message.sentiment_label, message.sentiment_score = sentiment.label, sentiment.score
                    message.sentiment_model = model.version
                    counts["negative"] += sentiment.label == "negative"
                    first = min(first, message.created_at) if first else message.created_at
                    last = max(last, message.created_at) if last else message.created_at
            counts["rescored"] += len(messages)
            bar.update(len(messages))
    counts["topics"] = _backfill_topics(settings, show_progress)
    if first is not None and last is not None:
        with session_scope(settings) as session:
            counts["alerts"] = len(scan_negative_spikes(session, first, last, spike_rule))
    return counts


def _backfill_topics(settings: Settings, show_progress: bool) -> int:
    """Topics for negative customer messages that have none, per knowledge base."""
    with session_scope(settings) as session:
        rows = session.execute(
            select(Message.id, Message.text, Conversation.kb).join(Conversation, Message.conversation_id == Conversation.id)
            .where(Message.role == "customer", Message.sentiment_label == "negative", Message.topic.is_(None))
            .order_by(Message.id)
        ).all()
    by_kb: dict[str | None, list[tuple[int, str]]] = {}
    for message_id, text, kb in rows:
        by_kb.setdefault(kb, []).append((message_id, text))
    done = 0
    for kb, items in by_kb.items():
        done += sum(_store_topics(items, kb, settings, show_progress).values())
    return done
