"""Database engine, sessions and migrations.

SQLite (the default) runs in WAL mode so the chat, the dashboard and a batch job can read while
another process writes; PostgreSQL is chosen by URL. The schema is created and upgraded only by
Alembic migrations, run on first use of a database.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from assistant.config import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    """An engine for ``url`` with Helpmate's connection settings (not migrated).

    A server database gets a pool of ``pool_size`` connections kept open plus up to
    ``max_overflow`` opened under load (``HELPMATE_DB_POOL_SIZE``, ``HELPMATE_DB_MAX_OVERFLOW``):
    every chat turn holds a connection only for its short sessions, so a pool a little larger
    than the number of worker threads serves many conversations; ``pool_pre_ping`` survives a
    restarted server. SQLite uses SQLAlchemy's default pool (one file, no server to protect).
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent, cheap when already there)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def get_engine(settings: Settings) -> Engine:
    """The process-wide, migrated engine for the configured database."""
    url = settings.database
    with _lock:
        if url not in _engines:
            engine = make_engine(url, settings.db_pool_size, settings.db_max_overflow)
            migrate(engine)
            _engines[url] = engine
        return _engines[url]


def dispose_engines() -> None:
    """Close every pooled connection (tests switch databases between cases)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session committed on success and rolled back on any error."""
    session = sessionmaker(get_engine(settings), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
