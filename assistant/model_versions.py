"""Reading the registry of fine-tuned model versions: which adapter the assistant answers with.

`helpmate finetune` (the ``finetune`` package) trains, evaluates, promotes and rolls back
versions; the assistant only reads which one is ``active`` (at most one; none means the base
model) and makes sure the vLLM server it talks to serves it.
"""

from __future__ import annotations

import logging
import threading

import httpx
from sqlalchemy import func, select

from assistant.config import Settings, get_settings
from assistant.database import session_scope
from assistant.database.models import ModelVersion

STATUSES: tuple[str, ...] = ("candidate", "active", "retired", "rejected")
log = logging.getLogger(__name__)

_served: set[tuple[str, str]] = set()
_served_lock = threading.Lock()


def active_version(settings: Settings | None = None) -> ModelVersion | None:
    """The promoted version the assistant answers with, or None for the base model."""
    with session_scope(settings) as session:
        return session.scalars(select(ModelVersion).where(ModelVersion.status == "active")
                               .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc()).limit(1)).first()


def get_version(name: str, settings: Settings | None = None) -> ModelVersion:
    """One version by name; the error says how to list them."""
    with session_scope(settings) as session:
        row = session.scalars(select(ModelVersion).where(ModelVersion.name == name)).first()
    if row is None:
        raise ValueError(f"model version {name!r} does not exist; `helpmate finetune versions` lists them")
    return row


def list_versions(settings: Settings | None = None) -> list[ModelVersion]:
    """Every version, oldest first."""
    with session_scope(settings) as session:
        return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all())


def feedback_trained_through(settings: Settings | None = None) -> int | None:
    """The newest feedback id any training run has used (None when nothing was trained yet)."""
    with session_scope(settings) as session:
        return session.scalar(select(func.max(ModelVersion.feedback_through_id)))


def ensure_served(base_url: str, name: str, adapter_path: str, api_key: str = "EMPTY", timeout_s: float = 30.0) -> bool:
    """Make the vLLM server at ``base_url`` serve the adapter under ``name``, loading it at run time
    if it is not listed (a server restarted since the promotion). Returns whether it is served;
    a server that cannot be reached is left alone (the first request then says what to start)."""
    key = (base_url.rstrip("/"), name)
    with _served_lock:
        if key in _served:
            return True
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with httpx.Client(base_url=key[0], headers=headers, timeout=timeout_s) as client:
            listed = client.get("/models")
            names = {m.get("id") for m in listed.json().get("data", [])} if listed.status_code == 200 else set()
            if name not in names:
                loaded = client.post("/load_lora_adapter", json={"lora_name": name, "lora_path": adapter_path})
                if loaded.status_code != 200 and "already" not in loaded.text.lower():
                    log.warning("the vLLM server at %s did not load adapter %s from %s: HTTP %s %s", key[0], name,
                                adapter_path, loaded.status_code, loaded.text[:300])
                    return False
    except (httpx.HTTPError, ValueError) as error:
        log.warning("could not check that %s serves adapter %s: %s", key[0], name, error)
        return False
    with _served_lock:
        _served.add(key)
    return True
