"""The API under test, served for real: uvicorn on a loopback port, in a thread of the test process
(so it shares the models the session already loaded), against a real database and index.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port until the block ends; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def key(settings, role: str, kbs: tuple[str, ...] = (), rate_limit: int = 10_000, name: str | None = None) -> str:
    """A fresh API key of ``role`` (created as `helpmate keys create` does)."""
    from assistant.access import Caller
    from ui.api.keys import create_key

    secret, _ = create_key(settings, role, kbs, name or f"test {role}", rate_limit, Caller.staff("admin", "test"))
    return secret


def headers(api_key: str, secret: str | None = None) -> dict[str, str]:
    out = {"Authorization": f"Bearer {api_key}"}
    if secret:
        out["X-Conversation-Secret"] = secret
    return out


def chat(base: str, api_key: str, text: str, kb: str, timeout: float = 600, **extra: Any) -> httpx.Response:
    """One non-streaming chat turn over HTTP."""
    body = {"model": f"helpmate/{kb}", "messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(f"{base}/v1/chat/completions", json=body, headers=headers(api_key), timeout=timeout)


def assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The response is ``status`` with OpenAI's error shape (and no traceback); returns the error."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["message"]
    assert "Traceback" not in response.text and "/work/" not in response.text and ".py" not in error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


@contextmanager
def database_env(root, database: str) -> Iterator[Any]:
    """HELPMATE_DATA_DIR under ``root`` and the database under test: SQLite there, or a PostgreSQL schema
    of its own (dropped afterwards); yields the settings. Skips (fails under CI) without PostgreSQL."""
    import uuid

    import pytest
    import sqlalchemy

    from assistant.config import get_settings
    from assistant.database import dispose_engines
    from tests.conftest import POSTGRES_URL, missing, postgres_unavailable

    schema = admin = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HELPMATE_DATA_DIR", str(root / "data"))
        patch.setenv("HELPMATE_LLM_BACKEND", "local")
        if database == "postgresql":
            reason = postgres_unavailable()
            if reason:
                missing(reason)
            schema = f"t_{uuid.uuid4().hex[:12]}"
            admin = sqlalchemy.create_engine(POSTGRES_URL)
            with admin.begin() as connection:
                connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
            patch.setenv("HELPMATE_DATABASE_URL", f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
        else:
            patch.delenv("HELPMATE_DATABASE_URL", raising=False)
        get_settings.cache_clear()
        try:
            yield get_settings()
        finally:
            dispose_engines()
            get_settings.cache_clear()
            if admin is not None:
                with admin.begin() as connection:
                    connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
                admin.dispose()


def real_agent(settings, embedder, **overrides: Any) -> Any:
    """The support agent on ``settings`` (with ``overrides``), sharing the session's embedding model."""
    from assistant.agent import SupportAgent
    from assistant.answering.assistant import Assistant
    from assistant.retrieval.retriever import Retriever

    settings = settings.model_copy(update=overrides) if overrides else settings
    return SupportAgent(settings, Assistant(settings, Retriever(settings, embedder)))


@contextmanager
def demo_env(root, database: str, snapshot, embedder) -> Iterator[Any]:
    """``database_env`` holding the demo help center as the public knowledge base "demo": on SQLite a
    copy of ``snapshot`` (the ``demo_snapshot`` fixture), on PostgreSQL ingested into its schema."""
    import shutil

    from assistant.access import Caller, set_visibility
    from ingest.pipeline import Ingestor
    from tests.conftest import REPO

    if database == "sqlite":
        shutil.copytree(snapshot, root / "data")
    with database_env(root, database) as settings:
        if database != "sqlite":
            summary = Ingestor("demo", settings, embedder, show_progress=False).run([REPO / "demo" / "helpcenter"])
            assert not summary.failed, summary.failed
            set_visibility(settings, "demo", "public", Caller.staff("admin", "test"))
        yield settings
