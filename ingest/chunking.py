"""Split documents into passages that fit the embedding model's window.

Lengths are counted with the embedding model's own tokenizer, so a chunk never gets silently
truncated at embedding time. Chunks follow the document's structure: they never cross a section
(heading) or page boundary, they break at sentence ends where possible, and consecutive chunks
of a long section repeat their last sentences (``chunk_overlap`` word pieces) so that a fact
that straddles a boundary is whole in at least one chunk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from ingest.loaders.base import LoadedDocument, Section

_SENTENCE_END = re.compile(r"(?<=[.!?…:;])\s+|\n+")
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass
class ChunkDraft:
    """A chunk before it has an id: its text, where it came from, and what gets embedded."""

    text: str
    title: str
    section: str | None
    page: int | None
    token_count: int

    @property
    def embedding_text(self) -> str:
        """The text to embed: the heading path gives a passage the context its own words may lack."""
        heading = " > ".join(part for part in (self.title, self.section) if part)
        return f"{heading}\n{self.text}" if heading else self.text


@dataclass
class _Unit:
    text: str
    tokens: int
    paragraph_start: bool


def _split_units(text: str) -> list[tuple[str, bool]]:
    units: list[tuple[str, bool]] = []
    for paragraph in _PARAGRAPH.split(text):
        sentences = [s.strip() for s in _SENTENCE_END.split(paragraph) if s and s.strip()]
        units.extend((sentence, i == 0) for i, sentence in enumerate(sentences))
    return units


def _join(units: Sequence[_Unit]) -> str:
    out: list[str] = []
    for i, unit in enumerate(units):
        if i:
            out.append("\n\n" if unit.paragraph_start else " ")
        out.append(unit.text)
    return "".join(out)


class Chunker:
    """Chunks documents with a tokenizer's counts; one instance is reused for a whole run."""

    def __init__(self, count_tokens: Callable[[Sequence[str]], list[int]], split_long: Callable[[str, int], list[str]],
                 chunk_tokens: int = 200, overlap: int = 32):
        if overlap >= chunk_tokens:
            raise ValueError(f"chunk overlap ({overlap}) must be smaller than the chunk size ({chunk_tokens})")
        self.count_tokens = count_tokens
        self.split_long = split_long
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap

    def chunk(self, documents: Sequence[LoadedDocument]) -> list[list[ChunkDraft]]:
        """Chunks of each document, in order. All sentences of all documents are counted in one tokenizer call."""
        flat: list[tuple[int, Section, list[tuple[str, bool]]]] = []
        for d, document in enumerate(documents):
            for section in document.sections:
                if section.text.strip():
                    flat.append((d, section, _split_units(section.text)))
        headings = [" > ".join(p for p in (documents[d].title, s.heading) if p) for d, s, _ in flat]
        texts = [u for _, _, units in flat for u, _ in units]
        counts = iter(self.count_tokens(texts + headings))
        unit_counts = [[next(counts) for _ in units] for _, _, units in flat]
        heading_counts = [next(counts) for _ in flat]

        result: list[list[ChunkDraft]] = [[] for _ in documents]
        for (d, section, units), tokens, heading_tokens in zip(flat, unit_counts, heading_counts):
            # Budget for the heading line that is embedded with the text, but never below half a chunk.
            budget = max(self.chunk_tokens - heading_tokens - 1, self.chunk_tokens // 2)
            pieces = [_Unit(text, n, start) for (text, start), n in zip(units, tokens)]
            for text, n in self._pack(self._fit(pieces, budget), budget):
                result[d].append(ChunkDraft(text, documents[d].title, section.heading, section.page, n))
        return result

    def _fit(self, units: list[_Unit], budget: int) -> list[_Unit]:
        """Units no longer than the budget: an over-long sentence is cut at word-piece boundaries."""
        fitted: list[_Unit] = []
        for unit in units:
            if unit.tokens <= budget:
                fitted.append(unit)
                continue
            parts = self.split_long(unit.text, budget)
            fitted.extend(_Unit(p, min(budget, n), unit.paragraph_start and i == 0)
                          for i, (p, n) in enumerate(zip(parts, self.count_tokens(parts))))
        return fitted

    def _pack(self, units: list[_Unit], budget: int) -> list[tuple[str, int]]:
        chunks: list[tuple[str, int]] = []
        current: list[_Unit] = []
        size = 0
        for unit in units:
            if current and size + unit.tokens > budget:
                chunks.append((_join(current), size))
                # Carry the trailing sentences that fit in the overlap into the next chunk.
                carried: list[_Unit] = []
                carried_size = 0
                for previous in reversed(current):
                    if carried_size + previous.tokens > self.overlap or carried_size + previous.tokens + unit.tokens > budget:
                        break
                    carried.insert(0, previous)
                    carried_size += previous.tokens
                current, size = carried, carried_size
            current.append(unit)
            size += unit.tokens
        if current:
            chunks.append((_join(current), size))
        return chunks


def tokenizer_chunker(tokenizer, chunk_tokens: int, overlap: int) -> Chunker:
    """A chunker that counts and cuts with a Hugging Face fast tokenizer."""

    def count(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def split_long(text: str, budget: int) -> list[str]:
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        parts = []
        for start in range(0, len(offsets), budget):
            window = offsets[start:start + budget]
            parts.append(text[window[0][0]:window[-1][1]].strip())
        return [p for p in parts if p]

    return Chunker(count, split_long, chunk_tokens, overlap)
