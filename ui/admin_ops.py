"""What the admin page does, without Streamlit: save uploads and ingest them one file at a time,
list documents, ingestion runs and model versions, start a fine-tuning run in the background, and
show who may see what (knowledge-base visibility, operators' knowledge bases) and the audit log.

Uploads are ingested file by file so the page can show progress as each one finishes (ingestion
itself reports no progress to callers); each file is one ingestion run, recorded as usual.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import pandas as pd
from sqlalchemy import select

from assistant.access import Caller
from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import IngestionRun, KnowledgeBase, ModelVersion
from assistant.retrieval import documents as retrieval_documents

KB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_kb_name(name: str) -> str:
    """A knowledge-base name that is safe as a folder name; raises ValueError saying what is allowed."""
    name = name.strip()
    if not KB_NAME.match(name):
        raise ValueError(f"knowledge base name {name!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return name


def upload_dir(settings: Settings, kb: str) -> Path:
    return settings.data_dir / "uploads" / check_kb_name(kb)


def save_uploads(settings: Settings, kb: str, files: Sequence[tuple[str, bytes]]) -> list[Path]:
    """Write uploaded files into the knowledge base's upload folder (names stripped of any path).

    Every name is checked before anything is written, so a bad name saves none of the files. Each
    file is written under a hidden temporary name and then renamed over its target: an ingestion
    reading the folder at that moment (another admin's upload, `helpmate ingest` of the folder)
    sees the old file or the new one, never a half-written one, and a crash leaves no partial file
    under the real name (discovery skips hidden files, so a leftover temporary is never ingested).
    """
    folder = upload_dir(settings, kb)
    targets = []
    for name, _ in files:
        clean = Path(name.replace("\\", "/")).name.strip()
        if not clean or clean.startswith("."):
            raise ValueError(f"cannot store an upload named {name!r}; rename the file")
        targets.append(folder / clean)
    folder.mkdir(parents=True, exist_ok=True)
    for target, (_, content) in zip(targets, files):
        handle = tempfile.NamedTemporaryFile(dir=folder, prefix=f".{target.name}.", suffix=".part", delete=False)
        try:
            with handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(handle.name, target)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
    return targets


@dataclass
class FileResult:
    """How one uploaded file fared."""

    name: str
    status: str  # added | updated | unchanged | failed
    chunks: int
    error: str | None
    seconds: float


def ingest_files(settings: Settings, kb: str, paths: Sequence[Path],
                 on_file: Callable[[int, FileResult], None] | None = None) -> list[FileResult]:
    """Ingest ``paths`` into ``kb`` one by one, calling ``on_file(index, result)`` after each.

    Raises ``ingest.locking.IngestionLockedError`` when another job holds the knowledge base: the
    files before it were ingested (and reported), the rest stay saved for the next try.
    """
    from ingest.pipeline import ingest_paths

    results = []
    for index, path in enumerate(paths):
        summary = ingest_paths([path], check_kb_name(kb), settings, show_progress=False)
        if summary.failed:
            status, error = "failed", "; ".join(str(f.get("error") or f) for f in summary.failed)
        else:
            status = "added" if summary.added else "updated" if summary.updated else "unchanged"
            error = None
        result = FileResult(path.name, status, summary.chunks_added, error, round(summary.seconds, 2))
        results.append(result)
        if on_file is not None:
            on_file(index, result)
    return results


def knowledge_bases(settings: Settings) -> pd.DataFrame:
    """Every knowledge base with its documents, index and visibility (public: offered to customers)."""
    with session_scope(settings) as session:
        rows = [{"name": kb.name, "visibility": kb.visibility, "documents": len(kb.documents),
                 "embedding_model": kb.embedding_model, "index": kb.index_kind, "generation": kb.index_generation,
                 "created_at": kb.created_at}
                for kb in session.scalars(select(KnowledgeBase).order_by(KnowledgeBase.name))]
    return pd.DataFrame(rows, columns=["name", "visibility", "documents", "embedding_model", "index", "generation",
                                       "created_at"])


def users(settings: Settings) -> pd.DataFrame:
    """Every user with role, knowledge bases ("all" when not limited), whether active and last login."""
    from ui.auth import list_users

    rows = [{**user, "knowledge_bases": "all" if user["knowledge_bases"] is None else ", ".join(user["knowledge_bases"])}
            for user in list_users(settings)]
    return pd.DataFrame(rows, columns=["name", "role", "knowledge_bases", "active", "last_login_at", "created_at"])


def audit_table(settings: Settings, limit: int = 200) -> pd.DataFrame:
    """The newest audit entries: who did what, to what, from where."""
    from assistant.access import audit_log

    rows = [{"at": e.at, "actor": e.actor, "role": e.role, "action": e.action, "target": e.target,
             "detail": json.dumps(e.detail, ensure_ascii=False, sort_keys=True) if e.detail is not None else None,
             "client": e.client} for e in audit_log(settings, limit)]
    return pd.DataFrame(rows, columns=["at", "actor", "role", "action", "target", "detail", "client"])


def documents(settings: Settings, caller: Caller, kb: str, failed_only: bool = False) -> pd.DataFrame:
    """The knowledge base's documents with status and, for failed ones, why."""
    with session_scope(settings) as session:
        rows = [{"source": d.source, "title": d.title, "format": d.format, "status": d.status, "chunks": d.chunks,
                 "bytes": d.size_bytes, "error": d.error, "updated_at": d.updated_at}
                for d in retrieval_documents.documents(session, caller, kb, failed_only)]
    return pd.DataFrame(rows, columns=["source", "title", "format", "status", "chunks", "bytes", "error", "updated_at"])


def passages(settings: Settings, caller: Caller, kb: str, source: str) -> pd.DataFrame:
    """One document's passages as the assistant reads them: number, section, page, tokens, text."""
    with session_scope(settings) as session:
        _, found = retrieval_documents.document_passages(session, caller, kb, source)
    return pd.DataFrame([asdict(p) for p in found], columns=["number", "section", "page", "tokens", "text"])


def ingestion_runs(settings: Settings, kb: str, limit: int = 20) -> pd.DataFrame:
    query = (select(IngestionRun).join(KnowledgeBase, IngestionRun.kb_id == KnowledgeBase.id)
             .where(KnowledgeBase.name == kb).order_by(IngestionRun.id.desc()).limit(limit))
    with session_scope(settings) as session:
        rows = [{"id": r.id, "started_at": r.started_at, "status": r.status, "added": r.documents_added,
                 "updated": r.documents_updated, "unchanged": r.documents_unchanged, "failed": r.documents_failed,
                 "chunks_added": r.chunks_added, "seconds": r.seconds, "errors": len(r.errors or [])}
                for r in session.scalars(query)]
    return pd.DataFrame(rows, columns=["id", "started_at", "status", "added", "updated", "unchanged", "failed",
                                       "chunks_added", "seconds", "errors"])


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, (int, float, str, bool)) or value is None:
        out[prefix] = value


