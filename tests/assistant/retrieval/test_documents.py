"""A knowledge base's documents and passages as stored, read by its staff only (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from assistant.access import AccessDenied, Caller, set_visibility
from assistant.database import session_scope
from assistant.database.models import Chunk, Document
from assistant.retrieval.documents import document_passages, documents
from ingest.pipeline import Ingestor
from tests.helpers import make_helpcenter

ADMIN = Caller.staff("admin", "ada")


@pytest.fixture
def help_kb(db_settings, embedder, tmp_path):
    folder = make_helpcenter(tmp_path / "kb")
    (folder / "guides").mkdir()
    (folder / "guides" / "returns.md").write_text("# Returns in stores\n\nBring the receipt to any store.\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    Ingestor("help", db_settings, embedder, show_progress=False).run([folder])
    Ingestor("notes", db_settings, embedder, show_progress=False).run([folder / "guides"])
    return db_settings


def test_staff_read_documents_and_passages_in_order(help_kb):
    with session_scope(help_kb) as session:
        rows = documents(session, ADMIN, "help")
        assert [r.status for r in rows][:1] == ["failed"] and rows[0].source.endswith("broken.pdf") and rows[0].error
        assert [r.source.rsplit("/", 1)[-1] for r in documents(session, ADMIN, "help", failed_only=True)] == ["broken.pdf"]
        source, passages = document_passages(session, ADMIN, "help", "warranty.pdf")
        stored = session.scalars(select(Chunk).join(Document).where(Document.source == source).order_by(Chunk.ordinal)).all()
    assert source.endswith("/kb/warranty.pdf")
    assert [(p.number, p.text, p.page, p.section) for p in passages] == [
        (n, c.text, c.page, c.section) for n, c in enumerate(stored, start=1)]
    assert [p.page for p in passages] == [1, 2] and "three extra years" in passages[1].text


def test_a_document_is_named_by_its_source_or_the_end_of_it(help_kb):
    operator = Caller.staff("operator", "olga", ["help"])
    with session_scope(help_kb) as session:
        full, _ = document_passages(session, operator, "help", "guides/returns.md")
        assert document_passages(session, operator, "help", full)[0] == full
        with pytest.raises(ValueError, match=r"names 2 documents of 'help'; give more of the path"):
            document_passages(session, operator, "help", "returns.md")  # kb/returns.md and kb/guides/returns.md
        with pytest.raises(ValueError, match=r"has no document 'nope.md'; `helpmate kb show help` lists them"):
            document_passages(session, operator, "help", "nope.md")
        with pytest.raises(ValueError, match=r"there is no knowledge base 'gone'"):
            documents(session, ADMIN, "gone")


def test_customers_and_operators_of_other_knowledge_bases_read_nothing(help_kb):
    set_visibility(help_kb, "help", "public", by=ADMIN)  # customers search it, but do not read it whole
    customer = Caller.customer(help_kb, None)
    assert customer.may_use_kb("help")
    with session_scope(help_kb) as session:
        for caller in (customer, Caller.staff("operator", "nora", ["notes"])):
            with pytest.raises(AccessDenied):
                documents(session, caller, "help")
            with pytest.raises(AccessDenied):
                document_passages(session, caller, "help", "warranty.pdf")
        assert [r.source.rsplit("/", 1)[-1] for r in documents(session, Caller.staff("operator", "nora", ["notes"]), "notes")] \
            == ["returns.md"]
