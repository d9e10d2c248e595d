"""What every loader returns, and the error it raises for a file it cannot read."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


class LoaderError(Exception):
    """A file could not be ingested; the message says why in words a user can act on."""


@dataclass
class Section:
    """A run of text under one heading path (``"Returns > Refunds"``), on one page where the format has pages."""

    text: str
    heading: str | None = None
    page: int | None = None


@dataclass
class LoadedDocument:
    """A parsed document.

    ``source`` is the document's stable key in its knowledge base: the file path for most files,
    ``path#id`` for records of a multi-document file such as a BEIR ``corpus.jsonl``.
    ``atomic_sections`` means each section is one unit (an FAQ entry) that the chunker must not merge.
    """

    source: str
    title: str
    format: str
    sections: list[Section] = field(default_factory=list)
    atomic_sections: bool = False

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        digest.update(self.title.encode())
        for section in self.sections:
            digest.update(b"\x00" + (section.heading or "").encode() + b"\x01" + str(section.page).encode() + b"\x02")
            digest.update(section.text.encode())
        return digest.hexdigest()
