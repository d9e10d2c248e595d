"""Sentiment of customer messages: negative, neutral or positive, and a score in [-1, 1].

The model is the packaged sentence encoder (all-MiniLM-L6-v2) fine-tuned for sentiment with a
small LoRA adapter, mean pooling, and a linear head that also sees VADER's four lexicon scores
(negative, neutral, positive, compound): the fine-tuned encoder reads phrasing and context
("not bad at all", "third time I am asking"), the lexicon knows strong words and intensifiers.
Frozen embeddings with a classifier on top stalled at about 0.81 on SST-2; fine-tuning the encoder
is what gets past 0.85. Only the adapter and head ship (``weights/``, under a megabyte and a half);
loading merges the adapter into a private copy of MiniLM, so scoring a message costs one forward
pass. ``score`` is P(positive) - P(negative).

Two workloads, two backends. The chat scores one short message at a time (``score``): there the
encoder runs on ``HELPMATE_SENTIMENT_BACKEND`` (default int8 on the CPU, the fastest with SST-2 within
0.005 of float32 when scored one message at a time), traced. Batches (backfill, import, ``helpmate
sentiment score``) run eager on the embedding backend, which is faster there and keeps float32's
accuracy, while int8's activation scales are set per batch (bench/embed.py, BENCHMARKS.md "Embedding
backends"). Sentiment vectors never meet an index, so neither has to match retrieval's.

VADER's own rule-based scorer is kept as the baseline the model has to beat (``VaderBaseline``).
How the model is trained and on what: ``training`` and ``data``.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from assistant.config import Settings
from assistant.embeddings import (Embedder, apply_backend, get_embedder, quiet_model_loading, resolve_backend,
                                  silence_known_warnings)
from assistant.modelstore import embedding_model_path

LABELS: tuple[str, str, str] = ("negative", "neutral", "positive")
MODEL_DIR = Path(__file__).parent / "weights"
ADAPTER_FILE = "adapter_model.safetensors"  # LoRA adapter of MiniLM (peft format)
ADAPTER_CONFIG = "adapter_config.json"
HEAD_FILE = "head.safetensors"
METADATA_FILE = "metadata.json"
# VADER's own thresholds on its compound score (Hutto & Gilbert, 2014).
VADER_THRESHOLD = 0.05


@dataclass(frozen=True)
class Sentiment:
    """One message's sentiment: the most likely class and a score in [-1, 1]."""

    label: str
    score: float


class Scorer(Protocol):
    """Anything that scores texts; evaluation runs Helpmate's model and the VADER baseline alike."""

    name: str

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]: ...


class VaderBaseline:
    """VADER's lexicon and rules: the baseline, and four of the model's input features."""

    name = "vader"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer = SentimentIntensityAnalyzer()

    def lexicon_features(self, texts: Sequence[str]) -> np.ndarray:
        """VADER's (neg, neu, pos, compound) per text, as float32 rows."""
        rows = []
        for text in texts:
            scores = self.analyzer.polarity_scores(text)
            rows.append((scores["neg"], scores["neu"], scores["pos"], scores["compound"]))
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), 4)

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        compound = self.lexicon_features(texts)[:, 3]
        return [Sentiment(_vader_label(float(c)), float(c)) for c in compound]


def _vader_label(compound: float) -> str:
    if compound >= VADER_THRESHOLD:
        return "positive"
    if compound <= -VADER_THRESHOLD:
        return "negative"
    return "neutral"


class ModelFileError(RuntimeError):
    """The sentiment model's files are missing, unreadable or do not fit the embedding model."""


def load_torch():
    """torch with a thread count that leaves the machine usable (imported lazily: the CLI starts faster)."""
    import torch

    if torch.get_num_threads() > (os.cpu_count() or 1):
        torch.set_num_threads(os.cpu_count() or 1)
    return torch


