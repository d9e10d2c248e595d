"""Fixtures of the API tests: the demo help center ingested once per run (copied into each test's
own data directory, which is much quicker than embedding it again), and a way to stop and restart
the run's vLLM server."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from urllib.parse import urlparse

import pytest

from tests.conftest import CHECKOUT_SETTINGS, REPO


@pytest.fixture(scope="session")
def demo_snapshot(tmp_path_factory, embedder):
    """A data directory (SQLite) holding the demo help center as knowledge base "demo", public."""
    from assistant.access import Caller, set_visibility
    from assistant.config import Settings
    from assistant.database import dispose_engines
    from ingest.pipeline import Ingestor

    folder = tmp_path_factory.mktemp("demo_snapshot") / "data"
    settings = Settings(data_dir=folder, database_url="", models_dir=CHECKOUT_SETTINGS.models_dir)
    summary = Ingestor("demo", settings, embedder, show_progress=False).run([REPO / "demo" / "helpcenter"])
    assert not summary.failed, summary.failed
    set_visibility(settings, "demo", "public", Caller.staff("admin", "test"))
    dispose_engines()  # everything is in the files now
    return folder


@dataclass
class ModelServer:
    """The run's vLLM server (``vllm_server``), which a test may freeze, kill and start again on its port."""

    base_url: str
    restarted: object = None

    def _pid(self) -> int:
        from assistant.llm.vllm_server import recorded_servers

        port = urlparse(self.base_url).port
        (server,) = [s for s in recorded_servers(CHECKOUT_SETTINGS) if s.port == port]
        return server.pid

    def pause(self) -> None:
        """Freeze the server and its engine where they are (SIGSTOP): streams stall, nothing finishes."""
        os.killpg(self._pid(), signal.SIGSTOP)

    def kill(self) -> None:
        """Stop it at once, as a crash or a killed container would (no graceful end of its streams)."""
        os.killpg(self._pid(), signal.SIGKILL)

    def restart(self) -> None:
        """Start it again on its port; a frozen or running one is killed first."""
        from assistant.llm.vllm_server import ServeOptions, start_server

        try:
            self.kill()
        except (ProcessLookupError, ValueError):  # already gone (ValueError: no longer recorded)
            pass
        settings = CHECKOUT_SETTINGS.model_copy(update={"vllm_api_key": "EMPTY"})
        self.restarted = start_server(settings, ServeOptions(port=urlparse(self.base_url).port), background=True,
                                      echo=lambda line: None)


@pytest.fixture(scope="session")
def model_server(vllm_server):
    """``vllm_server`` that can be stopped and started again; a restarted server is stopped at the end of
    the run (before ``vllm_server``'s own teardown, which finds its first process gone)."""
    from assistant.llm.vllm_server import stop_server

    server = ModelServer(vllm_server)
    yield server
    if server.restarted is not None:
        stop_server(CHECKOUT_SETTINGS.model_copy(update={"vllm_api_key": "EMPTY"}), server.restarted)
