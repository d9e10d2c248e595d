"""Sentence embeddings with the configured sentence-transformers model.

Vectors are L2-normalised float32, so inner product is cosine similarity everywhere
(FAISS index, verified-answer matching, sentiment features).
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from assistant.config import Settings, get_settings
from assistant.modelstore import embedding_model_path


class Embedder:
    """A loaded embedding model with its tokenizer (the chunker counts tokens with it)."""

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

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embed texts as normalised float32 rows; an empty input gives a (0, dim) array."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
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


def get_embedder(settings: Settings | None = None) -> Embedder:
    """The process-wide embedder for the given settings (loading takes a second or two)."""
    settings = settings or get_settings()
    key = (settings.embedding_model, settings.device, settings.embedding_batch_size)
    with _embedders_lock:
        if key not in _embedders:
            _embedders[key] = Embedder(settings)
        return _embedders[key]
