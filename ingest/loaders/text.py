"""Plain-text loader, plus the small helpers every text-bearing loader shares.

The helpers live here (the dependency-free module) so that decoding, fallback titles and heading
paths behave the same for Markdown, HTML, DOCX, PDF and FAQ files.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from .base import LoadedDocument, LoaderError, Section

_MAX_TITLE_LINE = 100


def decode_text(data: bytes) -> str:
    """Decode bytes that should be text, with newlines normalised to ``\\n``.

    UTF-8 (BOM or not) is tried first because it is what nearly every tool writes today; a UTF-16 BOM
    (Windows "Unicode" exports) is honoured; only bytes that are not valid UTF-8 fall back to cp1252,
    then latin-1, which never fails. NUL bytes outside UTF-16 mean a binary file renamed to a text suffix.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16")
    elif b"\x00" in data:
        raise LoaderError("looks like a binary file, not text")
    else:
        for encoding in ("utf-8-sig", "cp1252"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def title_from_stem(path: Path) -> str:
    """A readable title from a file name (``return-policy_faq.md`` → ``Return policy FAQ``) for untitled files."""
    words = " ".join(re.split(r"[-_\s]+", path.stem)).strip()
    words = re.sub(r"\bfaq\b", "FAQ", words, flags=re.IGNORECASE)
    return words[:1].upper() + words[1:] if words else path.name


class SectionBuilder:
    """Collects text blocks under a heading path, closing a section whenever a heading starts.

    A heading of level N replaces every open heading of level >= N, so paths read like a table of
    contents (``"Returns > Refunds"``). Sections that end up without text are dropped.
    """

    def __init__(self) -> None:
        self._trail: list[tuple[int, str]] = []
        self._blocks: list[str] = []
        self._sections: list[Section] = []

    def heading(self, level: int, text: str) -> None:
        self._flush()
        while self._trail and self._trail[-1][0] >= level:
            self._trail.pop()
        if text:
            self._trail.append((level, text))

    def add(self, block: str) -> None:
        block = block.strip("\n").rstrip()
        if block.strip():
            self._blocks.append(block)

    def sections(self) -> list[Section]:
        self._flush()
        return self._sections

    def _flush(self) -> None:
        if self._blocks:
            heading = " > ".join(text for _, text in self._trail) or None
            self._sections.append(Section(text="\n\n".join(self._blocks), heading=heading))
            self._blocks = []


def load_text(path: Path) -> LoadedDocument:
    """One section holding the whole file: plain text has no structure worth guessing at."""
    text = decode_text(path.read_bytes()).strip()
    first_line = text.split("\n", 1)[0].strip()
    title = first_line if first_line and len(first_line) < _MAX_TITLE_LINE else title_from_stem(path)
    sections = [Section(text=text)] if text else []
    return LoadedDocument(source=str(path), title=title, format="text", sections=sections)
