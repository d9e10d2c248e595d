"""Shared fixtures: an isolated data directory per test, real models loaded once per session,
and the database under test (SQLite always; PostgreSQL where HELPMATE_TEST_POSTGRES_URL answers).

A test whose service, data set or browser is not here calls ``missing(reason)`` (or carries
``@pytest.mark.needs(condition, reason=...)``): it is skipped on a developer's machine, and fails
under CI (``CI=true``), so a CI run cannot go green by skipping what it was meant to test.
"""

from __future__ import annotations

import os
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def _checkout_settings():
    """The settings a `helpmate` command in this checkout resolves (helpmate.env, HELPMATE_*), read once,
    before any test points HELPMATE_DATA_DIR at a temporary folder."""
    from assistant.config import Settings

    return Settings()


CHECKOUT_SETTINGS = _checkout_settings()
# Each test gets its own data directory, but all share the models `make` prepared for this checkout.
os.environ.setdefault("HELPMATE_MODELS_DIR", str(CHECKOUT_SETTINGS.models_dir))
# The tests' webhook receivers listen on this machine; webhooks reach no private address unless allowed.
os.environ.setdefault("HELPMATE_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32")
POSTGRES_URL = os.environ.get("HELPMATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

_postgres_state: dict[str, str | None] = {}


def under_ci() -> bool:
    """Whether this run is CI's: ``CI`` set to true (as GitHub Actions, GitLab and .ci/run set it)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing(reason: str) -> NoReturn:
    """Something this test needs is not here: skip it, or under CI fail it, with ``reason``.

    For a test or a fixture. A whole module carries ``pytestmark = pytest.mark.needs(...)`` instead:
    failing at import would stop the CI run at collection rather than fail that module's tests.
    """
    __tracebackhide__ = True  # the skip is reported at the caller's line
    if under_ci():
        pytest.fail(f"{reason} (CI=true: a missing requirement fails the run; unset CI to skip instead)", pytrace=False)
    pytest.skip(reason)


def require(condition: object, reason: str) -> None:
    """``missing(reason)`` unless ``condition`` holds."""
    __tracebackhide__ = True
    if not condition:
        missing(reason)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs(condition, reason): run only where condition holds; otherwise skip, or under CI=true fail"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """``@pytest.mark.needs(condition, reason=...)``: checked before any fixture is set up, like ``skipif``."""
    for mark in item.iter_markers("needs"):
        try:
            require(*mark.args, **mark.kwargs)
        except pytest.skip.Exception as skipped:
            skipped._use_item_location = True  # reported at the test, as pytest does for skipif and fixtures
            raise


def postgres_unavailable() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when the server answers."""
    if "reason" not in _postgres_state:
        try:
            import sqlalchemy

            engine = sqlalchemy.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
            with engine.connect():
                pass
            engine.dispose()
            _postgres_state["reason"] = None
        except Exception as error:  # noqa: BLE001 - any failure means "not here"
            _postgres_state["reason"] = f"PostgreSQL not reachable at {POSTGRES_URL}: {type(error).__name__}"
    return _postgres_state["reason"]


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Settings pointing at a fresh data directory (SQLite)."""
    from assistant.config import get_settings
    from assistant.database import dispose_engines

    monkeypatch.setenv("HELPMATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HELPMATE_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    dispose_engines()
    get_settings.cache_clear()


def _postgres_schema_url() -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    return schema, f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_settings(request, tmp_path, monkeypatch):
    """Settings on each real database: SQLite, and PostgreSQL in a schema of its own."""
    import sqlalchemy

    from assistant.config import get_settings
    from assistant.database import dispose_engines

    monkeypatch.setenv("HELPMATE_DATA_DIR", str(tmp_path / "data"))
    schema = None
    if request.param == "postgresql":
        reason = postgres_unavailable()
        if reason:
            missing(reason)
        schema, url = _postgres_schema_url()
        admin = sqlalchemy.create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
        monkeypatch.setenv("HELPMATE_DATABASE_URL", url)
    else:
        monkeypatch.delenv("HELPMATE_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield get_settings()
    dispose_engines()
    get_settings.cache_clear()
    if schema:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """An Assistant beside a loopback vLLM server sets torch to one thread for the whole process
    (``use_answering_threads``); later tests get the machine's cores back."""
    yield
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != (os.cpu_count() or 1):
        torch.set_num_threads(os.cpu_count() or 1)


@pytest.fixture(scope="session")
def embedder():
    """The real packaged embedding model, loaded once."""
    from assistant.config import Settings
    from assistant.embeddings import get_embedder

    return get_embedder(Settings(data_dir=Path("/tmp")))


def pytest_terminal_summary(terminalreporter):
    reason = _postgres_state.get("reason")
    if reason:
        outcome = "failed (CI=true)" if under_ci() else "were skipped"
        terminalreporter.write_line(f"PostgreSQL tests {outcome}: {reason}", yellow=True)


def _free_loopback_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_vllm(settings, echo=print):
    """A real vLLM server started as `helpmate serve-model --background` does, on a free loopback port;
    stopped (with its engine processes) and its log removed on leaving."""
    from assistant.llm.vllm_server import ServeOptions, start_server, stop_server

    server = start_server(settings, ServeOptions(port=_free_loopback_port()), background=True, echo=echo)
    try:
        yield server
    finally:
        stop_server(settings, server)
        if server.log_path:
            server.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def vllm_server():
    """One real vLLM server for the whole test run (``running_vllm``); yields its base URL. The first run in a
    checkout installs vLLM into the checkout's <data_dir>/vllm-venv (minutes); later runs reuse it."""
    with running_vllm(CHECKOUT_SETTINGS.model_copy(update={"vllm_api_key": "EMPTY"})) as server:
        yield server.base_url
