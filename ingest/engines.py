"""Where ingestion's heavy work runs: in this process (``local``) or on a Ray cluster (``ray``).

The pipeline (``ingest.pipeline.Ingestor``) keeps every decision — which files changed, which
documents to re-embed, what failed and why, checkpoints, the FAISS index, the database — and
hands only two pure steps to an engine:

* ``parse``: turn files into documents (``load_file``), a loader error becoming its message;
* ``chunk_and_embed``: cut documents into chunks and embed them.

Both engines return the same results in the same order, so a knowledge base ingested by either
ends in the same state. The Ray engine keeps a pool of actors, one per CPU of the cluster, each
holding the embedding model and its tokenizer: files are parsed on the actors (a few in flight
ahead of the pipeline), and each checkpoint's documents are split into batches of
``batch_documents`` spread over the actors, so a single large file (a BEIR corpus of thousands
of records) is chunked and embedded in parallel too. Workers read files by the paths the driver
discovered, so on a multi-machine cluster those paths must be on shared storage mounted at the
same place; the index and database are written by the driver alone.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence, TypeVar

import numpy as np
from tqdm import tqdm

from assistant import ray_cluster
from assistant.config import Settings
from assistant.embeddings import Embedder
from assistant.ray_cluster import RayUnavailableError
from ingest.chunking import ChunkDraft, Chunker, tokenizer_chunker
from ingest.loaders import LoadedDocument, LoaderError, load_file

ENGINES: tuple[str, ...] = ("local", "ray")

# A file's documents, the loader's error message, or None for a file the pipeline did not ask to parse.
ParseResult = list[LoadedDocument] | str | None


class EngineError(RayUnavailableError):
    """The engine cannot run: Ray missing or short of CPUs, or workers that differ from this process."""


class ParseRequest(Protocol):
    """What the pipeline knows about a file before parsing it."""

    path: Path
    needs_parsing: bool


Item = TypeVar("Item", bound=ParseRequest)


class IngestEngine(Protocol):
    """Executes the parse and chunk+embed steps of an ingestion run."""

    name: str
    model_name: str
    dim: int

    def parse(self, items: Iterable[Item]) -> Iterator[tuple[Item, ParseResult]]:
        """Each item with its parse result, in the order given; parses only items that need it."""
        ...

    def chunk_and_embed(self, documents: Sequence[LoadedDocument]) -> tuple[list[list[ChunkDraft]], np.ndarray]:
        """The chunks of each document (in order) and one normalised vector per chunk (flattened order)."""
        ...

    def close(self) -> None: ...


def parse_file(path: Path) -> list[LoadedDocument] | str:
    """``load_file``, with a loader error returned as its message (it is a result, not a crash)."""
    try:
        return load_file(path)
    except LoaderError as error:
        return str(error)


def embed_chunks(embedder: Embedder, drafts_per_doc: list[list[ChunkDraft]], bar: tqdm | None = None) -> np.ndarray:
    """One normalised vector per chunk (flattened order), embedded in steps of a few model batches."""
    texts = [d.embedding_text for drafts in drafts_per_doc for d in drafts]
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    step = 4 * embedder.batch_size
    for start in range(0, len(texts), step):
        vectors[start:start + step] = embedder.encode(texts[start:start + step])
        if bar is not None:
            bar.update(min(step, len(texts) - start))
    return vectors


class LocalEngine:
    """Everything in this process, one file after another (the default)."""

    name = "local"

    def __init__(self, embedder: Embedder, chunker: Chunker, disable_bars: bool | None = None):
        self.embedder = embedder
        self.chunker = chunker
        self.disable_bars = disable_bars
        self.model_name = embedder.name
        self.dim = embedder.dim

    def parse(self, items: Iterable[Item]) -> Iterator[tuple[Item, ParseResult]]:
        for item in items:
            yield item, (parse_file(item.path) if item.needs_parsing else None)

    def chunk_and_embed(self, documents: Sequence[LoadedDocument]) -> tuple[list[list[ChunkDraft]], np.ndarray]:
        drafts_per_doc = self.chunker.chunk(list(documents))
        total = sum(len(drafts) for drafts in drafts_per_doc)
        with tqdm(total=total, desc="embed", unit="chunk", disable=self.disable_bars, leave=False) as bar:
            return drafts_per_doc, embed_chunks(self.embedder, drafts_per_doc, bar)

    def close(self) -> None:
        pass


class _Worker:
    """A Ray actor: the embedding model and chunker of one CPU of the cluster."""

    def __init__(self, settings: Settings):
        import torch

        from assistant.embeddings import get_embedder

        torch.set_num_threads(1)  # one actor per CPU: more threads would only fight each other
        self.embedder = get_embedder(settings)
        self.chunker = tokenizer_chunker(self.embedder.tokenizer, settings.chunk_tokens, settings.chunk_overlap)

    def describe(self) -> tuple[str, int, str]:
        import socket

        return self.embedder.name, self.embedder.dim, socket.gethostname()

    def parse(self, path: str) -> list[LoadedDocument] | str:
        return parse_file(Path(path))

    def chunk_and_embed(self, documents: list[LoadedDocument]) -> tuple[list[list[ChunkDraft]], np.ndarray]:
        drafts_per_doc = self.chunker.chunk(documents)
        return drafts_per_doc, embed_chunks(self.embedder, drafts_per_doc)


class RayEngine:
    """Parsing, chunking and embedding on the actors of a Ray cluster; see the module docstring."""

    name = "ray"

    def __init__(self, settings: Settings, address: str | None = None, actors: int | None = None,
                 batch_documents: int = 64, disable_bars: bool | None = None, start_timeout_s: float = 300.0):
        self._owns_ray = ray_cluster.connect(address)
        self._actors: list = []
        try:
            started = ray_cluster.start_actors(_Worker, (settings,), actors, start_timeout_s)
        except BaseException:
            self.close()
            raise
        self._actors = [actor for actor, _ in started]
        models = {(name, dim) for _, (name, dim, _) in started}
        if len(models) != 1:
            self.close()
            raise EngineError(f"Ray workers load different embedding models {sorted(models)}; install the same "
                              f"helpmate and model on every machine of the cluster")
        (self.model_name, self.dim), = models
        self.hosts = sorted({host for _, (*_, host) in started})
        self.batch_documents = batch_documents
        self.disable_bars = disable_bars
        self._next = 0

    @property
    def actors(self) -> int:
        return len(self._actors)

    def _actor(self):
        actor = self._actors[self._next % len(self._actors)]
        self._next += 1
        return actor

    def parse(self, items: Iterable[Item]) -> Iterator[tuple[Item, ParseResult]]:
        import ray

        window: deque = deque()
        ahead = 2 * len(self._actors)
        for item in items:
            window.append((item, self._actor().parse.remote(str(item.path)) if item.needs_parsing else None))
            while len(window) > ahead:
                yield self._parsed(ray, *window.popleft())
        while window:
            yield self._parsed(ray, *window.popleft())

    @staticmethod
    def _parsed(ray, item: Item, ref) -> tuple[Item, ParseResult]:
        return item, (ray.get(ref) if ref is not None else None)

    def chunk_and_embed(self, documents: Sequence[LoadedDocument]) -> tuple[list[list[ChunkDraft]], np.ndarray]:
        import ray

        documents = list(documents)
        step = self.batch_documents
        refs = [self._actor().chunk_and_embed.remote(documents[start:start + step]) for start in range(0, len(documents), step)]
        drafts_per_doc: list[list[ChunkDraft]] = []
        parts: list[np.ndarray] = [np.zeros((0, self.dim), dtype=np.float32)]
        with tqdm(total=len(documents), desc="embed (ray)", unit="doc", disable=self.disable_bars, leave=False) as bar:
            for ref in refs:  # in submission order, so chunks stay in document order
                batch_drafts, vectors = ray.get(ref)
                drafts_per_doc += batch_drafts
                parts.append(vectors)
                bar.update(len(batch_drafts))
        return drafts_per_doc, np.concatenate(parts)

    def close(self) -> None:
        ray_cluster.stop_actors(self._actors)
        self._actors = []
        ray_cluster.disconnect(self._owns_ray)
        self._owns_ray = False


def make_engine(name: str, settings: Settings, embedder: Embedder, chunker: Chunker, address: str | None = None,
                disable_bars: bool | None = None) -> IngestEngine:
    """The engine called ``name`` (``local`` or ``ray``); ``address`` is the Ray cluster's."""
    if name == "local":
        if address:
            raise ValueError("--address names a Ray cluster; use it with --engine ray")
        return LocalEngine(embedder, chunker, disable_bars)
    if name == "ray":
        return RayEngine(settings, address, disable_bars=disable_bars)
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
