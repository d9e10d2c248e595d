"""Sentence embeddings with the configured sentence-transformers model and backend.

Vectors are L2-normalised float32, so inner product is cosine similarity everywhere
(FAISS index, verified-answer matching, sentiment features).

Backends (``HELPMATE_EMBEDDING_BACKEND``) run the same MiniLM weights in other arithmetic, because on
CPU machines the embedding model sets ingestion time, sentiment scoring time and most of a question's
CPU time outside generation:

- ``torch``: float32 PyTorch, the reference every other backend is measured against.
- ``torch-bf16``: the whole model stored and run in bfloat16 (weights, activations, layer norms; matrix
  products accumulate in float32). Fast only where the CPU multiplies bfloat16 natively (AVX-512 BF16 or
  AMX); elsewhere it is emulated. It replaced ``torch.autocast`` (bfloat16 products, float32 layer norms
  and residuals), which casts activations to and fro around every layer and was the slower of the two in
  a one-off comparison (not a repo command). Its vectors stay within 1.3e-4 in cosine of float32's
  (bench/embed.py), so indexes of either serve both.
- ``torch-int8``: PyTorch dynamic int8 quantisation of the linear layers (VNNI). Its vectors move far
  from float32 (cosine distance up to 0.22), so it is lossy, though SciFact nDCG@10 and SST-2 moved by
  about 0.002: BENCHMARKS.md ("Embedding backends"). Fastest one text at a time: the chat's one-message
  sentiment runs on it by default (``HELPMATE_SENTIMENT_BACKEND``, assistant/sentiment/model.py).
- ``auto`` (the default, chosen by ``bench/embed.py``): ``torch-bf16`` where the CPU has native
  bfloat16 (3.1x float32's speed on batched chunks on an AMX Xeon, SciFact nDCG@10 -0.0005), else ``torch``.

ONNX Runtime and OpenVINO (sentence-transformers' ``backend="onnx"|"openvino"``) need
``optimum-onnx`` or ``optimum-intel``, and no release of either installs beside transformers 5.23
(pip: ResolutionImpossible, checked on PyPI on 2026-11-30: optimum-onnx 0.1.0 needs transformers<4.58, optimum-intel 2.2.0 transformers<5.6), so they are not offered.

Torch backends need no export: they are applied when the model loads (under a second).
``helpmate models prepare`` checks the default backend on this machine and writes what it found
(``prepared.json``, keyed by model and backend under ``<models dir>/embeddings``). Every index
records the backend and the vectors of a few probe texts (``record``), so a query with another
backend whose vectors differ by more than ``TOLERANCE`` is refused with a message to re-ingest
(``mismatch``) instead of silently ranking worse.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Sequence, get_args

import numpy as np

from assistant.config import ModelBackend, Settings
from assistant.modelstore import embedding_model_path


# Vectors the query-time cache keeps (about 30 MB at 384 dimensions).
CACHE_SIZE = 20_000
BACKENDS: tuple[str, ...] = tuple(b for b in get_args(ModelBackend) if b != "auto")  # every backend but ``auto``
# Largest cosine distance (1 - cosine) to float32 of a backend's vectors of the probe texts, beyond which an
# index built with one backend is refused to queries with another. torch-bf16 measured 1.3e-4 at most
# (BENCHMARKS.md), torch-int8 up to 0.22; 1e-3 keeps scores within ~0.045 of each other even in the worst direction.
TOLERANCE = 1e-3
# What each backend is allowed to differ from float32 when `models prepare` checks it (int8 is lossy by design).
BACKEND_LIMITS = {"torch": 1e-6, "torch-bf16": TOLERANCE, "torch-int8": 0.25}
PROBE_TEXTS = (
    "Where is my refund? I sent the boots back three weeks ago and nobody answers my emails.",
    "How long do I have to return an item?",
    "Thank you, the replacement arrived today and fits perfectly.",
    "Express shipping costs 14.90 EUR and arrives the next business day when you order before 2 pm. Standard "
    "shipping costs 4.95 EUR, is free above 75 EUR and takes three to five business days within Germany and "
    "Austria; deliveries to Switzerland take longer because every parcel goes through customs, and the duties "
    "are shown at checkout. Orders placed on weekends or public holidays are packed on the next business day.",
)
PREPARED_FILE = "prepared.json"


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX); Linux flags, else False."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def resolve_backend(settings: Settings) -> str:
    """The backend ``settings`` ask for, with ``auto`` decided for this machine."""
    if settings.embedding_backend != "auto":
        return settings.embedding_backend
    return "torch-bf16" if settings.device == "cpu" and cpu_has_bf16() else "torch"


def apply_backend(module, backend: str, inplace: bool = False):
    """``module`` ready to run under ``backend``: bfloat16 converts it in place, int8 quantises a copy of its
    linear layers (``inplace``: the module itself, for a caller that already holds a private copy), float32
    leaves it as is. Outputs of a bfloat16 module are bfloat16; callers turn them into
    float32 (sentence-transformers does for ``encode``)."""
    import torch

    if backend == "torch-bf16":
        return module.to(torch.bfloat16)
    if backend != "torch-int8":
        return module
    return quantize_dynamic_int8(module, inplace=inplace)


# Warnings libraries give about what Helpmate does on purpose: eager int8 quantisation (deprecated in
# favour of torchao), tracing the one-text encoder (deprecated in favour of torch.compile; its Python
# branches fixed for one unpadded text, as intended), a transformers 5 deprecation inside peft's merge.
_KNOWN_WARNINGS = (
    (DeprecationWarning, r"torch\.ao\.quantization is deprecated"),
    (UserWarning, r"torch\.quantize_per_tensor, torch\.quantize_per_channel"),
    (Warning, r"Converting a tensor to a Python"),  # torch.jit.TracerWarning
    (DeprecationWarning, r"`torch\.jit\.trace(_method)?` is deprecated"),
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
)


def silence_known_warnings() -> None:
    """Filter out ``_KNOWN_WARNINGS``, and only those, so they stay out of the chat's log.

    A ``warnings.catch_warnings()`` block silencing everything would do it for every thread of the
    chat server while it lasts, and can restore a stale filter list when two threads overlap. These
    filters are permanent and narrow; adding one again replaces it, so calls are cheap and repeatable.
    """
    for category, message in _KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def quiet_model_loading() -> None:
    """Loading a model prints nothing: transformers' per-load progress bar ("Loading weights") and load
    report (the pooler weights the sentiment encoder leaves out on purpose) would stand between the
    lines of a terminal chat and fill the web app's log; the known warnings are filtered too. Like the
    filters, this is permanent for the process (a set-and-restore around each load would race between
    the chat server's threads), and only transformers' own log and bars: Helpmate's progress bars and
    transformers' errors still show. Called before every load of a model."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    silence_known_warnings()


def quantize_dynamic_int8(module, inplace: bool = False):
    """PyTorch dynamic int8 quantisation of ``module``'s linear layers (activations quantised per call; CPU)."""
    import torch

    silence_known_warnings()
    return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=inplace)


