"""Typed SQLAlchemy models. The schema itself is owned by the Alembic migrations beside this file.

Chunk text and metadata live here, not in a pickle beside the index: the FAISS index holds only
vectors and the chunk ids below, so loading an index never runs code.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[Any]: JSON}


class KnowledgeBase(Base):
    """A named collection of documents with one search index.

    ``index_generation`` names the index folder that matches the committed chunks: ingestion
    writes generation N+1 next to N and switches this number in the same transaction that
    commits the chunks, so the database and the index on disk never disagree.
    """

    __tablename__ = "knowledge_bases"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    embedding_model: Mapped[str | None] = mapped_column(String(300))
    dimension: Mapped[int | None]
    index_generation: Mapped[int] = mapped_column(default=0)
    index_kind: Mapped[str | None] = mapped_column(String(100))
    # public: offered in the customer chat and searchable by customers; internal: operators only.
    visibility: Mapped[str] = mapped_column(String(10), default="internal", server_default="internal")

    documents: Mapped[list[Document]] = relationship(back_populates="knowledge_base", cascade="all, delete-orphan")


class Document(Base):
    """One source document. Most files are one document; a BEIR corpus or FAQ file keys each record by ``path#id``."""

    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("kb_id", "source", name="uq_documents_kb_source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kb_id: Mapped[int] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(2000))
    path: Mapped[str] = mapped_column(String(2000), index=True)
    format: Mapped[str] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(1000))
    file_hash: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20))  # indexed | failed
    error: Mapped[str | None] = mapped_column(Text)
    chunk_count: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    knowledge_base: Mapped[KnowledgeBase] = relationship(back_populates="documents")
    chunks: Mapped[list[Chunk]] = relationship(back_populates="document", cascade="all, delete-orphan", passive_deletes=True)


class Chunk(Base):
    """A passage of a document; its id is the vector id in the knowledge base's FAISS index."""

    __tablename__ = "chunks"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    kb_id: Mapped[int] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(String(1000))
    section: Mapped[str | None] = mapped_column(String(2000))
    page: Mapped[int | None]
    token_count: Mapped[int]

    document: Mapped[Document] = relationship(back_populates="chunks")


class IngestionRun(Base):
    """One run of `helpmate ingest`, with its counts and the files it could not ingest."""

    __tablename__ = "ingestion_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kb_id: Mapped[int] = mapped_column(ForeignKey("knowledge_bases.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")  # running | succeeded | partial | failed
    documents_added: Mapped[int] = mapped_column(default=0)
    documents_updated: Mapped[int] = mapped_column(default=0)
    documents_unchanged: Mapped[int] = mapped_column(default=0)
    documents_failed: Mapped[int] = mapped_column(default=0)
    documents_pruned: Mapped[int] = mapped_column(default=0)
    chunks_added: Mapped[int] = mapped_column(default=0)
    chunks_removed: Mapped[int] = mapped_column(default=0)
    seconds: Mapped[float | None] = mapped_column(Float)
    errors: Mapped[list[Any]] = mapped_column(default=list)


class UTCDateTime(TypeDecorator):
    """A timezone-aware timestamp stored as UTC on every database.

    SQLite keeps no offset: a plain ``DateTime(timezone=True)`` would store 10:00+02:00 as 10:00
    and read it back naive. Converting to UTC on the way in and marking UTC on the way out makes
    time windows and per-day buckets mean the same on SQLite and PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; Helpmate stores timezone-aware times only")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


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


class ModelVersion(Base):
    """A fine-tuned adapter and its life: trained as a ``candidate``, then ``rejected`` by the
    evaluation gate or promoted to ``active`` (one at a time), later ``retired`` by a newer one.

    ``name`` is the model name vLLM serves the adapter under; it is never reused, since vLLM can
    serve a stale cached adapter when a changed one is loaded under an old name.
    ``feedback_through_id`` is the newest feedback the training snapshot included, so the periodic
    job can count what has come in since.
    """

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    base_model: Mapped[str] = mapped_column(String(300))
    adapter_path: Mapped[str] = mapped_column(String(2000))
    status: Mapped[str] = mapped_column(String(20), index=True)  # candidate | active | retired | rejected
    data_hash: Mapped[str | None] = mapped_column(String(64))
    snapshot_path: Mapped[str | None] = mapped_column(String(2000))
    feedback_through_id: Mapped[int | None]
    training_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    evaluation_metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)  # why the gate promoted or rejected it, or why it was rolled back
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class VerifiedAnswer(Base):
    """An answer an agent approved for a question; later questions close enough to it get it verbatim.

    ``embedding`` is the question's vector from ``embedding_model``; when the configured embedding
    model changes, the vector is recomputed on the next lookup rather than compared across models.
    """

    __tablename__ = "verified_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    kb: Mapped[str] = mapped_column(String(200), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    embedding: Mapped[list[Any] | None] = mapped_column(JSON)
    embedding_model: Mapped[str | None] = mapped_column(String(300))
    approved_by: Mapped[str] = mapped_column(String(200))
    source_feedback_id: Mapped[int | None] = mapped_column(ForeignKey("feedback.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    """Someone who logs in to the operator dashboard or the admin page (the chat needs no login).

    Only an Argon2 hash of the password is stored (``ui.auth``); ``role`` is operator or admin,
    and an admin may do everything an operator may. ``active`` False locks an account out
    without deleting who did what.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # operator | admin
    password_hash: Mapped[str] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    knowledge_bases: Mapped[list[Any] | None] = mapped_column(JSON)  # an operator's knowledge bases; None: all


class LoginAttempt(Base):
    """One try to log in, kept to slow down guessing per user name and per client address."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_name_at", "name", "at"), Index("ix_login_attempts_client_at", "client", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    name: Mapped[str] = mapped_column(String(200))
    client: Mapped[str | None] = mapped_column(String(200))
    ok: Mapped[bool]


class AuditEntry(Base):
    """Who did what, for admins to read: logins, user and knowledge-base changes, reviews, promotions."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    client: Mapped[str | None] = mapped_column(String(200))


class ApiKey(Base):
    """A key for the HTTP API (`helpmate keys create`): role, knowledge bases, requests per minute.

    Only a SHA-256 hash is kept: a key is 40 random characters, so a fast hash cannot be reversed,
    and each request is checked with one indexed lookup (Argon2 suits passwords people choose).
    ``prefix`` tells keys apart in lists; a revoked key stays so the audit log can name it.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))  # customer | operator | admin
    knowledge_bases: Mapped[list[Any] | None] = mapped_column(JSON)  # None: all the role may use
    rate_limit: Mapped[int]  # requests per minute
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiRateWindow(Base):
    """Requests of one API key in one minute, counted here so that every API worker shares the count."""

    __tablename__ = "api_rate_windows"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    window: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # minutes since 1970
    requests: Mapped[int]


class ApiConversation(Base):
    """The hash of the secret that continues, reads and rates a conversation started through the API
    (a customer key sits in a web page, so the key alone must not reach anyone's conversation)."""

    __tablename__ = "api_conversations"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True,
                                                 autoincrement=False)
    secret_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class IngestionJob(Base):
    """An ingestion submitted through the API, run by one API process (``worker``, host:pid) and polled
    through any; ``summary`` is what `helpmate ingest --json` prints, ``results`` one entry per file."""

    __tablename__ = "ingestion_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kb: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(String(10))  # upload | folder
    paths: Mapped[list[Any]] = mapped_column(JSON)
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # include, exclude, prune
    status: Mapped[str] = mapped_column(String(10), index=True)  # queued | running | succeeded | partial | failed
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    results: Mapped[list[Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
