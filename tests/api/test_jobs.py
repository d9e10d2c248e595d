"""Ingestion jobs through the API (admin keys): uploads and server folders become jobs whose status
and per-file results any request can poll; bad files are reported by name with their reason and the
good ones are ingested. Real pipeline, real embedding model, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import time

import httpx
from sqlalchemy import func, select

from assistant.database import session_scope
from assistant.database.models import Chunk, IngestionJob
from tests.api.support import assert_openai_error, headers, key, serve
from ui.api.app import create_app
from ui.api.options import ApiOptions

GOOD = "# Kayak rental\n\nKayaks can be rented in the Munich store for 35 EUR per day.\n"


def _wait(base: str, api_key: str, job_id: int, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{base}/v1/ingestion-jobs/{job_id}", headers=headers(api_key), timeout=30).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


def test_an_upload_job_reports_bad_files_and_ingests_the_good_ones(db_settings):
    settings = db_settings.model_copy(update={"max_file_mb": 0.05})
    admin = key(settings, "admin")
    files = [("files", ("kayak-rental.md", GOOD.encode(), "text/markdown")),
             ("files", ("broken.pdf", b"%PDF-1.4 this is not a PDF at all", "application/pdf")),
             ("files", ("empty.txt", b"", "text/plain")),
             ("files", ("setup.exe", b"MZ\x90\x00binary", "application/octet-stream")),
             ("files", ("huge.md", b"# Huge\n\n" + b"word " * 20_000, "text/markdown"))]
    with serve(create_app(settings)) as base:
        for role in ("customer", "operator"):
            refused = httpx.post(f"{base}/v1/ingestion-jobs/files", data={"kb": "uploads"}, files=files[:1],
                                 headers=headers(key(settings, role)), timeout=30)
            assert_openai_error(refused, 403, "access_denied")
        assert_openai_error(httpx.post(f"{base}/v1/ingestion-jobs/files", data={"kb": "../etc"}, files=files[:1],
                                       headers=headers(admin), timeout=30), 400, "invalid_kb")
        accepted = httpx.post(f"{base}/v1/ingestion-jobs/files", data={"kb": "uploads"}, files=files, headers=headers(admin),
                              timeout=60)
        assert accepted.status_code == 202, accepted.text
        job = _wait(base, admin, accepted.json()["id"])
        again = httpx.post(f"{base}/v1/ingestion-jobs/files", data={"kb": "uploads"}, files=files[:1], headers=headers(admin),
                           timeout=60)
        second = _wait(base, admin, again.json()["id"])
        listed = httpx.get(f"{base}/v1/ingestion-jobs", headers=headers(admin), timeout=30).json()["jobs"]

    assert job["status"] == "partial", job
    by_file = {entry["file"]: entry for entry in job["files"]}
    assert by_file["kayak-rental.md"]["status"] == "ingested" and by_file["kayak-rental.md"]["chunks"] >= 1
    assert by_file["empty.txt"] == {"file": "empty.txt", "status": "failed", "error": "empty file"}
    assert "oversized" in by_file["huge.md"]["error"]
    assert by_file["broken.pdf"]["status"] == by_file["setup.exe"]["status"] == "failed"
    assert by_file["broken.pdf"]["error"] and by_file["setup.exe"]["error"]
    summary = job["summary"]  # what `helpmate ingest --json` prints
    assert summary["kb"] == "uploads" and summary["added"] == 1 and summary["exit_code"] == 2
    assert sorted(f["path"] for f in summary["failed"]) == ["broken.pdf", "empty.txt", "huge.md", "setup.exe"]
    assert str(settings.data_dir) not in str(job)  # names, never server paths
    assert second["status"] == "succeeded" and second["files"] == [
        {"file": "kayak-rental.md", "status": "unchanged", "documents": 1, "chunks": by_file["kayak-rental.md"]["chunks"]}]
    assert [j["id"] for j in listed] == [second["id"], job["id"]]
    with session_scope(settings) as session:
        assert session.scalar(select(func.count(Chunk.id))) == by_file["kayak-rental.md"]["chunks"]


def test_a_folder_job_reads_only_under_the_allowed_folders(settings, tmp_path):
    allowed = tmp_path / "shared-docs"
    (allowed / "guides").mkdir(parents=True)
    (allowed / "guides" / "kayaks.md").write_text(GOOD)
    (allowed / "guides" / "notes.txt").write_text("")
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "passwords.txt").write_text("root: hunter2\n")
    admin = key(settings, "admin")
    with serve(create_app(settings, ApiOptions(ingest_roots=[allowed]))) as base, serve(create_app(settings, ApiOptions())) as off:
        def submit(url: str, path: str) -> httpx.Response:
            return httpx.post(f"{url}/v1/ingestion-jobs/folder", json={"kb": "docs", "path": path}, headers=headers(admin),
                              timeout=30)

        assert_openai_error(submit(off, str(allowed)), 403, "folder_jobs_off")
        assert_openai_error(submit(base, str(secret)), 403, "folder_not_allowed")
        assert_openai_error(submit(base, f"{allowed}/../elsewhere"), 403, "folder_not_allowed")
        assert_openai_error(submit(base, str(allowed / "missing")), 400, "folder_not_found")
        accepted = submit(base, str(allowed))
        assert accepted.status_code == 202, accepted.text
        job = _wait(base, admin, accepted.json()["id"])
    assert job["status"] == "partial"
    assert {entry["file"]: entry["status"] for entry in job["files"]} == {"guides/kayaks.md": "ingested",
                                                                          "guides/notes.txt": "failed"}
    assert job["summary"]["failed"] == [{"path": "guides/notes.txt", "error": "empty file"}]


def test_a_job_whose_process_died_is_reported_failed(settings):
    child = os.fork()
    if child == 0:
        os._exit(0)
    os.waitpid(child, 0)  # a process id that is no longer running
    with session_scope(settings) as session:
        session.add(IngestionJob(kb="docs", source="folder", paths=[], status="running", created_by="test",
                                 worker=f"{socket.gethostname()}:{child}"))
    admin = key(settings, "admin")
    with serve(create_app(settings)) as base:
        job = httpx.get(f"{base}/v1/ingestion-jobs/1", headers=headers(admin), timeout=30).json()
        assert_openai_error(httpx.get(f"{base}/v1/ingestion-jobs/99", headers=headers(admin), timeout=30), 404)
    assert job["status"] == "failed" and "submit the job again" in job["error"]
