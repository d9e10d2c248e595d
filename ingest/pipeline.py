"""The ingestion job: discover → load → chunk → embed → index, incremental and crash-safe.

The documents table is the manifest. A file whose bytes hash the same as last time is skipped
without being parsed; a file that changed is parsed and each of its documents compared by
content hash, so only new or changed documents are chunked and embedded. Work is committed in
checkpoints of ``commit_every`` documents: each checkpoint writes a new index generation and
then commits the chunks together with the switch to that generation (see ``vector_index``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session
from tqdm import tqdm

from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import Chunk, Document, IngestionRun, KnowledgeBase, utcnow
from assistant.embeddings import Embedder, get_embedder, mismatch
from assistant.retrieval.bm25_index import build_for_knowledge_base
from assistant.retrieval.vector_index import (
    DENSE_FILE,
    VectorIndex,
    generation_dir,
    kb_index_dir,
    publish_generation,
    read_dense,
    remove_stale_generations,
)
from ingest.chunking import ChunkDraft, tokenizer_chunker
from ingest.discovery import discover
from ingest.engines import IngestEngine, LocalEngine, make_engine
from ingest.loaders.archive import ZIP_SUFFIXES, check_unzipped_size
from ingest.loaders.base import LoadedDocument, LoaderError
from ingest.locking import kb_lock

_SQL_BATCH = 500


@dataclass
class IngestSummary:
    """What a run did; ``exit_code`` is 0 when every file was ingested and 2 when some were skipped."""

    kb: str
    run_id: int
    files: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    pruned: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    index_generation: int = 0
    index_kind: str = ""
    stopped_early: bool = False

    @property
    def exit_code(self) -> int:
        return 2 if self.failed else 0

    def as_dict(self) -> dict:
        embedded = self.added + self.updated
        return {
            "kb": self.kb, "run_id": self.run_id, "files": self.files, "added": self.added, "updated": self.updated,
            "unchanged": self.unchanged, "pruned": self.pruned, "failed": self.failed,
            "chunks_added": self.chunks_added, "chunks_removed": self.chunks_removed,
            "seconds": round(self.seconds, 3),
            "documents_per_s": round(embedded / self.seconds, 1) if self.seconds else 0.0,
            "chunks_per_s": round(self.chunks_added / self.seconds, 1) if self.seconds else 0.0,
            "index_generation": self.index_generation, "index_kind": self.index_kind,
            "stopped_early": self.stopped_early, "exit_code": self.exit_code,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_under(path: str, roots: Sequence[Path]) -> bool:
    candidate = Path(path)
    return any(candidate == root or root in candidate.parents for root in roots)


@dataclass
class _Pending:
    """Documents waiting for the next checkpoint."""

    to_index: list[tuple[LoadedDocument, str, int, str]] = field(default_factory=list)  # doc, path, size, file hash
    to_delete: list[int] = field(default_factory=list)  # document ids whose chunks and rows go
    hash_only: list[tuple[int, str]] = field(default_factory=list)  # unchanged documents of a rewritten file
    failures: list[tuple[str, str, int, str]] = field(default_factory=list)  # path, hash, size, reason

    def __len__(self) -> int:
        return len(self.to_index) + len(self.to_delete) + len(self.failures)


@dataclass
class _FileState:
    """A discovered file as the pipeline sees it before parsing (``reason``: why it cannot be read)."""

    path: Path
    previous: list[tuple[int, str, str | None, str, str]]
    reason: str | None
    size: int
    file_hash: str
    unchanged: bool

    @property
    def needs_parsing(self) -> bool:
        return self.reason is None and not self.unchanged


class Ingestor:
    """Runs one ingestion job into one knowledge base.

    ``engine`` executes parsing, chunking and embedding (``ingest.engines``: this process by
    default, or a Ray cluster); every decision and every write stays here, so the engines agree.
    """

    def __init__(self, kb: str, settings: Settings, embedder: Embedder | None = None,
                 show_progress: bool | None = None, engine: IngestEngine | None = None):
        self.kb_name = kb
        self.settings = settings
        self.embedder = embedder or get_embedder(self.settings)
        self.chunker = tokenizer_chunker(self.embedder.tokenizer, self.settings.chunk_tokens, self.settings.chunk_overlap)
        # None lets tqdm decide: bars on a terminal, none in cron logs.
        self.disable_bars = None if show_progress is None else not show_progress
        self.engine = engine or LocalEngine(self.embedder, self.chunker, self.disable_bars)
        if (self.engine.model_name, self.engine.dim) != (self.embedder.name, self.embedder.dim):
            raise ValueError(f"the {self.engine.name} engine embeds with {self.engine.model_name} ({self.engine.dim} dims) but "
                             f"this process with {self.embedder.name} ({self.embedder.dim} dims); install the same model everywhere")

    def run(self, paths: Sequence[Path], include: Sequence[str] = (), exclude: Sequence[str] = (),
            prune: bool = False, strict: bool = False, reparse: bool = False) -> IngestSummary:
        """Ingest ``paths`` (files or folders); ``prune`` removes documents whose files are gone, ``strict``
        stops at the first file that fails. A file whose bytes did not change is skipped unless
        ``reparse``: then it is parsed again (a newer loader may read it better) and only documents
        whose text changed are embedded again."""
        files = discover(paths, include, exclude)
        roots = [Path(p).expanduser().resolve() for p in paths]
        with kb_lock(kb_index_dir(self.settings, self.kb_name) / ".lock", self.kb_name):
            kb_id, generation = self._open_kb()
            with session_scope(self.settings) as session:
                run = IngestionRun(kb_id=kb_id)
                session.add(run)
                session.flush()
                run_id = run.id
            summary = IngestSummary(kb=self.kb_name, run_id=run_id, files=len(files))
            started = time.perf_counter()
            try:
                self._ingest(kb_id, generation, files, roots, prune, strict, reparse, summary)
            except BaseException:
                summary.seconds = time.perf_counter() - started
                self._finish_run(run_id, summary, "failed")
                raise
            summary.seconds = time.perf_counter() - started
            self._finish_run(run_id, summary, "partial" if summary.failed else "succeeded")
            return summary

    def _open_kb(self) -> tuple[int, int]:
        with session_scope(self.settings) as session:
            kb = session.scalar(select(KnowledgeBase).where(KnowledgeBase.name == self.kb_name))
            if kb is None:
                kb = KnowledgeBase(name=self.kb_name, embedding_model=self.embedder.name, dimension=self.embedder.dim)
                session.add(kb)
                session.flush()
            elif kb.embedding_model != self.embedder.name or kb.dimension != self.embedder.dim:
                raise ValueError(
                    f"knowledge base {self.kb_name!r} was indexed with {kb.embedding_model} ({kb.dimension} dims) but "
                    f"HELPMATE_EMBEDDING_MODEL gives {self.embedder.name} ({self.embedder.dim} dims); use another --kb name"
                )
            return kb.id, kb.index_generation

    def _indexed_hash(self, document: LoadedDocument) -> str:
        """The document's text together with what its chunks depend on besides (``Chunker.signature``), so
        that ``--reparse`` embeds again a document whose chunks would now come out differently."""
        return hashlib.sha256(f"{document.content_hash}\n{self.chunker.signature}".encode()).hexdigest()

    def _ingest(self, kb_id: int, generation: int, files: list[Path], roots: list[Path], prune: bool, strict: bool,
                reparse: bool, summary: IngestSummary) -> None:
        index = read_dense(self.settings, self.kb_name, generation, self.embedder.dim)
        # New vectors must be comparable with those already indexed (another backend may drift from them).
        problem = mismatch(index.embedding, self.embedder, f"knowledge base {self.kb_name!r}") if index.size else None
        if problem:
            raise ValueError(problem)
        with session_scope(self.settings) as session:
            known: dict[str, list[tuple[int, str, str | None, str, str]]] = {}
            for doc_id, source, path, file_hash, content_hash, status in session.execute(
                select(Document.id, Document.source, Document.path, Document.file_hash, Document.content_hash, Document.status)
                .where(Document.kb_id == kb_id)
            ):
                known.setdefault(path, []).append((doc_id, source, content_hash, file_hash, status))

        pending = _Pending()
        seen_paths: set[str] = set()
        bar = tqdm(total=len(files), desc=f"ingest {self.kb_name}", unit="file", disable=self.disable_bars)
        for state, parsed in self.engine.parse(self._scan(files, known, reparse)):
            bar.update(1)
            path, previous, reason, size, file_hash = state.path, state.previous, state.reason, state.size, state.file_hash
            key = str(path)
            seen_paths.add(key)
            if state.unchanged:
                summary.unchanged += len(previous)
                continue
            documents: list[LoadedDocument] = []
            if isinstance(parsed, str):
                reason = parsed
            elif parsed is not None:
                documents = parsed
            if reason is not None:
                pending.failures.append((key, file_hash, size, reason))
                summary.failed.append({"path": key, "error": reason})
                if strict:
                    summary.stopped_early = True
                    break
                continue
            by_source = {source: (doc_id, content_hash, status) for doc_id, source, content_hash, _, status in previous}
            sources_in_file: set[str] = set()
            for document in documents:
                if document.source in sources_in_file:  # a repeated record id: the first one wins
                    continue
                sources_in_file.add(document.source)
                old = by_source.pop(document.source, None)
                if old and old[1] == self._indexed_hash(document) and old[2] == "indexed":
                    pending.hash_only.append((old[0], file_hash))
                    summary.unchanged += 1
                else:
                    pending.to_index.append((document, key, size, file_hash))
                    if old:
                        pending.to_delete.append(old[0])
                        summary.updated += 1
                    else:
                        summary.added += 1
            # Records that disappeared from a multi-document file, or a failed placeholder now replaced.
            for doc_id, _, status in by_source.values():
                pending.to_delete.append(doc_id)
                summary.pruned += status == "indexed"
            if len(pending) >= self.settings.commit_every:
                generation = self._checkpoint(kb_id, generation, index, pending, summary)
                pending = _Pending()
            bar.set_postfix(embedded=summary.added + summary.updated, failed=len(summary.failed), refresh=False)
        bar.close()

        if prune and not summary.stopped_early:
            for path, docs in known.items():
                if path not in seen_paths and (_is_under(path, roots) or not Path(path).exists()):
                    pending.to_delete.extend(doc_id for doc_id, *_ in docs)
                    summary.pruned += len(docs)
        generation = self._checkpoint(kb_id, generation, index, pending, summary, force=generation == 0)
        summary.index_generation = generation
        summary.index_kind = index.kind

    def _scan(self, files: list[Path], known: dict[str, list], reparse: bool) -> Iterator[_FileState]:
        """Each file's checks and hash, lazily (an engine parses a few files ahead of the decisions)."""
        for path in files:
            previous = known.get(str(path), [])
            reason = self._check_file(path)
            size = path.stat().st_size if path.exists() else 0
            file_hash = file_sha256(path) if reason is None else ""
            unchanged = bool(reason is None and previous and not reparse
                             and all(h == file_hash and s == "indexed" for _, _, _, h, s in previous))
            yield _FileState(path, previous, reason, size, file_hash, unchanged)

    def _check_file(self, path: Path) -> str | None:
        try:
            size = path.stat().st_size
            with open(path, "rb"):
                pass
        except OSError as error:
            return f"unreadable: {error.strerror or error}"
        if size == 0:
            return "empty file"
        if size > self.settings.max_file_mb * 1024 * 1024:
            return f"oversized: {size / 1024 / 1024:.1f} MB is above HELPMATE_MAX_FILE_MB={self.settings.max_file_mb:g}"
        # Here, before any engine parses the file, so a ZIP bomb never reaches a parser (or a Ray worker).
        if path.suffix.lower() in ZIP_SUFFIXES:
            try:
                check_unzipped_size(path, self.settings.max_unzipped_mb)
            except LoaderError as error:
                return str(error)
        return None

    def _checkpoint(self, kb_id: int, generation: int, index: VectorIndex, pending: _Pending, summary: IngestSummary,
                    force: bool = False) -> int:
        """Commit pending work: new index generation on disk first, then the database switch to it."""
        if not (pending.to_index or pending.to_delete) and not force:
            if pending.failures or pending.hash_only:
                with session_scope(self.settings) as session:
                    self._write_rows(session, kb_id, pending, [], [])
            return generation
        drafts_per_doc, vectors = self.engine.chunk_and_embed([doc for doc, *_ in pending.to_index])
        drafts = [d for doc_drafts in drafts_per_doc for d in doc_drafts]

        with session_scope(self.settings) as session:
            old_chunk_ids = self._delete_documents(session, pending.to_delete)
            new_ids = self._write_rows(session, kb_id, pending, drafts_per_doc, drafts)
            index.remove(np.asarray(old_chunk_ids, dtype=np.int64))
            index.add(np.asarray(new_ids, dtype=np.int64), vectors)
            fitted = index.fit_kind(self.settings.exact_index_max)
            if fitted is not index:
                index.index, index.params = fitted.index, fitted.params
            index.embedding = self.embedder.record()
            new_generation = generation + 1
            target = generation_dir(self.settings, self.kb_name, new_generation)
            staging = target.with_name(target.name + ".tmp")
            staging.mkdir(parents=True, exist_ok=True)
            index.write(staging / DENSE_FILE)
            build_for_knowledge_base(session, kb_id).write(staging)  # BM25 over every chunk, same generation
            publish_generation(staging, target)
            kb = session.get(KnowledgeBase, kb_id)
            kb.index_generation = new_generation
            kb.index_kind = index.kind
        summary.chunks_added += len(drafts)
        summary.chunks_removed += len(old_chunk_ids)
        remove_stale_generations(self.settings, self.kb_name, keep=new_generation)
        return new_generation

    def _delete_documents(self, session: Session, doc_ids: list[int]) -> list[int]:
        chunk_ids: list[int] = []
        for start in range(0, len(doc_ids), _SQL_BATCH):
            batch = doc_ids[start:start + _SQL_BATCH]
            chunk_ids += session.scalars(select(Chunk.id).where(Chunk.document_id.in_(batch))).all()
            session.execute(delete(Chunk).where(Chunk.document_id.in_(batch)))
            session.execute(delete(Document).where(Document.id.in_(batch)))
        return chunk_ids

    def _write_rows(self, session: Session, kb_id: int, pending: _Pending,
                    drafts_per_doc: list[list[ChunkDraft]], drafts: list[ChunkDraft]) -> list[int]:
        """Insert documents and chunks; returns the new chunk ids in the order of ``drafts``."""
        for doc_id, file_hash in pending.hash_only:
            session.execute(Document.__table__.update().where(Document.id == doc_id).values(file_hash=file_hash))
        for path, file_hash, size, reason in pending.failures:
            existing = session.scalars(select(Document).where(Document.kb_id == kb_id, Document.path == path)).all()
            if existing:  # keep the last good version searchable; the next run retries the file
                for doc in existing:
                    doc.status, doc.error = "failed", reason
            else:
                session.add(Document(kb_id=kb_id, source=path, path=path, format=Path(path).suffix.lstrip(".").lower() or "?",
                                     title=Path(path).name, file_hash=file_hash, size_bytes=size, status="failed", error=reason))
        session.flush()
        if not pending.to_index:
            return []
        doc_rows = [
            {"kb_id": kb_id, "source": doc.source, "path": path, "format": doc.format, "title": doc.title[:1000],
             "file_hash": file_hash, "content_hash": self._indexed_hash(doc), "size_bytes": size, "status": "indexed",
             "error": None, "chunk_count": len(doc_drafts), "updated_at": utcnow()}
            for (doc, path, size, file_hash), doc_drafts in zip(pending.to_index, drafts_per_doc)
        ]
        doc_ids = list(session.scalars(insert(Document).returning(Document.id, sort_by_parameter_order=True), doc_rows))
        chunk_rows = [
            {"document_id": doc_id, "kb_id": kb_id, "ordinal": ordinal, "text": d.text, "title": (d.title or "")[:1000],
             "section": (d.section or None) and d.section[:2000], "page": d.page, "token_count": d.token_count}
            for doc_id, doc_drafts in zip(doc_ids, drafts_per_doc) for ordinal, d in enumerate(doc_drafts)
        ]
        if not chunk_rows:
            return []
        return list(session.scalars(insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), chunk_rows))

    def _finish_run(self, run_id: int, summary: IngestSummary, status: str) -> None:
        with session_scope(self.settings) as session:
            run = session.get(IngestionRun, run_id)
            run.finished_at = utcnow()
            run.status = status
            run.documents_added, run.documents_updated = summary.added, summary.updated
            run.documents_unchanged, run.documents_failed = summary.unchanged, len(summary.failed)
            run.documents_pruned = summary.pruned
            run.chunks_added, run.chunks_removed = summary.chunks_added, summary.chunks_removed
            run.seconds = summary.seconds
            run.errors = summary.failed


def ingest_paths(paths: Sequence[Path], kb: str, settings: Settings, engine: str = "local",
                 address: str | None = None, **options) -> IngestSummary:
    """Ingest files or folders into knowledge base ``kb``; see ``Ingestor.run`` for the options.

    ``engine`` is ``local`` (this process) or ``ray`` (the Ray cluster at ``address``, or a new
    local Ray instance when it is empty).
    """
    show_progress = options.pop("show_progress", None)
    embedder = get_embedder(settings)
    disable_bars = None if show_progress is None else not show_progress
    chunker = tokenizer_chunker(embedder.tokenizer, settings.chunk_tokens, settings.chunk_overlap)
    runner = make_engine(engine, settings, embedder, chunker, address, disable_bars)
    try:
        return Ingestor(kb, settings, embedder, show_progress=show_progress, engine=runner).run(paths, **options)
    finally:
        runner.close()
