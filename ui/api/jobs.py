"""Ingestion as jobs (admin keys): upload files or name a server folder, get a job id at once, poll it.

The job is a row in the database (``IngestionJob``), so a poll answers from any worker; the process
that accepted the job runs it on a thread of its own (one ingestion at a time per process, since
ingestion takes the CPU), with the same pipeline as `helpmate ingest`. Its result is the summary
`helpmate ingest --json` prints, plus one entry per file: ingested, unchanged, or failed and why.
File names are shown relative to the upload or the folder, never as server paths.

A folder job may read only under ``HELPMATE_API_INGEST_ROOTS``: a key that could name any folder
could read any file of the server into a knowledge base. A job whose process died while it ran is
reported failed the next time it is read.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy import select

from assistant.access import audit
from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import Document, IngestionJob, KnowledgeBase
from ui.admin_ops import check_kb_name, save_uploads, upload_dir
from ui.api.auth import Context, authenticated
from ui.api.errors import ApiError
from ui.api.options import ApiOptions

log = logging.getLogger("helpmate.api")
router = APIRouter(prefix="/v1/ingestion-jobs", tags=["ingestion"])
WORKER = f"{socket.gethostname()}:{os.getpid()}"
LOCK_POLL_S = 1.0


def _alive(worker: str | None) -> bool:
    """Whether the process that runs a job is still there (a process on another host is taken to be)."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobRunner:
    """Runs this process's jobs one after another."""

    def __init__(self, settings: Settings, options: ApiOptions):
        self.settings, self.options = settings, options
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="helpmate-ingest")

    def submit(self, job_id: int, rejected: list[dict[str, str]] | None = None) -> None:
        self._pool.submit(self._run, job_id, rejected or [])

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, job_id: int, rejected: list[dict[str, str]]) -> None:
        from ingest.discovery import discover
        from ingest.locking import IngestionLockedError
        from ingest.pipeline import ingest_paths

        with session_scope(self.settings) as session:
            job = session.get(IngestionJob, job_id)
            kb, paths, options, source = job.kb, [Path(p) for p in job.paths], job.options or {}, job.source
        root = upload_dir(self.settings, kb) if source == "upload" else paths[0]
        started = datetime.now(timezone.utc)
        deadline = time.monotonic() + self.options.lock_wait_s
        self._update(job_id, status="running", started_at=started, worker=WORKER)
        try:
            files = discover(paths, options.get("include", ()), options.get("exclude", ())) if paths else []
            while True:
                try:
                    summary = ingest_paths(paths, kb, self.settings, show_progress=False, prune=options.get("prune", False),
                                           include=options.get("include", ()), exclude=options.get("exclude", ())) if paths else None
                    break
                except IngestionLockedError:
                    if time.monotonic() >= deadline:
                        raise ValueError(f"another ingestion held knowledge base {kb!r} for {self.options.lock_wait_s:.0f} s; "
                                         "submit the job again when it has finished") from None
                    time.sleep(LOCK_POLL_S)
            result = summary.as_dict() if summary else {"kb": kb, "files": 0, "failed": [], "exit_code": 0}
            result["failed"] = [{"path": _shown(Path(f["path"]), root), "error": _clean(f["error"], root)}
                                for f in result["failed"]] + rejected
            result["files"] += len(rejected)
            result["exit_code"] = 2 if result["failed"] else result["exit_code"]
            results = _file_results(self.settings, kb, files, summary, started, root) + [
                {"file": r["path"], "status": "failed", "error": r["error"]} for r in rejected]
            status = "partial" if result["failed"] else "succeeded"
            self._update(job_id, status=status, summary=result, results=results, finished_at=datetime.now(timezone.utc))
        except (FileNotFoundError, ValueError) as error:
            self._update(job_id, status="failed", error=_clean(str(error), root), finished_at=datetime.now(timezone.utc))
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("ingestion job %s failed (reference %s)", job_id, reference)
            self._update(job_id, status="failed", finished_at=datetime.now(timezone.utc),
                         error=f"the job stopped on an unexpected error (reference {reference}); the server log has the details")

    def _update(self, job_id: int, **values: Any) -> None:
        with session_scope(self.settings) as session:
            job = session.get(IngestionJob, job_id)
            for name, value in values.items():
                setattr(job, name, value)


