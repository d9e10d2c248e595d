"""Sentence embeddings with the configured sentence-transformers model.

Vectors are L2-normalised float32, so inner product is cosine similarity everywhere
(FAISS index, verified-answer matching, sentiment features).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Sequence

import numpy as np

from assistant.config import Settings
from assistant.modelstore import embedding_model_path


# Vectors the query-time cache keeps (about 30 MB at 384 dimensions).
CACHE_SIZE = 20_000


class Embedder:
    """A loaded embedding model with its tokenizer (the chunker counts tokens with it).

    Query-time callers pass ``cache=True``: one chat turn embeds the same question for the router,
    the verified-answer lookup and retrieval, and the support check embeds the sentences of
    passages that recur from question to question. Cached, each is computed once, so the CPU
    is left to the language model. Ingestion embeds each chunk once and does not use the cache.
    """

    def __init__(self, settings: Settings):
        from sentence_transformers import SentenceTransformer

        self.path = embedding_model_path(settings)
        self.model = SentenceTransformer(str(self.path), device=settings.device)
        self.batch_size = settings.embedding_batch_size
        self.name = self.path.parent.name if self.path.name == "model" else self.path.name
        self.dim: int = self.model.get_embedding_dimension()
        self.max_tokens: int = int(self.model.max_seq_length)
        self.tokenizer = self.model.tokenizer
        # A tokenizer is not safe to call from several threads at once (Rust "Already borrowed").
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()

    def encode(self, texts: Sequence[str], show_progress: bool = False, cache: bool = False) -> np.ndarray:
        """Embed texts as normalised float32 rows; an empty input gives a (0, dim) array.

        With ``cache``, texts embedded before (by any caller with ``cache=True``) are not embedded
        again; the least recently used of ``CACHE_SIZE`` vectors are forgotten first.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not cache:
            return self._encode(texts, show_progress)
        found: dict[str, np.ndarray] = {}
        with self._cache_lock:
            for text in texts:
                if text in self._cache:
                    self._cache.move_to_end(text)
                    found[text] = self._cache[text]
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            vectors = self._encode(missing, show_progress)
            vectors.setflags(write=False)
            with self._cache_lock:
                for text, vector in zip(missing, vectors):
                    self._cache[text] = found[text] = vector
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        return np.stack([found[t] for t in texts])

    def clear_cache(self) -> None:
        """Forget the cached query-time vectors (benchmarks measure a cold start with it)."""
        with self._cache_lock:
            self._cache.clear()

    def _encode(self, texts: Sequence[str], show_progress: bool) -> np.ndarray:
        with self._lock:
            vectors = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without special tokens."""
        with self._lock:
            encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]


_embedders: dict[tuple, Embedder] = {}
_embedders_lock = threading.Lock()


def get_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for the given settings (loading takes a second or two)."""
    key = (settings.embedding_model, settings.device, settings.embedding_batch_size)
    with _embedders_lock:
        if key not in _embedders:
            _embedders[key] = Embedder(settings)
        return _embedders[key]
