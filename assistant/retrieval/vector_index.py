"""The FAISS index of a knowledge base: vectors and chunk ids only, stored in numbered generations.

Each ingestion writes a complete new generation folder (``gen-000042/``) beside the current one,
through a temporary name and an atomic rename, and the database switches
``KnowledgeBase.index_generation`` in the same transaction that commits the chunks. A crash at any
point leaves the previous generation intact and still matching the committed chunks.
Other files that belong to the same generation (the BM25 index) are written into the same folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path

import faiss
import numpy as np

from assistant.config import Settings

DENSE_FILE = "dense.faiss"


# Training sample per inverted list (FAISS warns below 39), and k-means iterations: together they set the
# training cost (1M vectors: 164k samples x 4096 centroids x 10 rounds, minutes on 2 cores instead of a quarter hour).
TRAIN_PER_LIST = 40
MIN_TRAIN_PER_LIST = 39
KMEANS_ITERATIONS = 10
# Lists of an IVF index: about 4 * sqrt(n), rounded to a power of two, within these bounds.
MIN_LISTS, MAX_LISTS = 256, 65_536
# An IVF index is retrained (with more lists) once it holds this many times the vectors its lists were sized for.
REFIT_GROWTH = 4


def ivf_lists(n: int) -> int:
    """Inverted lists for ``n`` vectors: ~4·sqrt(n) as a power of two (1M vectors → 4096 lists)."""
    target = 4 * math.sqrt(max(n, 1))
    return int(min(MAX_LISTS, max(MIN_LISTS, 2 ** round(math.log2(target)))))


class VectorIndex:
    """Inner-product search over normalised vectors keyed by chunk id.

    The kind is chosen by size. Up to ``exact_index_max`` vectors: an exact flat index (every
    search is exact, a few ms per query up to ~200k vectors). Above: IVF with 8-bit scalar
    quantisation (``IVF{nlist},SQ8``), ``nlist = ivf_lists(n)``, its coarse centroids trained by
    k-means on a random sample of ``TRAIN_PER_LIST * nlist`` of the vectors; a search visits
    ``nprobe`` lists (``HELPMATE_IVF_NPROBE``). SQ8 keeps 1 byte per dimension (a quarter of flat)
    and, unlike PQ, keeps inner products within ~1e-3, so the top 10 barely move; IVF supports
    removal by id, which incremental ingestion needs (HNSW does not). When an IVF index has grown
    ``REFIT_GROWTH`` times past the size its lists were chosen for, it is retrained.
    ``params`` records how the index was built and ``embedding`` what made its vectors (model, backend
    and probe vectors: ``Embedder.record``; None for an index written before backends were recorded);
    both are written beside the index file.
    """

    def __init__(self, index: faiss.Index, params: dict | None = None, embedding: dict | None = None):
        self.index = index
        self.params: dict = params if params is not None else self._describe()
        self.embedding = embedding

    @classmethod
    def empty(cls, dim: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), {"kind": "Flat", "metric": "inner_product"})

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, exact_index_max: int, seed: int = 0) -> VectorIndex:
        """An index of the kind chosen for ``len(ids)`` vectors, holding them."""
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(ids) <= exact_index_max:
            index = cls.empty(vectors.shape[1])
            index.add(ids, vectors)
            return index
        return cls._build_ivf(ids, vectors, seed)

    @classmethod
    def _build_ivf(cls, ids: np.ndarray, vectors: np.ndarray, seed: int) -> VectorIndex:
        n, dim = vectors.shape
        nlist = min(ivf_lists(n), max(1, n // MIN_TRAIN_PER_LIST))  # a tiny collection (tests) gets fewer lists
        sample_size = min(n, TRAIN_PER_LIST * nlist)
        sample = vectors[np.sort(np.random.default_rng(seed).choice(n, sample_size, replace=False))]
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = seed
        ivf.cp.niter = KMEANS_ITERATIONS
        started = time.perf_counter()
        ivf.train(sample)
        ivf.own_fields = True
        quantizer.this.disown()
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # removal and reconstruction by chunk id
        params = {"kind": f"IVF{nlist},SQ8", "metric": "inner_product", "nlist": nlist, "quantizer": "Flat",
                  "encoding": "SQ8 (8-bit scalar quantisation per dimension)", "trained_on": int(sample_size), "kmeans_iterations": KMEANS_ITERATIONS,
                  "sized_for": int(n), "train_seconds": round(time.perf_counter() - started, 2), "seed": seed}
        built = cls(ivf, params)
        built.add(ids, vectors)
        return built

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

    def _describe(self) -> dict:
        """Parameters readable from the FAISS index itself (for files written without ``params``)."""
        ivf = self._ivf()
        if ivf is None:
            return {"kind": "Flat", "metric": "inner_product"}
        return {"kind": self.kind, "metric": "inner_product", "nlist": int(ivf.nlist), "sized_for": int(ivf.nlist ** 2 // 16)}

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        return int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(self, queries: np.ndarray, k: int, nprobe: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row; missing hits have id -1. ``nprobe`` applies to IVF only.

        The search parameters go with the call rather than onto the shared index, so threads
        sharing one loaded index may search with different settings.
        """
        k = max(1, min(k, self.size)) if self.size else 1
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self._ivf() is not None:
            return self.index.search(queries, k, params=faiss.SearchParametersIVF(nprobe=nprobe))
        return self.index.search(queries, k)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All (ids, vectors) held, for rebuilding as another kind (IVF gives its SQ8-decoded vectors)."""
        ivf = self._ivf()
        if ivf is None:
            if not hasattr(self.index, "id_map"):
                raise TypeError(f"cannot list the vectors of a {self.kind} index")
            ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            return ids, self.index.index.reconstruct_n(0, self.size)
        invlists = ivf.invlists
        ids = [faiss.rev_swig_ptr(invlists.get_ids(list_no), invlists.list_size(list_no)).copy()
               for list_no in range(ivf.nlist) if invlists.list_size(list_no)]
        ids = np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, dtype=np.int64)
        return ids, ivf.reconstruct_batch(ids) if len(ids) else np.zeros((0, self.dim), dtype=np.float32)

    def fit_kind(self, exact_index_max: int) -> VectorIndex:
        """This index, or a rebuild of the kind its size now calls for.

        Flat becomes IVF past ``exact_index_max`` vectors; an IVF index is retrained with more
        lists once it holds ``REFIT_GROWTH`` times the vectors it was sized for. Shrinking never
        converts back (removals are rare and an IVF index stays correct, only coarser).
        """
        ivf = self._ivf()
        if ivf is None:
            if self.size <= exact_index_max:
                return self
        elif self.size < REFIT_GROWTH * int(self.params.get("sized_for", 0) or 1) or ivf_lists(self.size) <= ivf.nlist:
            return self
        ids, vectors = self.vectors()
        return VectorIndex._build_ivf(ids, vectors, int(self.params.get("seed", 0)))

    def write(self, path: Path) -> None:
        """The FAISS file, and its build parameters and embedding record as JSON beside it (``dense.json``)."""
        faiss.write_index(self.index, str(path))
        described = {**self.params, "ntotal": self.size, "dim": self.dim}
        if self.embedding is not None:
            described["embedding"] = self.embedding
        path.with_suffix(".json").write_text(json.dumps(described, indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> VectorIndex:
        params_file = path.with_suffix(".json")
        params = json.loads(params_file.read_text()) if params_file.exists() else None
        embedding = None
        if params is not None:
            params.pop("ntotal", None)
            params.pop("dim", None)
            embedding = params.pop("embedding", None)
        return cls(faiss.read_index(str(path)), params, embedding)


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
