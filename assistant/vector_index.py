"""The FAISS index of a knowledge base: vectors and chunk ids only, stored in numbered generations.

Each ingestion writes a complete new generation folder (``gen-000042/``) beside the current one,
through a temporary name and an atomic rename, and the database switches
``KnowledgeBase.index_generation`` in the same transaction that commits the chunks. A crash at any
point leaves the previous generation intact and still matching the committed chunks.
Other files that belong to the same generation (the BM25 index) are written into the same folder.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import faiss
import numpy as np

from assistant.config import Settings

DENSE_FILE = "dense.faiss"


class VectorIndex:
    """Inner-product search over normalised vectors keyed by chunk id.

    Small collections use an exact flat index; above ``exact_index_max`` vectors the index is
    rebuilt as IVF with 8-bit scalar quantisation, trained on the vectors it holds. Both kinds
    support removal by id, which incremental ingestion needs.
    """

    def __init__(self, index: faiss.Index):
        self.index = index

    @classmethod
    def empty(cls, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def kind(self) -> str:
        ivf = self._ivf()
        return f"IVF{ivf.nlist},SQ8" if ivf is not None else "Flat"

    def _ivf(self) -> faiss.IndexIVF | None:
        try:
            return faiss.extract_index_ivf(self.index)
        except RuntimeError:
            return None

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        return int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(self, queries: np.ndarray, k: int, nprobe: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; missing hits have id -1."""
        ivf = self._ivf()
        if ivf is not None:
            ivf.nprobe = nprobe
        k = max(1, min(k, self.size)) if self.size else 1
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, vectors) held, for rebuilding as another kind."""
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64) if hasattr(self.index, "id_map") else None
        if ids is None:
            raise TypeError(f"cannot list the vectors of a {self.kind} index")
        return ids, self.index.index.reconstruct_n(0, self.size)

    def fit_kind(self, exact_index_max: int) -> VectorIndex:
        """This index, or an IVF rebuild of it once it has grown past ``exact_index_max`` vectors."""
        if self.size <= exact_index_max or self._ivf() is not None:
            return self
        ids, vectors = self.vectors()
        nlist = int(4 * math.sqrt(len(ids)))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, self.dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).permutation(len(vectors))[: nlist * 64]]
        ivf.train(sample)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
        rebuilt = VectorIndex(ivf)
        rebuilt.add(ids, vectors)
        return rebuilt

    def write(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def read(cls, path: Path) -> VectorIndex:
        return cls(faiss.read_index(str(path)))


def kb_index_dir(settings: Settings, kb_name: str) -> Path:
    return settings.index_dir / kb_name


def generation_dir(settings: Settings, kb_name: str, generation: int) -> Path:
    return kb_index_dir(settings, kb_name) / f"gen-{generation:06d}"


def publish_generation(staging: Path, target: Path) -> None:
    """Move a fully written staging folder to its generation name, durably."""
    for file in staging.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    if target.exists():  # left by a run that crashed before its database commit
        shutil.rmtree(target)
    os.replace(staging, target)


def remove_stale_generations(settings: Settings, kb_name: str, keep: int) -> None:
    """Delete every generation folder except ``keep`` (after the database points at it)."""
    root = kb_index_dir(settings, kb_name)
    if not root.exists():
        return
    for child in root.iterdir():
        if child.is_dir() and child.name.startswith("gen-") and child.name != f"gen-{keep:06d}":
            shutil.rmtree(child, ignore_errors=True)


def read_dense(settings: Settings, kb_name: str, generation: int, dim: int) -> VectorIndex:
    """The dense index of a generation; generation 0 is the empty index of a new knowledge base."""
    if generation == 0:
        return VectorIndex.empty(dim)
    path = generation_dir(settings, kb_name, generation) / DENSE_FILE
    if not path.exists():
        raise FileNotFoundError(f"index file {path} is missing; re-run `helpmate ingest ... --kb {kb_name}` to rebuild it")
    return VectorIndex.read(path)
