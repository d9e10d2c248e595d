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
MAX_HEADING_CHARS = 70  # a heading of plain text or a PDF: a short line ...
MAX_HEADING_WORDS = 10  # ... of a few words
_NUMBERED = re.compile(r"^\d+(?:\.\d+)*\.?\s+(?=\S)")  # "3. VALIDITY", "4.2 Fees"
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


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
        self._page: int | None = None

    def page(self, number: int) -> None:
        """Start a page: the open headings stay open, the text so far becomes a section of its page."""
        self._flush()
        self._page = number

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
            self._sections.append(Section(text="\n\n".join(self._blocks), heading=heading, page=self._page))
            self._blocks = []


def heading_like(line: str) -> bool:
    """Whether a line could be a heading: short, a capital first (after any section number), no
    sentence or list punctuation at its end, not a bullet. Where it stands decides whether it is one."""
    line = line.strip()
    body = _NUMBERED.sub("", line)
    return (0 < len(line) <= MAX_HEADING_CHARS and len(line.split()) <= MAX_HEADING_WORDS and body[:1].isupper()
            and not line.endswith((".", ",", ";", ":", "!", "?")) and not line.startswith(("-", "*", "•", "–")))


def _in_capitals(word: str) -> bool:
    """A word in capitals of any alphabet ("MUNICH", "ÜBER"), brackets and dashes aside."""
    letters = [c for c in word if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def heading_level(line: str) -> int:
    """Numbered headings ("4. Registration") sit below unnumbered ones ("Extended warranty for tents")."""
    return 2 if _NUMBERED.match(line.strip()) else 1


def text_sections(text: str, title: str) -> list[Section]:
    """Plain text split at its headings, so that chunks follow its sections and read under their names.

    A heading is a heading-like line that stands alone between blank lines, or that opens a block and
    is numbered or starts with a word in capitals ("3. VALIDITY", "VIENNA"); the rest of the block is
    its text. A heading that repeats the document's title is left out (the title is stored already).
    """
    builder = SectionBuilder()
    blocks = [block for block in _PARAGRAPH_BREAK.split(text) if block.strip()]
    for i, block in enumerate(blocks):
        lines = block.strip("\n").split("\n")
        first = lines[0].strip()
        standalone = len(lines) == 1 and i + 1 < len(blocks)
        opening = len(lines) > 1 and bool(_NUMBERED.match(first) or _in_capitals(first.split()[0]))
        if heading_like(first) and (standalone or opening):
            if first.casefold() != title.casefold():
                builder.heading(heading_level(first), first)
            lines = lines[1:]
        builder.add("\n".join(lines))
    return builder.sections()


def load_text(path: Path) -> LoadedDocument:
    """The file's first line is its title when it is short enough to be one; sections follow its headings."""
    text = decode_text(path.read_bytes()).strip()
    first_line = text.split("\n", 1)[0].strip()
    title = first_line if first_line and len(first_line) < _MAX_TITLE_LINE else title_from_stem(path)
    return LoadedDocument(source=str(path), title=title, format="text", sections=text_sections(text, title))
