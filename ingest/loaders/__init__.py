"""Document loaders: ``load_file(path)`` turns one file into the documents it holds.

Every failure surfaces as ``LoaderError`` with a message fit for a run report, so the pipeline can
record the file as failed and carry on with the rest of the batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from .base import LoadedDocument, LoaderError, Section
from .beir import load_beir
from .docx import load_docx
from .faq import faq_columns, load_faq_csv, load_faq_jsonl
from .html import load_html
from .markdown import load_markdown
from .pdf import load_pdf
from .text import load_text

__all__ = ["SUPPORTED_SUFFIXES", "LoadedDocument", "LoaderError", "Section", "load_file"]

_LOADERS: dict[str, Callable[[Path], LoadedDocument | list[LoadedDocument]]] = {
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
    ".txt": load_text,
    ".csv": load_faq_csv,
}
SUPPORTED_SUFFIXES: frozenset[str] = frozenset({*_LOADERS, ".jsonl"})


def load_file(path: Path) -> list[LoadedDocument]:
    """Parse ``path`` by its suffix (case-insensitive); a BEIR ``corpus.jsonl`` yields one document per record.

    Raises ``LoaderError`` for an unsupported suffix, a file no document text could be read from,
    or any parser failure (unexpected exceptions are wrapped with their class name and message).
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        shown = f"'{path.suffix}'" if path.suffix else "(no suffix)"
        raise LoaderError(f"unsupported file type {shown}")
    try:
        if path.stat().st_size == 0:
            raise LoaderError("empty document: no text found")
        loaded = _load_jsonl(path) if suffix == ".jsonl" else _LOADERS[suffix](path)
    except LoaderError:
        raise
    except Exception as exc:  # any parser bug or I/O error becomes a per-file failure, not a crashed batch
        raise LoaderError(f"{type(exc).__name__}: {exc}") from exc
    documents = loaded if isinstance(loaded, list) else [loaded]
    if not any(section.text.strip() for document in documents for section in document.sections):
        raise LoaderError("empty document: no text found")
    return documents


BEIR_CORPUS_NAME = "corpus.jsonl"
BEIR_QUERIES_NAME = "queries.jsonl"


def _load_jsonl(path: Path) -> LoadedDocument | list[LoadedDocument]:
    """A JSONL file is a BEIR corpus when it is named ``corpus.jsonl`` and its first record has ``_id``,
    an FAQ when its first record has question/answer keys, and refused otherwise.

    Only the name tells a BEIR corpus from the other JSONL files of a BEIR folder: ``queries.jsonl``
    has ``_id`` and ``text`` too, but holds the evaluation questions, which must not become documents.
    """
    with path.open("rb") as stream:
        number, first = next(((n, line) for n, line in enumerate(stream, start=1) if line.strip()), (0, b""))
    if not first:
        raise LoaderError("empty document: no text found")
    try:
        record = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise LoaderError(f"line {number}: invalid JSON") from None
    if not isinstance(record, dict):
        record = {}
    name = path.name.lower()
    if "_id" in record and name == BEIR_CORPUS_NAME:
        return load_beir(path)
    if faq_columns(record) is not None:
        return load_faq_jsonl(path)
    if "_id" in record and name == BEIR_QUERIES_NAME:
        raise LoaderError(
            f"BEIR queries file, not ingested: its records are the evaluation questions, not documents "
            f"(ingest the folder's {BEIR_CORPUS_NAME}; `helpmate eval retrieval --beir FOLDER` uses the queries)"
        )
    if "_id" in record:
        raise LoaderError(
            f"records with '_id' are read as a BEIR corpus only from a file named {BEIR_CORPUS_NAME}; "
            "this JSONL has no question and answer keys either, so it is not ingested"
        )
    raise LoaderError(
        f"JSONL is neither a BEIR corpus ({BEIR_CORPUS_NAME} with '_id' records) "
        "nor an FAQ (records with question and answer keys)"
    )
