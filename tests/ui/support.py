"""A data directory for the UI tests: a knowledge base, imported conversations and two users.

Real everything: the folder is ingested with the packaged embedding model, the conversations are
scored by the sentiment model, and the users' passwords are random and hashed with Argon2.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from tests.conftest import REPO

DEMO_HELPCENTER = REPO / "demo" / "helpcenter"
DEMO_CONVERSATIONS = REPO / "demo" / "conversations.csv"


@dataclass
class UIData:
    data_dir: Path
    kb: str
    operator: tuple[str, str]  # name, password
    admin: tuple[str, str]

    def env(self) -> dict[str, str]:
        """The environment a `streamlit run` of the app needs to serve this data."""
        env = {key: value for key, value in os.environ.items() if key != "HELPMATE_DATABASE_URL"}
        env.update(HELPMATE_DATA_DIR=str(self.data_dir), HF_HUB_OFFLINE="1", HELPMATE_UI_KB=self.kb,
                   HELPMATE_LLM_BACKEND="local")
        env.setdefault("HELPMATE_MODELS_DIR", str(REPO / "data" / "models"))
        return env


def artifacts_dir() -> Path:
    """Where screenshots go: $HELPMATE_TEST_ARTIFACTS, else test-artifacts/ (git-ignored)."""
    folder = Path(os.environ.get("HELPMATE_TEST_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def prepare(data_dir: Path, documents: Path, kb: str, conversations: Path | None = DEMO_CONVERSATIONS) -> UIData:
    """Ingest ``documents`` as ``kb`` (public), import ``conversations`` and add an operator and an admin,
    using the settings of the current environment (the caller points HELPMATE_DATA_DIR here)."""
    from assistant.access import Caller, set_visibility
    from assistant.config import get_settings
    from assistant.conversations.store import import_conversations
    from ingest.pipeline import ingest_paths
    from ui.auth import add_user

    get_settings.cache_clear()
    settings = get_settings()
    assert settings.data_dir == data_dir, "point HELPMATE_DATA_DIR at data_dir first"
    summary = ingest_paths([documents], kb, settings, show_progress=False)
    assert not summary.failed, summary.failed
    set_visibility(settings, kb, "public", Caller.staff("admin", "test"))  # offered in the chat, as `make demo` does
    if conversations is not None:
        report = import_conversations(conversations, kb=kb, settings=settings)
        assert report.messages_added > 0 and not report.bad_rows, report.bad_rows[:3]
    operator = ("olivia", secrets.token_urlsafe(10))
    admin = ("adam", secrets.token_urlsafe(10))
    add_user(*operator, role="operator", settings=settings)
    add_user(*admin, role="admin", settings=settings)
    return UIData(data_dir, kb, operator, admin)
