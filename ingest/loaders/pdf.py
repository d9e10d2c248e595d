"""PDF loader: sections by heading and by page, so answers can cite the page a passage came from.

A PDF's extracted text has no structure left but its lines. A heading-like line (short, no closing
punctuation) is a heading where it opens a page or follows a finished sentence, or where it is
numbered and follows another heading ("How to Make a Warranty Claim", then "8. Submitting your claim");
its section goes on across the page break until the next heading. Without headings, a page's first
lines stood glued to its first sentence in chunks and answers ("How to Make a Warranty Claim 8.
Submitting your claim Submit your claim ...").

Running headers and footers ("NIMBUS GEAR | Help Center", "Warranty Policy - page 2 of 3") are left
out: they stand on every page, so they would be in every chunk, match queries about nothing in
particular and end up quoted in answers.

pypdf runs in its lenient mode because real-world PDFs are often slightly malformed yet readable;
when it still fails, the error names the likely cause (not a PDF, truncated, encrypted) so whoever
uploaded the file knows what to fix.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, PdfReadError

from .base import LoadedDocument, LoaderError, Section
from .text import SectionBuilder, heading_level, heading_like, title_from_stem

_SCAN_WINDOW = 1024  # PDF readers accept the header and the %%EOF marker anywhere this close to either end
EDGE_LINES = 2  # a running header or footer is among a page's first or last two lines
_DIGITS = re.compile(r"\d+")


def load_pdf(path: Path) -> LoadedDocument:
    data = path.read_bytes()
    if b"%PDF-" not in data[:_SCAN_WINDOW]:
        raise LoaderError("not a valid PDF (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data))
        _decrypt(reader)
        texts = without_running_lines([page.extract_text() or "" for page in reader.pages])
        metadata = reader.metadata
        title = (str(metadata.title or "").strip() if metadata else "") or title_from_stem(path)
        sections = page_sections(texts, title)
    except PdfReadError as exc:
        reason = "EOF marker not found; the file looks truncated" if b"%%EOF" not in data[-_SCAN_WINDOW:] else str(exc)
        raise LoaderError(f"not a valid PDF ({reason})") from exc
    if not sections:
        raise LoaderError("PDF has no extractable text (scanned image?)")
    return LoadedDocument(source=str(path), title=title, format="pdf", sections=sections)


def page_sections(pages: list[str], title: str) -> list[Section]:
    """The pages' texts as sections under their headings (module docstring); a heading that repeats the
    document's title is left out."""
    builder = SectionBuilder()
    for number, text in enumerate(pages, start=1):
        builder.page(number)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        body: list[str] = []
        after_heading = False
        for i, line in enumerate(lines):
            placed = i == 0 or lines[i - 1].endswith((".", "!", "?", ";")) or (after_heading and heading_level(line) == 2)
            after_heading = heading_like(line) and placed and i + 1 < len(lines)
            if not after_heading:
                body.append(line)
                continue
            builder.add("\n".join(body))
            body = []
            if line.casefold() != title.casefold():
                builder.heading(heading_level(line), line)
        builder.add("\n".join(body))
    return builder.sections()


def without_running_lines(pages: list[str]) -> list[str]:
    """The pages' texts without running headers and footers: a line among a page's first or last
    ``EDGE_LINES`` that recurs, numbers aside, at the edges of at least half the pages and of two at
    least. A line found once is content, and so is everything of a one-page document."""
    lines = [text.splitlines() for text in pages]

    def key(line: str) -> str:
        return _DIGITS.sub("#", " ".join(line.split())).casefold()

    edges = [{i for i in range(len(page)) if i < EDGE_LINES or i >= len(page) - EDGE_LINES} for page in lines]
    seen = Counter(k for page, edge in zip(lines, edges) for k in {key(page[i]) for i in edge} if k)
    running = {k for k, count in seen.items() if count >= max(2, (len(pages) + 1) // 2)}
    return ["\n".join(line for i, line in enumerate(page) if not (i in edge and key(line) in running)).strip()
            for page, edge in zip(lines, edges)]


def _decrypt(reader: PdfReader) -> None:
    """Open PDFs locked only by an owner password (print/copy limits); refuse those that need a user password."""
    if not reader.is_encrypted:
        return
    try:
        opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
    except DependencyError as exc:
        raise LoaderError(f"PDF is encrypted with a cipher this installation cannot read ({exc})") from exc
    if not opened:
        raise LoaderError("PDF is encrypted (a password is needed to open it)")
