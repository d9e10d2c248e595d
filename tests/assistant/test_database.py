"""The schema comes from migrations and works the same on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy
from sqlalchemy import select

from assistant.database import get_engine, migrate, session_scope
from assistant.database.models import Chunk, Document, KnowledgeBase


def test_migrations_create_the_schema_and_are_idempotent(db_settings):
    engine = get_engine(db_settings)
    migrate(engine)  # a second upgrade is a no-op
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    assert {"knowledge_bases", "documents", "chunks", "ingestion_runs", "alembic_version"} <= tables
    assert {"conversations", "messages", "alerts", "feedback", "model_versions", "verified_answers"} <= tables


def test_feedback_migration_downgrades_and_upgrades_again(db_settings):
    from alembic import command
    from alembic.config import Config

    from assistant.database import MIGRATIONS_DIR

    engine = get_engine(db_settings)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    assert not {"feedback", "model_versions", "verified_answers"} & set(sqlalchemy.inspect(engine).get_table_names())
    migrate(engine)
    assert {"feedback", "model_versions", "verified_answers"} <= set(sqlalchemy.inspect(engine).get_table_names())


def test_documents_cascade_to_chunks(db_settings):
    with session_scope(db_settings) as session:
        kb = KnowledgeBase(name="kb")
        session.add(kb)
        session.flush()
        doc = Document(kb_id=kb.id, source="a.md", path="a.md", format="markdown", file_hash="x", status="indexed")
        session.add(doc)
        session.flush()
        session.add(Chunk(document_id=doc.id, kb_id=kb.id, ordinal=0, text="hello", token_count=1))
    with session_scope(db_settings) as session:
        session.execute(sqlalchemy.delete(Document))
    with session_scope(db_settings) as session:
        assert session.scalars(select(Chunk)).all() == []


def test_sqlite_runs_in_wal_mode(settings):
    with get_engine(settings).connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_failed_transaction_leaves_nothing(db_settings):
    try:
        with session_scope(db_settings) as session:
            session.add(KnowledgeBase(name="half-written"))
            session.flush()
            raise RuntimeError("crash mid-write")
    except RuntimeError:
        pass
    with session_scope(db_settings) as session:
        assert session.scalars(select(KnowledgeBase)).all() == []
