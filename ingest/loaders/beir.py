"""BEIR ``corpus.jsonl`` loader: one document per record, keyed ``path#_id``.

Keying by ``_id`` lets the pipeline update a single record when the corpus changes and lets
evaluation map retrieved chunks back to BEIR's qrels. A corpus has thousands of records, so this
is a single pass of ``json.loads`` with no per-record work beyond building the document.
"""

from __future__ import annotations

import json
from pathlib import Path

from .base import LoadedDocument, LoaderError, Section
from .text import decode_text


def load_beir(path: Path) -> list[LoadedDocument]:
    documents = []
    seen: set[str] = set()
    for number, line in enumerate(decode_text(path.read_bytes()).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise LoaderError(f"line {number}: invalid JSON") from None
        if not isinstance(record, dict) or record.get("_id") in (None, ""):
            raise LoaderError(f"line {number}: a BEIR corpus record needs an '_id'")
        doc_id = str(record["_id"])
        if doc_id in seen:
            raise LoaderError(f"line {number}: duplicate _id {doc_id!r}")
        seen.add(doc_id)
        title = str(record.get("title") or "").strip()
        text = str(record.get("text") or "").strip() or title  # a title-only record is still searchable
        if text:
            documents.append(
                LoadedDocument(
                    source=f"{path}#{doc_id}", title=title or doc_id, format="beir", sections=[Section(text=text)]
                )
            )
    return documents
