"""Conversations and their messages, spike alerts, tickets for a person, and feedback on answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from assistant.database.models.base import Base, UTCDateTime, utcnow


class Conversation(Base):
    """One conversation with a customer on one channel, answered from one knowledge base.

    ``kb`` is the knowledge base's name rather than a foreign key: historical tickets are imported
    before (or without) their knowledge base being ingested, and analytics group by the name.
    """

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    channel: Mapped[str] = mapped_column(String(50), index=True)
    kb: Mapped[str | None] = mapped_column(String(200), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(200), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)

    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation", cascade="all, delete-orphan", passive_deletes=True, order_by="Message.created_at"
    )

class Message(Base):
    """One message of a conversation.

    Customer messages carry their sentiment (label, score in [-1, 1], the sentiment model that
    scored them) and, when negative, a topic. Assistant messages carry what produced them: the
    model version, the retrieved chunk ids, the latency, the kind of answer and the agent's trace.
    """

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_role_created_at", "role", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))  # customer | assistant | agent
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    sentiment_label: Mapped[str | None] = mapped_column(String(10), index=True)  # negative | neutral | positive
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    sentiment_model: Mapped[str | None] = mapped_column(String(100))
    topic: Mapped[str | None] = mapped_column(String(300), index=True)
    model_version: Mapped[str | None] = mapped_column(String(200))
    retrieved_chunk_ids: Mapped[list[Any] | None] = mapped_column(JSON)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    answer_kind: Mapped[str | None] = mapped_column(String(30))  # e.g. generated | extractive | refusal
    trace: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")

class Alert(Base):
    """A spike in the share of negative customer messages for one knowledge base and channel."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))  # negative_spike
    kb: Mapped[str | None] = mapped_column(String(200), index=True)
    channel: Mapped[str] = mapped_column(String(50))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    messages: Mapped[int]
    negative: Mapped[int]
    negative_share: Mapped[float] = mapped_column(Float)
    baseline_share: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

class Ticket(Base):
    """A hand-over to a person: why, how urgent, where it stands, and the transcript at that moment.

    The transcript is copied, not referenced, so the ticket shows what the customer had said when
    it was opened even if the conversation goes on.
    """

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(10), default="normal")  # low | normal | high | urgent
    status: Mapped[str] = mapped_column(String(10), default="open", index=True)  # open | assigned | closed
    assignee: Mapped[str | None] = mapped_column(String(200))
    transcript: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

class Feedback(Base):
    """A rating of one assistant answer, with what produced the answer, so it can become training data.

    ``rating`` is ``up``/``down`` (thumbs) or ``1``..``5`` (stars). The question, the answer and the
    knowledge base are copied here rather than only reached through ``message_id``: feedback
    imported from another tool has no message in this database, and a later edit or deletion of a
    conversation must not change what a snapshot was trained on. ``conversation_key`` groups
    feedback by conversation for the train/eval split (the conversation id, or an external one).
    """

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    conversation_key: Mapped[str] = mapped_column(String(200), index=True)
    kb: Mapped[str | None] = mapped_column(String(200), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    rating: Mapped[str] = mapped_column(String(4))  # up | down | 1..5
    corrected_answer: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    given_by: Mapped[str] = mapped_column(String(20))  # customer | agent
    prompt: Mapped[list[Any] | None] = mapped_column(JSON)  # the chat messages the answer was generated from
    retrieved_chunk_ids: Mapped[list[Any] | None] = mapped_column(JSON)
    passages: Mapped[list[Any] | None] = mapped_column(JSON)  # the retrieved passages as the prompt numbered them
    model_version: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(300), default="api")  # api | cli | import:<file>
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # A customer's rating is a suggestion (pending) until an operator approves it; only approved
    # feedback is exported for training or used by the evaluation gate. Staff feedback is approved.
    review_status: Mapped[str] = mapped_column(String(10), default="approved", server_default="approved", index=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(200))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
