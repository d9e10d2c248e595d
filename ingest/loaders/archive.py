"""ZIP-based documents (DOCX): refuse a package that would unpack to more than the limit.

A ZIP bomb is a small file whose members unpack to gigabytes (a 250 KB DOCX can hold 256 MB of
zeros); parsing it would exhaust the memory of the ingestion job, or of the web server when it
came in as an upload. The size limit (``HELPMATE_MAX_FILE_MB``) sees only the compressed bytes, so
ZIP-based files get a second limit on what they unpack to, ``HELPMATE_MAX_UNZIPPED_MB``.

The check reads only the ZIP's central directory (the declared size of each member) and
decompresses nothing, so it is cheap enough to run on every file before parsing: the ingestion
pipeline runs it with its settings' limit beside its other per-file checks, before an engine
(this process or a Ray worker) parses the file, and records a refused file as failed. Declared sizes
can lie, but that gains an attacker nothing here: Python's ``zipfile``, which python-docx reads
through, stops a member at its declared size (and then fails its CRC check), so no parser can
unpack more than the declared total.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from .base import LoaderError

# Suffixes whose loaders unzip the file; a new ZIP-based format (.xlsx, .pptx, .odt, .epub) joins here.
ZIP_SUFFIXES: frozenset[str] = frozenset({".docx"})

_MB = 1024 * 1024


def check_unzipped_size(path: Path, max_unzipped_mb: float) -> None:
    """Raise ``LoaderError`` when the ZIP at ``path`` declares more than ``max_unzipped_mb`` of content.

    A file that is not a ZIP, or whose directory cannot be read, passes: its loader opens it through
    the same ``zipfile``, fails the same way, and reports that in its own words.
    """
    limit = max_unzipped_mb * _MB
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except Exception:  # noqa: BLE001 - BadZipFile, and for mangled directories NotImplementedError, UnicodeDecodeError...
        return
    total = sum(member.file_size for member in members)
    if total <= limit:
        return
    largest = max(members, key=lambda member: member.file_size)
    packed = sum(member.compress_size for member in members)
    raise LoaderError(
        f"refused as a possible ZIP bomb: {packed / _MB:.1f} MB compressed unpacks to {total / _MB:.0f} MB "
        f"({largest.filename!r} alone {largest.file_size / _MB:.0f} MB), above HELPMATE_MAX_UNZIPPED_MB="
        f"{max_unzipped_mb:g}; if the document is genuine, raise that limit"
    )
