"""A knowledge base's documents and their passages as stored: what the assistant reads of each file.

Headings of PDFs and plain text are found from where lines stand, tables keep their rows, running
headers are left out; a team checks how its own files came out here, before a customer's question
shows it. Both `helpmate kb show` and the admin page read through these functions.

    with session_scope(settings) as session:
        rows = documents(session, caller, "support")
        source, passages = document_passages(session, caller, "support", "returns/returning-an-item.md")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from assistant.access import Caller
from assistant.database.models import Chunk, Document, KnowledgeBase


@dataclass(frozen=True)
class DocumentRow:
    source: str
    title: str
    format: str
    status: str
    chunks: int
    size_bytes: int | None
    error: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class Passage:
    number: int  # 1 for a document's first passage
    section: str | None
    page: int | None
    tokens: int
    text: str


def _check(session: Session, caller: Caller, kb: str) -> None:
    caller.check_staff(kb, f"the documents of {kb!r}")
    if session.scalar(select(KnowledgeBase.id).where(KnowledgeBase.name == kb)) is None:
        raise ValueError(f"there is no knowledge base {kb!r}; `helpmate kb list` shows them")


def documents(session: Session, caller: Caller, kb: str, failed_only: bool = False) -> list[DocumentRow]:
    """The knowledge base's documents, failed ones first, for its staff."""
    _check(session, caller, kb)
    query = (select(Document).join(KnowledgeBase, Document.kb_id == KnowledgeBase.id)
             .where(KnowledgeBase.name == kb).order_by(Document.status, Document.source))
    if failed_only:
        query = query.where(Document.status == "failed")
    return [DocumentRow(d.source, d.title, d.format, d.status, d.chunk_count, d.size_bytes, d.error, d.updated_at)
            for d in session.scalars(query)]


def document_passages(session: Session, caller: Caller, kb: str, source: str) -> tuple[str, list[Passage]]:
    """The document's full source and its passages in order, for the knowledge base's staff.

    ``source`` is the stored source or its end after a "/" ("returns/returning-an-item.md"); one that
    matches no document, or several, is a ValueError that says which to use.
    """
    _check(session, caller, kb)
    in_kb = select(Document.source).join(KnowledgeBase, Document.kb_id == KnowledgeBase.id).where(KnowledgeBase.name == kb)
    matches = (session.scalars(in_kb.where(Document.source == source)).all()
               or session.scalars(in_kb.where(Document.source.endswith("/" + source.lstrip("/"), autoescape=True))
                                  .limit(6)).all())
    if not matches:
        raise ValueError(f"knowledge base {kb!r} has no document {source!r}; `helpmate kb show {kb}` lists them")
    if len(matches) > 1:
        raise ValueError(f"{source!r} names {'more than 5' if len(matches) > 5 else len(matches)} documents of {kb!r}; "
                         "give more of the path: " + ", ".join(sorted(matches)[:5]))
    chunks = session.scalars(select(Chunk).join(Document, Chunk.document_id == Document.id)
                             .join(KnowledgeBase, Document.kb_id == KnowledgeBase.id)
                             .where(KnowledgeBase.name == kb, Document.source == matches[0]).order_by(Chunk.ordinal))
    return matches[0], [Passage(n, c.section, c.page, c.token_count, c.text) for n, c in enumerate(chunks, start=1)]
