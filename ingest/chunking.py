"""Split documents into passages that fit the embedding model's window.

Lengths are counted with the embedding model's own tokenizer, so a chunk never gets silently
truncated at embedding time. Chunks follow the document's structure: they never cross a section
(heading) or page boundary, they break at sentence ends where possible, and consecutive chunks
of a long section repeat their last sentences (``chunk_overlap`` word pieces) so that a fact
that straddles a boundary is whole in at least one chunk. Hard-wrapped prose is joined back into
its sentences, while a table row, a list item or a "Key: value" line keeps its own line (``_lines``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from ingest.loaders.base import LoadedDocument, Section

_SENTENCE_END = re.compile(r"(?<=[.!?…:;])\s+|\n+")
_PARAGRAPH = re.compile(r"\n\s*\n")
# A line break is a wrap when the line nearly fills its paragraph's widest line ...
WRAP_SHARE = 0.75
# ... and the next line starts no item of its own: a bullet, a number, a "Key:" of a record.
_OWN_LINE = re.compile(r"^(?:[-*•–]\s|\d{1,2}[.)]\s|[A-Z][\w &/()-]{0,24}:\s)")
# Bump when chunk text changes for the same document text: `helpmate ingest --reparse` then re-embeds.
CHUNKING_VERSION = 2


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
    after: str  # what joins it to the unit before: "\n\n" (a paragraph), "\n" (a line) or " "


def _lines(paragraph: str) -> list[str]:
    """The paragraph's lines, hard-wrapped prose joined back. A line was wrapped to fit when it nearly
    fills the paragraph's widest line, ends no sentence, is no table row (``|``) and the next line
    starts no item of its own. The rest keep their lines, so a table row, a list item or "Hours:
    9:30 - 18:00" is a sentence of its own to answers and the support check, not part of one run-on."""
    lines = [line.strip() for line in paragraph.split("\n") if line.strip()]
    width = max(map(len, lines), default=0)
    joined: list[str] = []
    current = ""
    for i, line in enumerate(lines):
        current = f"{current} {line}" if current else line
        wrapped = (i + 1 < len(lines) and len(line) >= WRAP_SHARE * width and "|" not in line
                   and not line.endswith((".", "!", "?", ":", ";")) and not _OWN_LINE.match(lines[i + 1]))
        if not wrapped:
            joined.append(current)
            current = ""
    return joined


def _split_units(text: str) -> list[tuple[str, str]]:
    units: list[tuple[str, str]] = []
    for paragraph in _PARAGRAPH.split(text):
        for n, line in enumerate(_lines(paragraph)):
            sentences = [s.strip() for s in _SENTENCE_END.split(line) if s and s.strip()]
            units.extend((sentence, " " if i else "\n" if n else "\n\n") for i, sentence in enumerate(sentences))
    return units


def _join(units: Sequence[_Unit]) -> str:
    out: list[str] = []
    for i, unit in enumerate(units):
        if i:
            out.append(unit.after)
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

    @property
    def signature(self) -> str:
        """What the chunks of a document depend on besides its text."""
        return f"chunking v{CHUNKING_VERSION}, {self.chunk_tokens} tokens, {self.overlap} overlap"

    def chunk(self, documents: Sequence[LoadedDocument]) -> list[list[ChunkDraft]]:
        """Chunks of each document, in order. All sentences of all documents are counted in one tokenizer call."""
        flat: list[tuple[int, Section, list[tuple[str, str]]]] = []
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
            pieces = [_Unit(text, n, after) for (text, after), n in zip(units, tokens)]
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
            fitted.extend(_Unit(p, min(budget, n), unit.after if i == 0 else " ")
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
