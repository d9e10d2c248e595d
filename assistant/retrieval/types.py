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