def _shown(path: Path, root: Path) -> str:
    """A file's name relative to the upload folder or the folder the job named."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or path.name
    except ValueError:
        return path.name


def _utc(moment: datetime) -> datetime:
    """SQLite hands back the (UTC) update times without their offset."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _clean(message: str, root: Path) -> str:
    return message.replace(str(root.resolve()) + os.sep, "").replace(str(root.resolve()), ".")


def _file_results(settings: Settings, kb: str, files: list[Path], summary: Any, started: datetime,
                  root: Path) -> list[dict[str, Any]]:
    """One entry per discovered file: ingested (new or changed), unchanged, or failed with the reason."""
    failed = {f["path"]: f["error"] for f in (summary.failed if summary else [])}
    with session_scope(settings) as session:
        rows = session.execute(select(Document.path, Document.status, Document.chunk_count, Document.updated_at)
                               .join(KnowledgeBase, KnowledgeBase.id == Document.kb_id)
                               .where(KnowledgeBase.name == kb, Document.path.in_([str(f) for f in files]))).all()
    by_path: dict[str, list] = {}
    for row in rows:
        by_path.setdefault(row.path, []).append(row)
    results = []
    for path in files:
        name = _shown(path, root)
        if str(path) in failed:
            results.append({"file": name, "status": "failed", "error": _clean(failed[str(path)], root)})
            continue
        docs = [r for r in by_path.get(str(path), []) if r.status == "indexed"]
        changed = any(r.updated_at and _utc(r.updated_at) >= started for r in docs)
        results.append({"file": name, "status": "ingested" if changed else "unchanged", "documents": len(docs),
                        "chunks": sum(r.chunk_count for r in docs)})
    return results


def job_view(settings: Settings, job: IngestionJob) -> dict[str, Any]:
    """A job as the API shows it; a job whose process is gone is marked failed first."""
    if job.status in ("queued", "running") and not _alive(job.worker):
        with session_scope(settings) as session:
            row = session.get(IngestionJob, job.id)
            row.status, row.finished_at = "failed", datetime.now(timezone.utc)
            row.error = "the API process running this job stopped before it finished; submit the job again"
            job = row
    return {"id": job.id, "kb": job.kb, "source": job.source, "status": job.status,
            "created_at": job.created_at.isoformat(), "started_at": job.started_at and job.started_at.isoformat(),
            "finished_at": job.finished_at and job.finished_at.isoformat(), "created_by": job.created_by,
            "summary": job.summary, "files": job.results, "error": job.error}


def _create(ctx: Context, kb: str, source: str, paths: list[Path], options: dict[str, Any]) -> int:
    caller = ctx.require_admin("ingestion")
    with session_scope(ctx.settings) as session:
        job = IngestionJob(kb=kb, source=source, paths=[str(p) for p in paths], options=options, status="queued",
                           created_by=caller.name, worker=WORKER)
        session.add(job)
        session.flush()
        job_id = job.id
    audit(ctx.settings, caller, "ingest.job", f"job {job_id}", {"kb": kb, "source": source, "files": len(paths), **options})
    return job_id


def _kb_name(kb: str) -> str:
    try:
        return check_kb_name(kb)
    except ValueError as error:
        raise ApiError(400, str(error), "invalid_kb", "kb") from None


