"""Search a knowledge base: dense (FAISS), lexical (BM25) or both fused, with one hit per document.

Hybrid search takes the top candidates of each side, scores every candidate on both sides exactly
(the dense score by reconstructing its vector, the BM25 score from the full score array) and fuses
the two with ``fuse``: by default min-max normalised scores added with weight ``DENSE_WEIGHT`` on
the dense side; reciprocal rank fusion (k=60) on request. Measured on BEIR SciFact, min-max fusion
beats either side alone and beats rank fusion, which throws away how far apart the candidates are
on each side; on the train split weight 0.5 ties with 0.6 and beats 0.4. The figures, with the
``helpmate eval retrieval --mode/--fusion/--dense-weight`` commands that print them, are in
BENCHMARKS.md ("Retrieval on BEIR SciFact"); they are not repeated here so that they cannot drift.

Indexes are loaded lazily per (knowledge base, index generation) and shared read-only between
threads: each search reads the knowledge base's current generation from the database (one
small query) and loads the new generation the first time it sees it; only loading
takes a lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial
from typing import Callable, Literal, Sequence, get_args

import faiss
import numpy as np
from sqlalchemy import or_, select

from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import Chunk, Document, KnowledgeBase
from assistant.embeddings import Embedder, get_embedder, mismatch
from assistant.retrieval.bm25_index import LexicalIndex, build_for_knowledge_base
from assistant.retrieval.types import Hit
from assistant.retrieval.vector_index import DENSE_FILE, VectorIndex, generation_dir, read_dense

Mode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[str, ...] = get_args(Mode)
Fusion = Literal["minmax", "rrf"]
FUSIONS: tuple[str, ...] = get_args(Fusion)

DENSE_WEIGHT = 0.5
RRF_K = 60  # the constant of Cormack et al. (2009), which most systems keep
_MIN_CANDIDATES = 50  # chunks taken from each side per search, at least; more when k is large
_SQL_BATCH = 500


@dataclass(frozen=True)
class _Generation:
    """The loaded, read-only indexes of one generation of a knowledge base."""

    kb_id: int
    number: int
    embedding_model: str | None
    dense: VectorIndex
    lexical: LexicalIndex


@dataclass
class _Candidate:
    chunk_id: int
    document_id: int
    score: float
    dense: float | None
    bm25: float | None


class Retriever:
    """Searches the knowledge bases of one database and data directory; safe to share between threads."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self._embedder = embedder
        self._generations: dict[str, _Generation] = {}
        self._backend_checked: dict[tuple[int, int], str | None] = {}  # (kb id, generation): why its vectors do not fit
        self._load_lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        """Loaded on the first dense search: BM25-only use never loads the model."""
        if self._embedder is None:
            self._embedder = get_embedder(self.settings)
        return self._embedder

    def search(self, query: str, kb: str, k: int = 5, mode: Mode = "hybrid",
               sources: Sequence[str] | None = None, *, fusion: Fusion = "minmax",
               dense_weight: float = DENSE_WEIGHT, per_document: int = 1) -> list[Hit]:
        """The ``k`` best chunks for ``query``, at most ``per_document`` of any one document, best first.

        With the default 1 these are the best chunk of each of the ``k`` best documents, what
        document-level benchmarks count; answers take two (``HELPMATE_ANSWER_CHUNKS_PER_DOCUMENT``).
        ``sources`` keeps only documents whose source starts with one of the given prefixes
        (a file path, a folder, or ``corpus.jsonl#id``). ``fusion`` and ``dense_weight`` say how
        hybrid mode combines the two sides (see ``fuse``); the other modes ignore them.
        """
        return self.search_many([query], kb, k, mode, sources, fusion=fusion, dense_weight=dense_weight,
                                per_document=per_document)[0]

    def search_many(self, queries: Sequence[str], kb: str, k: int = 5, mode: Mode = "hybrid",
                    sources: Sequence[str] | None = None, *, fusion: Fusion = "minmax",
                    dense_weight: float = DENSE_WEIGHT, per_document: int = 1) -> list[list[Hit]]:
        """``search`` for many queries, embedding them in batches (evaluation runs hundreds)."""
        if mode not in MODES:
            raise ValueError(f"unknown search mode {mode!r}; choose one of {', '.join(MODES)}")
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
        if not 0.0 <= dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be between 0 and 1, got {dense_weight}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if per_document < 1:
            raise ValueError(f"per_document must be at least 1, got {per_document}")
        if any(not q.strip() for q in queries):
            raise ValueError("cannot search for an empty query")
        if not queries:
            return []
        generation = self._current(kb)
        vectors = None
        if mode != "bm25":
            self._check_embedder(kb, generation)
            vectors = self.embedder.encode(list(queries), cache=True)
        allowed = self._allowed_chunk_ids(generation.kb_id, sources) if sources is not None else None
        n = min(generation.lexical.size, max(4 * k, _MIN_CANDIDATES))
        # One FAISS call for all queries: per-query calls each start OpenMP threads (ten times slower on 2 busy cores).
        dense_hits = self._dense_search(generation.dense, vectors, n, allowed) if vectors is not None else None
        fuse_sides = partial(fuse, fusion=fusion, dense_weight=dense_weight)
        ranked = [self._rank(generation, query, None if vectors is None else vectors[i],
                             None if dense_hits is None else dense_hits[i], n, k, mode, fuse_sides, allowed, per_document)
                  for i, query in enumerate(queries)]
        return self._hits(ranked)

    def _current(self, kb: str) -> _Generation:
        """The loaded indexes of ``kb``'s committed generation, loading them when it has moved on."""
        for _ in range(3):
            row = self._kb_row(kb)
            loaded = self._generations.get(kb)
            if loaded is not None and (loaded.kb_id, loaded.number) == (row.id, row.index_generation):
                return loaded
            with self._load_lock:
                loaded = self._generations.get(kb)
                if loaded is not None and (loaded.kb_id, loaded.number) == (row.id, row.index_generation):
                    return loaded
                try:
                    loaded = self._load(kb, row)
                except FileNotFoundError:
                    # An ingestion committed a newer generation and removed this one while we read it.
                    if self._kb_row(kb).index_generation != row.index_generation:
                        continue
                    raise
                self._generations[kb] = loaded
                return loaded
        raise RuntimeError(f"knowledge base {kb!r} changed generation three times while loading; try again")

    def _kb_row(self, kb: str):
        with session_scope(self.settings) as session:
            row = session.execute(
                select(KnowledgeBase.id, KnowledgeBase.index_generation, KnowledgeBase.dimension,
                       KnowledgeBase.embedding_model).where(KnowledgeBase.name == kb)
            ).first()
        if row is None:
            raise ValueError(f"knowledge base {kb!r} does not exist; create it with `helpmate ingest PATH --kb {kb}`")
        return row

    def _load(self, kb: str, row) -> _Generation:
        dense = read_dense(self.settings, kb, row.index_generation, row.dimension or 0)
        folder = generation_dir(self.settings, kb, row.index_generation)
        try:
            lexical = LexicalIndex.read(folder)
        except (FileNotFoundError, ValueError):
            if (folder / DENSE_FILE).exists() or row.index_generation == 0:
                # Written before BM25 existed, with another tokenizer, or nothing written yet: build it from the
                # committed chunks (a new ingestion generation writes it again).
                with session_scope(self.settings) as session:
                    lexical = build_for_knowledge_base(session, row.id)
            else:
                raise
        return _Generation(row.id, row.index_generation, row.embedding_model, dense, lexical)

    def _check_embedder(self, kb: str, generation: _Generation) -> None:
        if generation.embedding_model not in (None, self.embedder.name):
            raise ValueError(
                f"knowledge base {kb!r} was embedded with {generation.embedding_model} but HELPMATE_EMBEDDING_MODEL "
                f"gives {self.embedder.name}; set it back, or re-ingest into a new --kb"
            )
        key = (generation.kb_id, generation.number)
        if key not in self._backend_checked:  # once per generation: comparing the probe vectors costs a few ms
            dense = generation.dense
            self._backend_checked[key] = (mismatch(dense.embedding, self.embedder, f"knowledge base {kb!r}")
                                          if dense.size else None)
        if self._backend_checked[key]:
            raise ValueError(self._backend_checked[key])

    def _allowed_chunk_ids(self, kb_id: int, sources: Sequence[str]) -> np.ndarray:
        prefixes = [s for s in sources if s]
        if not prefixes:
            return np.zeros(0, dtype=np.int64)
        with session_scope(self.settings) as session:
            ids = session.scalars(
                select(Chunk.id).join(Document, Chunk.document_id == Document.id).where(
                    Chunk.kb_id == kb_id, or_(*(Document.source.startswith(p, autoescape=True) for p in prefixes)))
            ).all()
        return np.sort(np.asarray(ids, dtype=np.int64))

    def _rank(self, generation: _Generation, query: str, vector: np.ndarray | None,
              dense_hits: tuple[np.ndarray, np.ndarray] | None, n: int, k: int, mode: Mode,
              fuse_sides: _Fuse, allowed: np.ndarray | None, per_document: int = 1) -> list[_Candidate]:
        """The top-k chunks, at most ``per_document`` of a document; fetches more candidates while documents repeat."""
        size = generation.lexical.size
        while True:
            candidates = self._candidates(generation, query, vector, dense_hits, n, mode, fuse_sides, allowed)
            chosen: list[_Candidate] = []
            taken: dict[int, int] = {}
            for candidate in candidates:
                if taken.get(candidate.document_id, 0) < per_document:
                    taken[candidate.document_id] = taken.get(candidate.document_id, 0) + 1
                    chosen.append(candidate)
                    if len(chosen) == k:
                        break
            if len(chosen) == k or n >= size:
                return chosen
            n = min(size, 4 * n)
            if vector is not None:
                dense_hits = self._dense_search(generation.dense, vector[None, :], n, allowed)[0]

    def _candidates(self, generation: _Generation, query: str, vector: np.ndarray | None,
                    dense_hits: tuple[np.ndarray, np.ndarray] | None, n: int, mode: Mode,
                    fuse_sides: _Fuse, allowed: np.ndarray | None) -> list[_Candidate]:
        """Up to ``n`` chunks from each side (``dense_hits`` are the dense side's), scored for ``mode``, best first."""
        lexical = generation.lexical
        if n == 0 or (allowed is not None and not len(allowed)):
            return []
        dense_scores, dense_ids = dense_hits if dense_hits is not None else (None, np.zeros(0, dtype=np.int64))
        bm25_all = None
        if mode != "dense":
            bm25_all = lexical.scores(query)
            if allowed is not None:
                bm25_all = np.where(np.isin(lexical.chunk_ids, allowed), bm25_all, 0.0)
        if mode == "dense":
            ids, fused, dense, bm25 = dense_ids, dense_scores, dense_scores, None
        else:
            top = _top_positive(bm25_all, n)
            if mode == "bm25":
                ids, bm25 = lexical.chunk_ids[top], bm25_all[top]
                fused, dense = bm25, None
            else:
                ids = np.union1d(dense_ids, lexical.chunk_ids[top])
                dense = generation.dense.index.reconstruct_batch(ids) @ vector
                bm25 = bm25_all[lexical.positions(ids)]
                fused = fuse_sides(dense, bm25)
        positions = lexical.positions(ids)
        order = np.argsort(-np.asarray(fused), kind="stable")
        return [
            _Candidate(int(ids[i]), int(lexical.document_ids[positions[i]]), float(fused[i]),
                       None if dense is None else float(dense[i]), None if bm25 is None else float(bm25[i]))
            for i in order if positions[i] >= 0
        ]

    def _dense_search(self, dense: VectorIndex, vectors: np.ndarray, n: int,
                      allowed: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top-n (scores, chunk ids) per query row, among ``allowed`` chunk ids when given."""
        if not dense.size or (allowed is not None and not len(allowed)):
            return [(np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)) for _ in vectors]
        if allowed is None:
            scores, ids = dense.search(vectors, n, self.settings.ivf_nprobe)
        else:
            selector = faiss.IDSelectorBatch(allowed)
            params = (faiss.SearchParameters(sel=selector) if dense.kind == "Flat"
                      else faiss.SearchParametersIVF(sel=selector, nprobe=self.settings.ivf_nprobe))
            scores, ids = dense.index.search(np.ascontiguousarray(vectors), max(1, min(n, dense.size)), params=params)
        return [(row_scores[row_ids >= 0], row_ids[row_ids >= 0]) for row_scores, row_ids in zip(scores, ids)]

    def _hits(self, ranked: list[list[_Candidate]]) -> list[list[Hit]]:
        """Chunk rows and document sources for every ranked candidate, fetched together."""
        ids = sorted({c.chunk_id for candidates in ranked for c in candidates})
        rows = {}
        with session_scope(self.settings) as session:
            for start in range(0, len(ids), _SQL_BATCH):
                for row in session.execute(
                    select(Chunk.id, Chunk.document_id, Chunk.text, Chunk.title, Chunk.section, Chunk.page, Document.source)
                    .join(Document, Chunk.document_id == Document.id).where(Chunk.id.in_(ids[start:start + _SQL_BATCH]))
                ):
                    rows[row.id] = row
        return [
            [Hit(chunk_id=c.chunk_id, document_id=row.document_id, text=row.text, source=row.source, title=row.title,
                 section=row.section, page=row.page, score=c.score, dense_score=c.dense, bm25_score=c.bm25)
             for c in candidates if (row := rows.get(c.chunk_id)) is not None]  # gone if a newer ingestion removed it
            for candidates in ranked
        ]


_Fuse = Callable[[np.ndarray, np.ndarray], np.ndarray]


def fuse(dense: np.ndarray, bm25: np.ndarray, fusion: Fusion = "minmax", dense_weight: float = DENSE_WEIGHT) -> np.ndarray:
    """One hybrid score per candidate from its exact dense and BM25 scores (higher is better).

    ``minmax`` rescales each side to 0..1 over the candidates and weights the dense side by
    ``dense_weight``: it keeps how far apart the candidates are on each side. ``rrf`` (reciprocal
    rank fusion) adds 1 / (RRF_K + rank) of both sides, ranks taken among the candidates (ties share
    the better rank): it needs no weight and ignores score gaps. Both are measured in BENCHMARKS.md.
    """
    if fusion == "rrf":
        return 1.0 / (RRF_K + _ranks(dense)) + 1.0 / (RRF_K + _ranks(bm25))
    return dense_weight * _min_max(dense) + (1 - dense_weight) * _min_max(bm25)


def _ranks(values: np.ndarray) -> np.ndarray:
    """1 + how many values are strictly higher, for each value (competition ranking: ties share a rank)."""
    values = np.asarray(values, dtype=np.float64)
    return 1 + len(values) - np.searchsorted(np.sort(values), values, side="right")


def _min_max(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float32)
    low, high = (values.min(), values.max()) if len(values) else (0.0, 0.0)
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _top_positive(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest positive scores, best first (a chunk sharing no term with the query is no candidate)."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > n:
        positive = positive[np.argpartition(-scores[positive], n - 1)[:n]]
    return positive[np.argsort(-scores[positive], kind="stable")]
