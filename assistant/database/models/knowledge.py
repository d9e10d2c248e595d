"""Knowledge bases, their documents and chunks, and ingestion runs and jobs.

Chunk text and metadata live here, not in a pickle beside the index: the FAISS index holds only
vectors and the chunk ids below, so loading an index never runs code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from assistant.database.models.base import Base, UTCDateTime, utcnow


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