@router.post("/files", status_code=202, summary="Upload files into a knowledge base (multipart: kb, files)")
def upload(ctx: Context = Depends(authenticated), kb: str = Form(...), files: list[UploadFile] = File(...)) -> dict[str, Any]:
    ctx.require_admin("ingestion")
    kb = _kb_name(kb)
    options: ApiOptions = ctx.state.options
    if len(files) > options.max_files:
        raise ApiError(400, f"{len(files)} files in one job; send at most {options.max_files}", "too_many_files", "files")
    limit = int(ctx.settings.max_file_mb * 1024 * 1024)
    kept: list[tuple[str, bytes]] = []
    rejected: list[dict[str, str]] = []
    for upload_file in files:
        content = upload_file.file.read(limit + 1)
        name = Path((upload_file.filename or "").replace("\\", "/")).name
        if len(content) > limit:
            rejected.append({"path": name, "error": f"oversized: above HELPMATE_MAX_FILE_MB={ctx.settings.max_file_mb:g}"})
        else:
            kept.append((upload_file.filename or "", content))
    try:
        saved = save_uploads(ctx.settings, kb, kept) if kept else []
    except ValueError as error:
        raise ApiError(400, str(error), "invalid_file_name", "files") from None
    job_id = _create(ctx, kb, "upload", saved, {})
    ctx.state.jobs.submit(job_id, rejected)
    return {"id": job_id, "status": "queued", "poll": f"/v1/ingestion-jobs/{job_id}"}


class FolderJob(BaseModel):
    kb: str
    path: str = Field(description="A folder (or file) on the server, under HELPMATE_API_INGEST_ROOTS.")
    include: list[str] = Field(default_factory=list, description="Globs of files to take (as `helpmate ingest --include`).")
    exclude: list[str] = Field(default_factory=list)
    prune: bool = Field(False, description="Also remove documents whose files are gone from the folder.")


@router.post("/folder", status_code=202, summary="Ingest a server folder into a knowledge base")
def folder(body: FolderJob, ctx: Context = Depends(authenticated)) -> dict[str, Any]:
    ctx.require_admin("ingestion")
    kb = _kb_name(body.kb)
    roots: list[Path] = ctx.state.options.ingest_roots
    if not roots:
        raise ApiError(403, "folder jobs are off on this server: set HELPMATE_API_INGEST_ROOTS (or `helpmate api "
                            "--ingest-root DIR`) to the folders keys may read, or upload the files", "folder_jobs_off", "path")
    path = Path(body.path).expanduser().resolve()
    if not any(path == root or path.is_relative_to(root) for root in roots):
        raise ApiError(403, "that folder is outside the folders this server ingests from (HELPMATE_API_INGEST_ROOTS)",
                       "folder_not_allowed", "path")
    if not path.exists():
        raise ApiError(400, f"there is no file or folder {body.path!r} on the server", "folder_not_found", "path")
    job_id = _create(ctx, kb, "folder", [path], {"include": body.include, "exclude": body.exclude, "prune": body.prune})
    ctx.state.jobs.submit(job_id)
    return {"id": job_id, "status": "queued", "poll": f"/v1/ingestion-jobs/{job_id}"}


@router.get("/{job_id}", summary="A job's status and, once it finished, its summary and per-file results")
def get_job(job_id: int, ctx: Context = Depends(authenticated)) -> dict[str, Any]:
    ctx.require_admin("ingestion jobs")
    with session_scope(ctx.settings) as session:
        job = session.get(IngestionJob, job_id)
    if job is None:
        raise ApiError(404, f"there is no ingestion job {job_id}", "job_not_found")
    return job_view(ctx.settings, job)


@router.get("", summary="The newest ingestion jobs")
def list_jobs(ctx: Context = Depends(authenticated), limit: int = 20) -> dict[str, Any]:
    ctx.require_admin("ingestion jobs")
    with session_scope(ctx.settings) as session:
        jobs = list(session.scalars(select(IngestionJob).order_by(IngestionJob.id.desc()).limit(max(1, min(limit, 200)))))
    return {"jobs": [job_view(ctx.settings, job) for job in jobs]}
