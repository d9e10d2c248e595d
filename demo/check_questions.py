#!/usr/bin/env python3
"""Sanity check for the demo data set.

For every answerable question in demo/questions.jsonl, check that each
``must_contain`` term occurs (case-insensitively, whitespace-normalised) in the
text of its ``source`` document under demo/helpcenter/. Unanswerable questions
must have ``answer: null``, an empty ``must_contain`` and ``source: null``.

Usage (from the repository root):

    python demo/check_questions.py

Requires ``pypdf`` for PDF files and ``python-docx`` for DOCX files.
"""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

DEMO = Path(__file__).resolve().parent
HELPCENTER = DEMO / "helpcenter"


class _HTMLText(HTMLParser):
    """Collects visible text, skipping non-content elements (like a help-center loader)."""

    SKIP = {"script", "style", "nav", "footer", "head"}

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if not self.depth:
            self.parts.append(data)


def document_text(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in {".md", ".txt", ".csv", ".jsonl"}:
        return path.read_text(encoding="utf-8")
    if suffix == ".html":
        parser = _HTMLText()
        parser.feed(path.read_text(encoding="utf-8"))
        return " ".join(parser.parts)
    if suffix == ".pdf":
        import pypdf

        return "\n".join(page.extract_text() for page in pypdf.PdfReader(str(path)).pages)
    if suffix == ".docx":
        import docx

        document = docx.Document(str(path))
        parts = [p.text for p in document.paragraphs]
        for table in document.tables:
            for row in table.rows:
                parts.extend(cell.text for cell in row.cells)
        return "\n".join(parts)
    raise ValueError(f"unsupported file type: {path}")


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).lower()


def main() -> int:
    errors = []
    answerable = unanswerable = 0
    cache: dict[Path, str] = {}
    lines = (DEMO / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        item = json.loads(line)
        if item["answer"] is None:
            unanswerable += 1
            if item["must_contain"] or item["source"] is not None:
                errors.append(f"line {number}: unanswerable question must have no terms and no source")
            continue
        answerable += 1
        if not 1 <= len(item["must_contain"]) <= 2:
            errors.append(f"line {number}: expected 1-2 must_contain terms")
        path = HELPCENTER / item["source"]
        if not path.is_file():
            errors.append(f"line {number}: source not found: {item['source']}")
            continue
        if path not in cache:
            cache[path] = normalise(document_text(path))
        for term in item["must_contain"]:
            if normalise(term) not in cache[path]:
                errors.append(f"line {number}: {term!r} not found in {item['source']}")
    for error in errors:
        print("FAIL", error)
    print(f"{answerable} answerable, {unanswerable} unanswerable, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
