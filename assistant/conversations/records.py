"""Rows of the files operators import (conversations, feedback): CSV with a header, or JSONL.

One reader for both, so both report bad rows the same way: ``(line, record)`` for a readable row
and ``(line, why not)`` for one that is not, the line being where the record starts (a quoted
CSV field may span lines). The caller keeps the good rows and lists the bad ones.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

SUFFIXES = (".csv", ".jsonl", ".ndjson")
Record = tuple[int, "dict[str, Any] | str"]


@dataclass
class BadRow:
    """A row that was not imported: its line in the file (where the record starts) and why."""

    line: int
    error: str


def read_records(path: Path, what: str, required: Sequence[str], optional: Sequence[str] = ()) -> Iterator[Record]:
    """Every row of ``path``; raises FileNotFoundError or ValueError for a file that cannot be read at all
    (missing, wrong type, not UTF-8, a CSV header without the ``required`` columns)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: import reads .csv (with a header) or .jsonl files, not {suffix or 'no extension'}")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 (byte {error.start} cannot be decoded); save it as UTF-8 and import again") from None
    if suffix == ".csv":
        return _csv_records(path, content, required, optional)
    return _jsonl_records(content)


def _csv_records(path: Path, content: str, required: Sequence[str], optional: Sequence[str]) -> Iterator[Record]:
    reader = csv.reader(content.splitlines(keepends=True))
    header = [column.strip().lower() for column in next(reader, [])]
    missing = [column for column in required if column not in header]
    if missing:
        raise ValueError(f"{path}: the header lacks {', '.join(missing)}; the columns are {','.join(required)} "
                         f"(optional: {','.join(optional)}), got {','.join(header) or 'nothing'}")
    previous = reader.line_num
    while True:
        start = previous + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            previous = reader.line_num
            yield start, f"unreadable CSV: {error}"
            continue
        previous = reader.line_num
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            yield start, f"has {len(fields)} fields, the header has {len(header)} (an unquoted comma, or a missing quote?)"
            continue
        yield start, dict(zip(header, fields))


def _jsonl_records(content: str) -> Iterator[Record]:
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, f"not valid JSON ({error.msg} at column {error.colno})"
            continue
        yield number, record if isinstance(record, dict) else "is not a JSON object"