class Embedder:
    """A loaded embedding model with its tokenizer (the chunker counts tokens with it).

    Query-time callers pass ``cache=True``: one chat turn embeds the same question for the router,
    the verified-answer lookup and retrieval, and the support check embeds the sentences of
    passages that recur from question to question. Cached, each is computed once, so the CPU
    is left to the language model. Ingestion embeds each chunk once and does not use the cache.
    """

    def __init__(self, settings: Settings):
        from sentence_transformers import SentenceTransformer

        self.settings = settings
        self.path = embedding_model_path(settings)
        self.backend = resolve_backend(settings)
        self.device = settings.device
        quiet_model_loading()
        self.model = apply_backend(SentenceTransformer(str(self.path), device=settings.device), self.backend)
        self.batch_size = settings.embedding_batch_size
        self.name = self.path.parent.name if self.path.name == "model" else self.path.name
        self.dim: int = self.model.get_embedding_dimension()
        self.max_tokens: int = int(self.model.max_seq_length)
        self.tokenizer = self.model.tokenizer
        # A tokenizer is not safe to call from several threads at once (Rust "Already borrowed").
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._probe: np.ndarray | None = None

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
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        # Normalised here, in float32: a bfloat16 model's own normalisation leaves norms up to 0.4% off one.
        vectors = np.asarray(vectors, dtype=np.float32)
        return np.ascontiguousarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without special tokens."""
        with self._lock:
            encoded = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def probe(self) -> np.ndarray:
        """This backend's vectors of ``PROBE_TEXTS`` (computed once)."""
        if self._probe is None:
            self._probe = self.encode(list(PROBE_TEXTS))
        return self._probe

    def record(self) -> dict:
        """What an index records about the vectors it holds: model, backend and the probe texts' vectors."""
        return {"model": self.name, "backend": self.backend,
                "probe": [[round(float(x), 6) for x in row] for row in self.probe()]}


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest cosine distance (1 - cosine) between matching rows of two sets of normalised vectors."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cosines = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(max(0.0, 1.0 - cosines.min()))


