"""Which model the assistant answers with, and making the vLLM server serve it: the one place that says.

The base model is the packaged SmolLM2 checkpoint (``modelstore``). `helpmate finetune
train-answerer` writes a LoRA adapter for it, the grounded answerer, to ``answerer/`` (trained on
Helpmate's prompt format: answer from the numbered passages with a citation, or say "I don't
know"), and ``HELPMATE_ANSWERER=adapter`` makes it answer. None ships yet and the default is
``base``: the one trained on 2026-11-30 got the model's own answers past the support check, where
the bare 135M model almost never does, but on the demo questions those answers lowered term
containment (BENCHMARKS.md, "Grounded-answer adapter"). `helpmate finetune` (the ``finetune``
package) trains, evaluates, promotes and rolls back further adapters as model versions, starting
from the answerer when it is chosen; at most one is ``active``, and none means the default model.
``active_model`` turns that into a name and an adapter folder for either backend, and
``load_adapter`` / ``ensure_served`` make a running vLLM server serve the adapter under that name
(`helpmate serve-model` serves the chosen answerer from the start).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import ModelVersion
from assistant.modelstore import LLM_NAME

STATUSES: tuple[str, ...] = ("candidate", "active", "retired", "rejected")
ANSWERER_DIR = Path(__file__).with_name("answerer")  # written by `helpmate finetune train-answerer`
ANSWERER_NAME = "helpmate-answerer"
log = logging.getLogger(__name__)

_served: set[tuple[str, str]] = set()
_served_lock = threading.Lock()


class VersionError(RuntimeError):
    """A model version could not be found, loaded or switched; the message says what to fix."""


@dataclass(frozen=True)
class ActiveModel:
    """The model name the assistant answers with, and its LoRA adapter (None: the base model)."""

    name: str
    adapter_path: Path | None


def active_version(settings: Settings) -> ModelVersion | None:
    """The promoted version the assistant answers with, or None for the base model."""
    with session_scope(settings) as session:
        return session.scalars(select(ModelVersion).where(ModelVersion.status == "active")
                               .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc()).limit(1)).first()


def answerer_adapter(settings: Settings) -> Path | None:
    """The grounded-answer adapter with ``HELPMATE_ANSWERER=adapter``, else None (also when a
    source checkout has not trained it)."""
    if settings.answerer == "base" or not (ANSWERER_DIR / "adapter_config.json").exists():
        return None
    return ANSWERER_DIR


def default_model(settings: Settings) -> ActiveModel:
    """What answers while no fine-tuned version is active: the answerer adapter, else the base model."""
    path = answerer_adapter(settings)
    return ActiveModel(ANSWERER_NAME, path) if path is not None else ActiveModel(LLM_NAME, None)


def active_model(settings: Settings) -> ActiveModel:
    """The active version's name and adapter, or the default model (``default_model``) when none is active.

    An active version whose adapter folder is gone answers with the default model (logged), so the
    assistant keeps working while the registry is put right.
    """
    active = active_version(settings)
    if active is None:
        return default_model(settings)
    path = Path(active.adapter_path)
    if not (path / "adapter_config.json").exists():
        fallback = default_model(settings)
        log.warning("the active model version %s has no adapter at %s; answering with %s "
                    "(`helpmate finetune rollback` makes the registry agree)", active.name, path, fallback.name)
        return fallback
    return ActiveModel(active.name, path)


def version_row(session: Session, name: str) -> ModelVersion:
    """One version by name in an open session; the error says how to list them."""
    row = session.scalars(select(ModelVersion).where(ModelVersion.name == name)).first()
    if row is None:
        raise VersionError(f"model version {name!r} does not exist; `helpmate finetune versions` lists them")
    return row


def get_version(name: str, settings: Settings) -> ModelVersion:
    with session_scope(settings) as session:
        return version_row(session, name)


def list_versions(settings: Settings) -> list[ModelVersion]:
    """Every version, oldest first."""
    with session_scope(settings) as session:
        return list(session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all())


def feedback_trained_through(settings: Settings) -> int | None:
    """The newest feedback id any training run has used (None when nothing was trained yet)."""
    with session_scope(settings) as session:
        return session.scalar(select(func.max(ModelVersion.feedback_through_id)))


def _client(base_url: str, api_key: str, timeout_s: float) -> httpx.Client:
    return httpx.Client(base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s)


def served_models(base_url: str, api_key: str = "EMPTY", timeout_s: float = 120.0) -> list[str]:
    """The model names the server at ``base_url`` lists (base model and loaded adapters)."""
    try:
        with _client(base_url, api_key, timeout_s) as client:
            response = client.get("/models")
        return [m["id"] for m in response.json().get("data", [])]
    except (httpx.HTTPError, ValueError) as error:
        raise VersionError(f"the vLLM server at {base_url} is not reachable ({error}); start it with "
                           "`helpmate serve-model --background`, or promote with --no-vllm to switch the local backend only") from error


def load_adapter(base_url: str, name: str, adapter_path: str, api_key: str = "EMPTY", timeout_s: float = 120.0) -> None:
    """Load an adapter into the running server under ``name`` at run time (no-op when it is listed already).

    ``helpmate serve-model`` starts the server with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``, which allows it.
    """
    if name in served_models(base_url, api_key, timeout_s):
        return
    with _client(base_url, api_key, timeout_s) as client:
        response = client.post("/load_lora_adapter", json={"lora_name": name, "lora_path": adapter_path})
    if response.status_code != 200 and "already" not in response.text.lower():
        hint = (" Was the server started by `helpmate serve-model` (it allows run-time LoRA loading)?"
                if response.status_code in (404, 405) else "")
        raise VersionError(f"the vLLM server at {base_url} did not load {name} from {adapter_path}: "
                           f"HTTP {response.status_code} {response.text[:300]}.{hint}")


def unload_adapter(base_url: str, name: str, api_key: str = "EMPTY", timeout_s: float = 120.0) -> None:
    with _client(base_url, api_key, timeout_s) as client:
        client.post("/unload_lora_adapter", json={"lora_name": name})


def ensure_served(base_url: str, name: str, adapter_path: str, api_key: str = "EMPTY", timeout_s: float = 30.0) -> bool:
    """``load_adapter`` once per process and server, for the answer path: a server restarted since the
    promotion gets the adapter back. Returns whether it is served; a server that cannot be reached
    is left alone (the first request then says what to start)."""
    key = (base_url.rstrip("/"), name)
    with _served_lock:
        if key in _served:
            return True
    try:
        load_adapter(base_url, name, adapter_path, api_key, timeout_s)
    except (VersionError, httpx.HTTPError) as error:
        log.warning("could not make %s serve adapter %s: %s", key[0], name, error)
        return False
    with _served_lock:
        _served.add(key)
    return True