class SentimentHead:
    """Linear layer over [mean-pooled token states, VADER neg/neu/pos/compound] to three logits."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        self.weight = np.asarray(weight, dtype=np.float32)  # (3, dim + 4)
        self.bias = np.asarray(bias, dtype=np.float32)  # (3,)


class SentimentModel:
    """The packaged MiniLM with a merged LoRA adapter, mean pooling, and a linear head.

    The adapter (a few hundred kB) is all that differs from the embedding model retrieval loads,
    so the repository ships only the adapter, the head and ``metadata.json``; loading merges the
    adapter into a private copy of MiniLM, and scoring a message costs one forward pass of it.
    """

    name = "helpmate"

    def __init__(self, encoder, tokenizer, head: SentimentHead, metadata: dict, embedder: Embedder | None = None,
                 lexicon: VaderBaseline | None = None, batch_size: int = 128, max_tokens: int = 256,
                 backend: str = "torch", one_text_backend: str | None = None):
        # Batches run the merged encoder on ``backend`` (the embedding backend), one message at a time
        # (``score``) on ``one_text_backend`` (HELPMATE_SENTIMENT_BACKEND), a copy where the two differ; the head
        # stays float32.
        self.backend = backend
        self.one_text_backend = one_text_backend or backend
        encoder = encoder.eval()
        separate = self.one_text_backend != backend
        one_text = apply_backend(copy.deepcopy(encoder), self.one_text_backend, inplace=True) if separate else None
        self.encoder = apply_backend(encoder, backend)
        self._one_text_encoder = one_text if separate else self.encoder
        self.tokenizer = tokenizer
        self.head = head
        self.metadata = metadata
        # Kept for callers that want the retrieval embedding (bench, import); scoring does not use it.
        self.embedder = embedder
        self.lexicon = lexicon or VaderBaseline()
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._lock = threading.Lock()  # the Rust tokenizer and one torch module, shared by threads
        self._one_text = None  # the encoder traced for one unpadded text (``score``), on first use

    @property
    def version(self) -> str:
        """Stored with every scored message, so a retrained model's backfill knows what to redo."""
        return str(self.metadata["version"])

    @classmethod
    def load(cls, path: Path | None, settings: Settings) -> SentimentModel:
        """The model in ``path`` (default: the one shipped in ``assistant/sentiment/weights/``)."""
        folder = Path(path) if path is not None else MODEL_DIR
        missing = [name for name in (ADAPTER_FILE, ADAPTER_CONFIG, HEAD_FILE, METADATA_FILE) if not (folder / name).exists()]
        if missing:
            raise ModelFileError(
                f"no sentiment model in {folder} (missing {', '.join(missing)}); run `helpmate sentiment train` to build one"
            )
        metadata = json.loads((folder / METADATA_FILE).read_text())
        base = embedding_model_path(settings)
        base_name = base.parent.name if base.name == "model" else base.name
        if metadata.get("embedding_model") != base_name:
            raise ModelFileError(
                f"the sentiment model in {folder} adapts {metadata.get('embedding_model')}, but HELPMATE_EMBEDDING_MODEL "
                f"gives {base_name}; run `helpmate sentiment train` with this embedding model, or unset HELPMATE_EMBEDDING_MODEL"
            )
        from peft import PeftModel
        from safetensors.numpy import load_file

        torch = load_torch()
        tokenizer, encoder = load_encoder(base, settings.device)
        with torch.no_grad():
            encoder = PeftModel.from_pretrained(encoder, str(folder)).merge_and_unload()
        arrays = load_file(str(folder / HEAD_FILE))
        head = SentimentHead(arrays["weight"], arrays["bias"])
        if head.weight.shape != (len(LABELS), int(encoder.config.hidden_size) + 4):
            raise ModelFileError(f"{folder / HEAD_FILE} has shape {head.weight.shape}, not (3, hidden + 4); retrain it")
        embedder = get_embedder(settings)
        return cls(encoder, tokenizer, head, metadata, embedder, batch_size=settings.embedding_batch_size,
                   max_tokens=embedder.max_tokens, backend=embedder.backend, one_text_backend=sentiment_backend(settings))

    def pooled(self, texts: Sequence[str]) -> np.ndarray:
        """Mean-pooled last hidden states of the adapted encoder, batched by length like sentence-transformers."""
        torch = load_torch()
        out = np.zeros((len(texts), int(self.encoder.config.hidden_size)), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        device = self.encoder.device
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                rows = order[start:start + self.batch_size]
                batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                       max_length=self.max_tokens, return_tensors="pt")
                batch = {k: v.to(device) for k, v in batch.items()}
                states = self.encoder(**batch).last_hidden_state.float()
                out[rows] = mean_pool(states, batch["attention_mask"]).cpu().numpy()
        return out

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (columns in ``LABELS`` order)."""
        features = np.hstack([self.pooled(texts), self.lexicon.lexicon_features(texts)])
        logits = features @ self.head.weight.T + self.head.bias
        return softmax(logits)

    def score_batch(self, texts: Sequence[str]) -> list[Sentiment]:
        if not len(texts):
            return []
        return sentiments_from(self.probabilities(list(texts)))

    def score(self, text: str) -> Sentiment:
        """One message, on the chat path: one forward pass of a traced copy of the encoder (about 2 ms in int8).

        Eager transformers spends about half of a one-message forward pass in Python (module calls, mask
        preparation) rather than in arithmetic; a TorchScript trace of the same encoder runs the same
        operations without it (int8: 2.19 against 4.33 ms per message, BENCHMARKS.md "Embedding backends").
        The trace is taken on one unpadded text and holds for exactly that, one text without padding, so
        batches stay eager (``score_batch``); tests/assistant/test_embedding_backends.py checks both agree."""
        torch = load_torch()
        device = self.encoder.device
        with self._lock, torch.inference_mode():
            batch = self.tokenizer([text], truncation=True, max_length=self.max_tokens, return_tensors="pt")
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            if self._one_text is None:
                silence_known_warnings()  # a trace explains which Python branches it fixed
                self._one_text = torch.jit.trace(self._one_text_encoder, (ids, mask), strict=False)
            states = self._one_text(ids, mask)["last_hidden_state"].float()
            pooled = mean_pool(states, mask).cpu().numpy()
        features = np.hstack([pooled, self.lexicon.lexicon_features([text])])
        return sentiments_from(softmax(features @ self.head.weight.T + self.head.bias))[0]


def load_encoder(path: Path, device: str = "cpu"):
    """Tokenizer and a private copy of the packaged MiniLM's transformer (without the unused pooler)."""
    from transformers import AutoModel, AutoTokenizer

    quiet_model_loading()  # the load report would list the pooler weights left out on purpose
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    encoder = AutoModel.from_pretrained(str(path), add_pooling_layer=False).to(device)
    return tokenizer, encoder