def mismatch(recorded: dict | None, embedder: Embedder, what: str) -> str | None:
    """Why ``embedder``'s vectors cannot be mixed with those an index recorded (``record``), or None.

    An index written before backends were recorded holds float32 ``torch`` vectors. Within ``TOLERANCE``
    another backend is accepted (bfloat16 moved vectors by at most 5.3e-5 in bench/embed.py); beyond it
    the ranking would quietly degrade, so the caller refuses with this message.
    """
    recorded = recorded or {"backend": "torch"}
    backend = recorded.get("backend", "torch")
    if backend == embedder.backend or recorded.get("model", embedder.name) != embedder.name:
        return None  # the same backend; another model is the caller's own check
    if recorded.get("probe"):
        reference = np.asarray(recorded["probe"], dtype=np.float32)
    else:
        reference = get_embedder(embedder.settings.model_copy(update={"embedding_backend": backend})).probe()
    gap = distance(reference, embedder.probe())
    if gap <= TOLERANCE:
        return None
    return (f"{what} was embedded with the {backend} embedding backend, and this process uses {embedder.backend} "
            f"(HELPMATE_EMBEDDING_BACKEND={embedder.settings.embedding_backend}), whose vectors differ from it by up to "
            f"{gap:.4f} in cosine (tolerance {TOLERANCE}); set HELPMATE_EMBEDDING_BACKEND={backend}, or re-ingest the "
            f"documents with this backend into a new knowledge base (`helpmate ingest PATH --kb NEW_NAME`)")


def prepared_path(settings: Settings, backend: str | None = None) -> Path:
    """Where ``models prepare`` writes what it found for the configured model and ``backend``."""
    path = embedding_model_path(settings)
    name = path.parent.name if path.name == "model" else path.name
    return settings.models_dir / "embeddings" / name / (backend or resolve_backend(settings)) / PREPARED_FILE


def prepare_backend(settings: Settings, force: bool = False) -> dict:
    """Check the configured (default: ``auto``) backend on this machine, once, and record the result.

    Torch backends export nothing; what is worth doing once is to load the backend, embed the probe
    texts, compare them with float32 and refuse a backend that strays beyond its limit
    (``BACKEND_LIMITS``). The result is written to ``prepared_path`` (temporary name, then renamed).
    """
    backend = resolve_backend(settings)
    target = prepared_path(settings, backend)
    if target.exists() and not force:
        return json.loads(target.read_text())
    import torch

    embedder = get_embedder(settings)
    reference = get_embedder(settings.model_copy(update={"embedding_backend": "torch"}))
    gap = distance(reference.probe(), embedder.probe())
    if gap > BACKEND_LIMITS[backend]:
        raise RuntimeError(f"the {backend} embedding backend strays {gap:.4f} in cosine from float32 on this machine "
                           f"(limit {BACKEND_LIMITS[backend]}); set HELPMATE_EMBEDDING_BACKEND=torch")
    result = {"model": embedder.name, "backend": backend, "requested": settings.embedding_backend,
              "max_cosine_distance_to_float32": round(gap, 8), "cpu_bf16": cpu_has_bf16(),
              "torch": torch.__version__, "device": settings.device,
              "prepared": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(target)
    return result


_embedders: dict[tuple, Embedder] = {}
_embedders_lock = threading.Lock()


def get_embedder(settings: Settings) -> Embedder:
    """The process-wide embedder for the given settings (loading takes a second or two)."""
    key = (settings.embedding_model, settings.device, settings.embedding_batch_size, resolve_backend(settings))
    with _embedders_lock:
        if key not in _embedders:
            _embedders[key] = Embedder(settings)
        return _embedders[key]
