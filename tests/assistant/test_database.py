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


def test_the_models_match_what_the_migrations_create(db_settings):
    """The typed models and the migrations describe the same schema (a column added to one only fails here)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from assistant.database.models import Base

    with get_engine(db_settings).connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_trust_migration_marks_customer_ratings_for_review_and_downgrades(db_settings):
    """0006 keeps staff feedback approved, makes earlier customer ratings wait for review, and undoes cleanly."""
    from alembic import command
    from alembic.config import Config

    from assistant.database import MIGRATIONS_DIR

    engine = get_engine(db_settings)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    columns = {c["name"] for c in sqlalchemy.inspect(engine).get_columns("feedback")}
    assert "review_status" not in columns and "audit_log" not in sqlalchemy.inspect(engine).get_table_names()
    with engine.begin() as connection:
        for given_by in ("customer", "agent"):
            connection.execute(sqlalchemy.text(
                "INSERT INTO feedback (conversation_key, question, answer, rating, given_by, source, created_at) "
                "VALUES ('c1', 'Q?', 'A.', 'down', :by, 'api', CURRENT_TIMESTAMP)"), {"by": given_by})
    migrate(engine)
    with engine.connect() as connection:
        rows = dict(connection.execute(sqlalchemy.text("SELECT given_by, review_status FROM feedback")).all())
        visibility = connection.execute(sqlalchemy.text("SELECT count(*) FROM knowledge_bases WHERE visibility <> 'internal'")).scalar()
    assert rows == {"customer": "pending", "agent": "approved"} and visibility == 0


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
