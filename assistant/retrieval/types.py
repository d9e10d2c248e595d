"""What a search returns; shared by retrieval, answering, agents and the UI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Hit:
    """One retrieved chunk with where it came from. ``score`` is the fused score of the search mode used."""

    chunk_id: int
    document_id: int
    text: str
    source: str
    title: str | None
    section: str | None
    page: int | None
    score: float
    dense_score: float | None = None
    bm25_score: float | None = None

    @property
    def heading(self) -> str:
        return heading_path(self.title, self.section)


def heading_path(title: str | None, section: str | None) -> str:
    """``Title > Section``, the title said once: a Markdown section path already starts with the
    document's title ("Returns > Refunds" in the document "Returns"). Citations and prompts show it."""
    if title and section and section.split(" > ")[0].strip() == title.strip():
        return section
    return " > ".join(part for part in (title, section) if part)
