"""One ingestion job at a time per knowledge base, across processes."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class IngestionLockedError(RuntimeError):
    """Another ingestion job holds the knowledge base."""


@contextmanager
def kb_lock(lock_path: Path, kb_name: str) -> Iterator[None]:
    """Hold an exclusive lock file for the job's duration; the OS releases it if the process dies."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IngestionLockedError(
                f"knowledge base {kb_name!r} is being ingested by {holder}; wait for that job or check {lock_path}"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()
