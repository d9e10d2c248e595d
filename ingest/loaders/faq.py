"""FAQ loaders (CSV and JSONL): one atomic section per question/answer pair.

Each section's text repeats the question before the answer, so a chunk embeds like the questions
customers actually ask; the chunker must not merge entries (``atomic_sections``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .base import LoadedDocument, LoaderError, Section
from .text import decode_text, title_from_stem

QUESTION_NAMES = ("question", "q", "questions")
ANSWER_NAMES = ("answer", "a", "answers", "response")
_DELIMITERS = (",", ";", "\t")


def faq_columns(names: Iterable[Any]) -> tuple[int, int] | None:
    """Positions of the question and answer columns (or keys) among ``names``, matched case-insensitively."""
    normalised = [str(name).strip().lower() for name in names]
    question = next((i for i, name in enumerate(normalised) if name in QUESTION_NAMES), None)
    answer = next((i for i, name in enumerate(normalised) if name in ANSWER_NAMES), None)
    return None if question is None or answer is None else (question, answer)


def load_faq_csv(path: Path) -> LoadedDocument:
    text = decode_text(path.read_bytes())
    header_line = next((line for line in text.split("\n") if line.strip()), "")
    delimiter, header = _sniff_header(header_line)
    columns = faq_columns(header)
    if columns is None:
        found = ", ".join(repr(name.strip()) for name in header if name.strip()) or "none"
        raise LoaderError(
            f"FAQ CSV needs a question column ({'/'.join(QUESTION_NAMES)}) and an answer column "
            f"({'/'.join(ANSWER_NAMES)}); found columns: {found}"
        )
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    for row in rows:  # consume blank lines and the header
        if any(cell.strip() for cell in row):
            break
    question, answer = columns
    pairs = ((row[question], row[answer]) for row in rows if len(row) > max(question, answer))
    return _document(path, pairs)


def load_faq_jsonl(path: Path) -> LoadedDocument:
    pairs = []
    for number, line in enumerate(decode_text(path.read_bytes()).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise LoaderError(f"line {number}: invalid JSON") from None
        if not isinstance(record, dict):
            raise LoaderError(f"line {number}: expected a JSON object with question and answer keys")
        keys = list(record)
        columns = faq_columns(keys)
        if columns is not None:
            pairs.append((record[keys[columns[0]]], record[keys[columns[1]]]))
    return _document(path, pairs)


def _sniff_header(line: str) -> tuple[str, list[str]]:
    """Pick the delimiter by the header itself: the first one under which the header names both columns.

    csv.Sniffer guesses from character frequencies and is easily fooled by answers full of commas in
    a semicolon file; the header is unambiguous. With no match, the delimiter that splits the header
    into the most fields is returned, so the error message lists real column names.
    """
    headers = {delimiter: next(csv.reader([line], delimiter=delimiter), []) for delimiter in _DELIMITERS}
    for delimiter, header in headers.items():
        if faq_columns(header) is not None:
            return delimiter, header
    return max(headers.items(), key=lambda item: len(item[1]))


def _document(path: Path, pairs: Iterable[tuple[Any, Any]]) -> LoadedDocument:
    sections = []
    for raw_question, raw_answer in pairs:
        question = "" if raw_question is None else " ".join(str(raw_question).split())
        answer = "" if raw_answer is None else str(raw_answer).strip()
        if question and answer:
            sections.append(Section(text=f"{question}\n{answer}", heading=question))
    return LoadedDocument(
        source=str(path), title=title_from_stem(path), format="faq", sections=sections, atomic_sections=True
    )