def model_versions(settings: Settings) -> pd.DataFrame:
    """Every model version, newest first, with its evaluation scores as columns (``eval.<metric>``)."""
    with session_scope(settings) as session:
        rows = []
        for version in session.scalars(select(ModelVersion).order_by(ModelVersion.id.desc())):
            row = {"name": version.name, "status": version.status, "base_model": version.base_model,
                   "created_at": version.created_at, "promoted_at": version.promoted_at, "reason": version.reason}
            metrics: dict[str, Any] = {}
            _flatten("", version.evaluation_metrics or {}, metrics)
            row.update({f"eval.{key}": value for key, value in metrics.items()})
            rows.append(row)
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["name", "status", "base_model", "created_at",
                                                                 "promoted_at", "reason"])


@dataclass
class BackgroundRun:
    """A `helpmate finetune run --json` started from the page; its output goes to ``log_path``."""

    process: subprocess.Popen
    log_path: Path
    started_at: datetime

    def finished(self) -> bool:
        return self.process.poll() is not None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def start_finetune_run(settings: Settings, extra_args: Sequence[str] = ()) -> BackgroundRun:
    """Start the periodic fine-tuning job (export, train, evaluate, promote) as its own process,
    so a long training run never blocks the web server; it takes its own lock."""
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc)
    log_path = logs / f"finetune-{started:%Y%m%dT%H%M%S}.log"
    handle = open(log_path, "w", encoding="utf-8")
    # The job sees the same data directory, database and models as the page that started it.
    env = dict(os.environ, HELPMATE_DATA_DIR=str(settings.data_dir), HELPMATE_MODELS_DIR=str(settings.models_dir),
               HELPMATE_DATABASE_URL=settings.database_url)
    process = subprocess.Popen([sys.executable, "-m", "ui.cli", "finetune", "run", "--json", *extra_args],
                               stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                               cwd=Path(__file__).resolve().parents[1])
    handle.close()
    return BackgroundRun(process, log_path, started)