def mean_pool(states, mask):
    mask = mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def sentiment_backend(settings: Settings) -> str:
    """The backend ``settings`` give one-message scoring (``SentimentModel.score``): ``auto`` is int8 on the
    CPU (BENCHMARKS.md "Embedding backends"), the embedder's elsewhere (dynamic int8 runs on the CPU only)."""
    if settings.sentiment_backend != "auto":
        return settings.sentiment_backend
    return "torch-int8" if settings.device == "cpu" else resolve_backend(settings)


def sentiments_from(probabilities: np.ndarray) -> list[Sentiment]:
    scores = probabilities[:, 2] - probabilities[:, 0]
    return [Sentiment(LABELS[int(i)], round(float(s), 4)) for i, s in zip(probabilities.argmax(axis=1), scores)]


_models: dict[tuple, SentimentModel] = {}
_models_lock = threading.Lock()


def get_sentiment_model(settings: Settings) -> SentimentModel:
    """The process-wide shipped model, loaded once."""
    key = (settings.embedding_model, settings.device, settings.embedding_batch_size, resolve_backend(settings),
           sentiment_backend(settings))
    with _models_lock:
        if key not in _models:
            _models[key] = SentimentModel.load(None, settings)
        return _models[key]


def save_model_files(peft_model, head: SentimentHead, metadata: dict, folder: Path) -> None:
    """Adapter, head (safetensors, no pickle) and metadata; each file written under a temporary name first."""
    import tempfile

    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    peft_model.peft_config["default"].base_model_name_or_path = metadata["embedding_model"]
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        peft_model.save_pretrained(scratch, save_embedding_layers=False)  # only LoRA matrices change
        for name in (ADAPTER_FILE, ADAPTER_CONFIG):
            (Path(scratch) / name).replace(folder / name)
    tmp = folder / (HEAD_FILE + ".tmp")
    save_file({"weight": head.weight, "bias": head.bias}, str(tmp))
    tmp.replace(folder / HEAD_FILE)
    for name in (ADAPTER_FILE, ADAPTER_CONFIG, HEAD_FILE):
        (folder / name).chmod(0o644)  # shipped files: readable by everyone, like the rest of the checkout
    write_metadata(metadata, folder)



def write_metadata(metadata: dict, folder: Path) -> None:
    tmp = folder / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(folder / METADATA_FILE)
