"""Model versions: record a trained adapter, promote it into the running vLLM server, roll back.

Promotion loads the adapter into the running server at run time (``POST /v1/load_lora_adapter``,
which ``helpmate serve-model`` allows with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``), under the
version's own name: names are never reused, because vLLM may serve a stale cached adapter when a
changed one is loaded under an old name. The previous version stays loaded, so a rollback is
instant; older ones are unloaded. Only after the server has the adapter does the database mark it
``active``, and the assistant (``assistant.llm.versions.active_model``) answers with the active version from
then on, on the vLLM and on the local backend alike.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import ModelVersion
from assistant.llm.versions import VersionError, load_adapter, served_models, unload_adapter, version_row

KEEP_LOADED = 2  # the active version and the one before it, for rollback


def _now() -> datetime:
    return datetime.now(timezone.utc)


def new_version_name(data_hash: str, settings: Settings) -> str:
    """``helpmate-ft-<n>-<data hash>``: a name no earlier version had, so vLLM never serves a stale adapter."""
    with session_scope(settings) as session:
        number = int(session.scalar(select(func.count(ModelVersion.id))) or 0) + 1
        taken = set(session.scalars(select(ModelVersion.name)).all())
    name = f"helpmate-ft-{number:03d}-{data_hash[:8]}"
    while name in taken:
        number += 1
        name = f"helpmate-ft-{number:03d}-{data_hash[:8]}"
    return name


def record_candidate(name: str, adapter_path: Path, base_model: str, training: dict[str, Any], data_hash: str | None,
                     snapshot_path: Path | None = None, feedback_through_id: int | None = None,
                     *, settings: Settings) -> ModelVersion:
    """Register a trained adapter as a ``candidate``."""
    with session_scope(settings) as session:
        row = ModelVersion(name=name, base_model=base_model, adapter_path=str(Path(adapter_path).resolve()), status="candidate",
                           data_hash=data_hash, snapshot_path=str(snapshot_path) if snapshot_path else None,
                           feedback_through_id=feedback_through_id, training_metrics=training, created_at=_now())
        session.add(row)
        session.flush()
    return row


def set_evaluation(name: str, metrics: dict[str, Any], rejected_because: str | None = None, *, settings: Settings) -> None:
    """Store the evaluation; a candidate the gate turned down becomes ``rejected`` with the reason."""
    with session_scope(settings) as session:
        row = version_row(session, name)
        row.evaluation_metrics = metrics
        if rejected_because is not None:
            row.status, row.reason = "rejected", rejected_because


def _keep_loaded(session) -> list[str]:
    rows = session.scalars(select(ModelVersion).where(ModelVersion.promoted_at.is_not(None), ModelVersion.status.in_(("active", "retired")))
                           .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc()).limit(KEEP_LOADED)).all()
    return [row.name for row in rows]


def _unload_old(base_url: str, settings: Settings) -> list[str]:
    with session_scope(settings) as session:
        keep = set(_keep_loaded(session))
        ours = set(session.scalars(select(ModelVersion.name)).all())
    dropped = [name for name in served_models(base_url, settings.vllm_api_key) if name in ours and name not in keep]
    for name in dropped:
        unload_adapter(base_url, name, settings.vllm_api_key)
    return dropped


def promote(name: str, settings: Settings, vllm_url: str | None = None, reason: str | None = None) -> ModelVersion:
    """Make ``name`` the active version: load it into the vLLM server at ``vllm_url`` (when given)
    first, then mark it active and the previous one retired (still loaded, for rollback)."""
    with session_scope(settings) as session:
        row = version_row(session, name)
        if row.status == "active":
            raise VersionError(f"{name} is already the active version")
        if not (Path(row.adapter_path) / "adapter_config.json").exists():
            raise VersionError(f"the adapter of {name} is missing at {row.adapter_path}; train a new version")
        adapter_path = row.adapter_path
    if vllm_url:
        load_adapter(vllm_url, name, adapter_path, settings.vllm_api_key)
    with session_scope(settings) as session:
        for old in session.scalars(select(ModelVersion).where(ModelVersion.status == "active")).all():
            old.status, old.retired_at = "retired", _now()
        row = version_row(session, name)
        row.status, row.promoted_at, row.retired_at = "active", _now(), None
        if reason:
            row.reason = reason
    if vllm_url:
        _unload_old(vllm_url, settings)
    return row


def rollback(settings: Settings, vllm_url: str | None = None) -> ModelVersion | None:
    """Withdraw the active version (it becomes ``rejected``) and return to the one promoted before
    it, or to the base model when there is none; returns the version now active (None: base)."""
    with session_scope(settings) as session:
        current = session.scalars(select(ModelVersion).where(ModelVersion.status == "active")).first()
        if current is None:
            raise VersionError("no fine-tuned version is active; the assistant already answers with the base model")
        previous = session.scalars(select(ModelVersion).where(ModelVersion.status == "retired", ModelVersion.promoted_at.is_not(None))
                                   .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc()).limit(1)).first()
        previous_name = previous.name if previous else None
        previous_path = previous.adapter_path if previous else None
    if vllm_url and previous_name:
        load_adapter(vllm_url, previous_name, previous_path, settings.vllm_api_key)  # normally still loaded
    with session_scope(settings) as session:
        current = version_row(session, current.name)
        current.status, current.retired_at = "rejected", _now()
        current.reason = f"rolled back at {_now().isoformat(timespec='seconds')}" + (f"; previous reason: {current.reason}" if current.reason else "")
        restored = None
        if previous_name:
            restored = version_row(session, previous_name)
            restored.status, restored.retired_at, restored.promoted_at = "active", None, _now()
    return restored


def data_hash_of(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
