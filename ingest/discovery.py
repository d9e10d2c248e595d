"""Which files an ingestion run looks at: folders walked recursively, filtered by globs."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Iterable, Sequence

from ingest.loaders import SUPPORTED_SUFFIXES


def _matches(path: Path, root: Path, patterns: Sequence[str]) -> bool:
    relative = path.relative_to(root).as_posix() if path != root else path.name
    return any(fnmatch(relative, p) or fnmatch(path.name, p) for p in patterns)


def discover(paths: Iterable[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()) -> list[Path]:
    """Absolute paths of the files to ingest, sorted and without duplicates.

    A file named directly is always taken (an unsupported type is then reported by its loader);
    inside folders, files are taken when their suffix is supported or they match ``include``,
    and dropped when they match ``exclude`` (globs on the path relative to the folder, or the
    name). Hidden files and folders are skipped.
    """
    found: dict[Path, None] = {}
    for given in paths:
        root = Path(given).expanduser().resolve()
        if not root.exists():
            raise FileNotFoundError(f"no such file or folder: {given}")
        if root.is_file():
            if not (exclude and _matches(root, root, exclude)):
                found[root] = None
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                continue
            wanted = _matches(path, root, include) if include else path.suffix.lower() in SUPPORTED_SUFFIXES
            if wanted and not (exclude and _matches(path, root, exclude)):
                found[path] = None
    return sorted(found)
