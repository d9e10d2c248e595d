"""API keys: `helpmate keys` creates (shown once, stored hashed, audited), lists and revokes them; the
per-key rate limit is counted in the database, so two API processes share it (429 with Retry-After).
On SQLite and PostgreSQL; `helpmate api --workers 2` is started for real as well.
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from assistant.access import AccessDenied, audit_log
from assistant.database import session_scope
from assistant.database.models import ApiKey, ApiRateWindow, KnowledgeBase
from tests.api.support import assert_openai_error, free_port, headers, key, serve
from tests.conftest import REPO
from ui.api.app import create_app
from ui.api.keys import check_key
from ui.cli import app as cli


def _kb(settings, name: str, visibility: str = "public") -> None:
    with session_scope(settings) as session:
        session.add(KnowledgeBase(name=name, visibility=visibility))


def _clear_of_minute_edge() -> None:
    """Start a rate-limit check early in a minute, so its requests all fall in one counting window."""
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)


def test_keys_are_shown_once_stored_hashed_listed_revoked_and_audited(db_settings):
    _kb(db_settings, "help")
    _kb(db_settings, "staff-only", "internal")
    runner = CliRunner()
    created = runner.invoke(cli, ["keys", "create", "--role", "customer", "--kb", "help", "--name", "website widget",
                                  "--rate-limit", "30"])
    assert created.exit_code == 0, created.output
    (secret,) = [line for line in created.stdout.splitlines() if line.startswith("hm_")]  # on a line of its own
    assert re.fullmatch(r"hm_[A-Za-z0-9_-]{40}", secret)
    info = check_key(db_settings, secret)
    assert (info.role, info.knowledge_bases, info.rate_limit) == ("customer", frozenset({"help"}), 30)
    with session_scope(db_settings) as session:
        row = session.scalars(select(ApiKey)).one()
        assert secret not in (row.key_hash, row.prefix) and len(row.key_hash) == 64 and secret.startswith(row.prefix)

    listed = runner.invoke(cli, ["keys", "list"])
    assert listed.exit_code == 0 and "website widget" in listed.stdout and row.prefix in listed.stdout
    assert secret not in listed.stdout

    for args, message in ((["--role", "customer", "--kb", "nowhere"], "does not exist"),
                          (["--role", "customer", "--kb", "staff-only"], "is internal"),
                          (["--role", "admin", "--kb", "help"], "reaches every knowledge base"),
                          (["--role", "boss"], "choose customer, operator or admin")):
        refused = runner.invoke(cli, ["keys", "create", *args])
        assert refused.exit_code == 1 and message in refused.output and "Traceback" not in refused.output

    revoked = runner.invoke(cli, ["keys", "revoke", str(row.id)])
    assert revoked.exit_code == 0, revoked.output
    with pytest.raises(AccessDenied, match="unknown or revoked"):
        check_key(db_settings, secret)
    assert runner.invoke(cli, ["keys", "revoke", "hm_nothing"]).exit_code == 1
    actions = [(entry.action, entry.actor) for entry in audit_log(db_settings)]
    assert ("api_key.create", getpass.getuser()) in actions and ("api_key.revoke", getpass.getuser()) in actions


def test_the_rate_limit_is_counted_in_the_database_and_shared_by_two_api_processes(db_settings):
    """Two apps (as two workers would be) on one database: the key's 5 requests a minute are spent
    across both, the next gets 429 with Retry-After, and a revoked key is refused at once."""
    limited = key(db_settings, "operator", rate_limit=5)
    _clear_of_minute_edge()
    with serve(create_app(db_settings)) as first, serve(create_app(db_settings)) as second:
        answers = [httpx.get(f"{base}/v1/models", headers=headers(limited), timeout=30)
                   for base in (first, second, first, second, first, second, first)]
        assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
        assert_openai_error(answers[-1], 429, "rate_limit_exceeded")
        assert 1 <= int(answers[-1].headers["Retry-After"]) <= 60
        other = key(db_settings, "admin")
        assert httpx.get(f"{second}/v1/models", headers=headers(other), timeout=30).status_code == 200  # per key
        with session_scope(db_settings) as session:
            counted = session.scalars(select(ApiRateWindow.requests).where(ApiRateWindow.key_id == check_key(db_settings, limited).id))
            assert list(counted) == [7]
            row = session.scalars(select(ApiKey).where(ApiKey.role == "admin")).one()
            assert row.last_used_at is not None
        subprocess_free = CliRunner().invoke(cli, ["keys", "revoke", str(row.id)])
        assert subprocess_free.exit_code == 0
        assert_openai_error(httpx.get(f"{first}/v1/models", headers=headers(other), timeout=30), 401, "invalid_api_key")


def test_helpmate_api_serves_with_two_workers(settings, tmp_path):
    """The real command: two uvicorn worker processes, health and readiness, the docs, the widget,
    and a rate limit that holds across the workers."""
    _kb(settings, "help")
    limited = key(settings, "customer", ("help",), rate_limit=6)
    port = free_port()
    env = {**os.environ, "HELPMATE_DATA_DIR": str(settings.data_dir), "HF_HUB_OFFLINE": "1"}
    env.pop("HELPMATE_DATABASE_URL", None)
    log = tmp_path / "api.log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "ui.cli", "api", "--port", str(port), "--workers", "2",
                                    "--log-level", "warning"], cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        ready = httpx.get(f"{base}/readyz", timeout=30)
        # No index was built for "help": not ready, and the answer says what to do without a server path.
        assert ready.status_code == 503 and "ingest" in ready.json()["checks"]["index"]
        assert str(settings.data_dir) not in ready.text and ready.json()["checks"]["database"] == "ok"
        assert httpx.get(f"{base}/docs", timeout=30).status_code == 200
        assert "/v1/chat/completions" in httpx.get(f"{base}/openapi.json", timeout=30).json()["paths"]
        widget = httpx.get(f"{base}/widget.js", timeout=30)
        assert widget.status_code == 200 and "javascript" in widget.headers["content-type"]
        _clear_of_minute_edge()
        codes = [httpx.get(f"{base}/v1/models", headers=headers(limited), timeout=30).status_code for _ in range(9)]
        assert codes == [200] * 6 + [429] * 3
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    assert "Traceback" not in log.read_text()
