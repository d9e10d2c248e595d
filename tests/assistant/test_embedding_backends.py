"""Embedding backends (HELPMATE_EMBEDDING_BACKEND) on the real packaged MiniLM, SciFact texts and the sentiment model.

Each backend's vectors stay within its limit of float32; an index records the backend that made it, and a
backend whose vectors stray beyond the tolerance is refused, at query time and at ingestion, with a message
that says to re-ingest; `helpmate models prepare` checks the backend the default resolves to.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from assistant.config import Settings
from assistant.embeddings import (
    BACKEND_LIMITS,
    BACKENDS,
    TOLERANCE,
    cpu_has_bf16,
    distance,
    get_embedder,
    prepare_backend,
    prepared_path,
    resolve_backend,
)
from assistant.retrieval.retriever import Retriever
from assistant.retrieval.vector_index import DENSE_FILE, generation_dir
from ingest.pipeline import Ingestor
from tests.conftest import SHARED
from tests.helpers import make_helpcenter

SCIFACT = SHARED / "datasets" / "scifact"


def _texts() -> list[str]:
    """Real texts of both kinds the model sees: SciFact abstracts (chunk-sized) and short questions."""
    if not (SCIFACT / "corpus.jsonl").exists():
        pytest.skip("SciFact is not in ../shared/datasets")
    with open(SCIFACT / "corpus.jsonl") as corpus, open(SCIFACT / "queries.jsonl") as queries:
        abstracts = [json.loads(line)["text"][:1200] for line, _ in zip(corpus, range(24))]
        questions = [json.loads(line)["text"] for line, _ in zip(queries, range(24))]
    return abstracts + questions


def _with(settings: Settings, backend: str) -> Settings:
    return settings.model_copy(update={"embedding_backend": backend})


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != "torch"])
def test_each_backend_stays_within_its_limit_of_float32(backend):
    settings = Settings(data_dir=Path("/tmp"))
    texts = _texts()
    reference = get_embedder(_with(settings, "torch")).encode(texts)
    embedder = get_embedder(_with(settings, backend))
    vectors = embedder.encode(texts)
    assert embedder.backend == backend and vectors.dtype == np.float32 and vectors.shape == reference.shape
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    gap = distance(reference, vectors)
    assert 0 < gap <= BACKEND_LIMITS[backend]
    if backend == "torch-bf16":  # interchangeable with float32 in an index
        assert gap <= TOLERANCE / 2


def test_bf16_runs_the_whole_model_in_bfloat16_and_stays_interchangeable_on_the_probe_texts(settings):
    """torch-bf16 converts every layer (autocast, before, left layer norms and residuals in float32 and cast
    around them, which was slower); its vectors stay within the tolerance of float32's, so a float32 index
    serves bfloat16 queries and the other way round."""
    import torch

    from assistant.embeddings import PROBE_TEXTS

    embedder = get_embedder(_with(settings, "torch-bf16"))
    encoder = embedder.model[0].auto_model
    assert {p.dtype for p in encoder.parameters()} == {torch.bfloat16}
    assert encoder.encoder.layer[0].attention.output.LayerNorm.weight.dtype == torch.bfloat16
    reference = get_embedder(_with(settings, "torch"))
    assert embedder.probe().dtype == np.float32
    assert distance(reference.probe(), embedder.probe()) <= TOLERANCE / 5
    assert len(PROBE_TEXTS) == len(embedder.probe())


def test_auto_picks_bf16_only_where_the_cpu_has_it():
    # The default since bench/embed.py's run (BENCHMARKS.md "Embedding backends"): bfloat16 was 3.1x as fast
    # on batched chunks with the same SciFact nDCG@10, where the CPU has it.
    assert Settings.model_fields["embedding_backend"].default == "auto"
    settings = Settings(data_dir=Path("/tmp"), embedding_backend="auto")
    assert resolve_backend(settings) == ("torch-bf16" if cpu_has_bf16() else "torch")
    assert resolve_backend(settings.model_copy(update={"device": "cuda"})) == "torch"
    assert resolve_backend(_with(settings, "torch-int8")) == "torch-int8"


def test_the_index_records_its_backend_and_another_one_gets_the_message_to_reingest(settings, embedder, tmp_path):
    assert embedder.backend == resolve_backend(settings)
    folder = make_helpcenter(tmp_path / "kb")
    Ingestor("help", settings, embedder, show_progress=False).run([folder])
    dense = generation_dir(settings, "help", 1) / DENSE_FILE
    recorded = json.loads(dense.with_suffix(".json").read_text())["embedding"]
    assert recorded["backend"] == embedder.backend and recorded["model"] == embedder.name
    assert np.allclose(recorded["probe"], embedder.probe(), atol=1e-5)

    other = "torch-int8" if embedder.backend != "torch-int8" else "torch"
    stray = Retriever(_with(settings, other))
    for mode in ("dense", "hybrid"):
        with pytest.raises(ValueError) as error:
            stray.search("How much does express shipping cost?", "help", mode=mode)
        message = str(error.value)
        assert f"embedded with the {embedder.backend} embedding backend" in message and other in message
        assert f"HELPMATE_EMBEDDING_BACKEND={embedder.backend}" in message and "re-ingest" in message
    assert stray.search("How much does express shipping cost?", "help", mode="bm25")  # needs no vectors

    with pytest.raises(ValueError, match="re-ingest"):  # nor may new vectors be mixed into the index
        Ingestor("help", _with(settings, other), get_embedder(_with(settings, other)), show_progress=False).run([folder])

    # Another backend within the tolerance (bfloat16 against float32) searches the same index.
    close = "torch-bf16" if embedder.backend == "torch" else "torch"
    if {close, embedder.backend} == {"torch", "torch-bf16"}:
        hits = Retriever(_with(settings, close)).search("How much does express shipping cost?", "help", mode="dense")
        assert "14.90 EUR" in hits[0].text


def test_an_index_written_before_backends_were_recorded_counts_as_float32(settings, tmp_path):
    torch_settings = _with(settings, "torch")
    folder = make_helpcenter(tmp_path / "kb")
    Ingestor("help", torch_settings, get_embedder(torch_settings), show_progress=False).run([folder])
    params_file = (generation_dir(settings, "help", 1) / DENSE_FILE).with_suffix(".json")
    params = json.loads(params_file.read_text())
    del params["embedding"]
    params_file.write_text(json.dumps(params))

    assert Retriever(torch_settings).search("How long do I have to return an item?", "help", mode="dense")
    with pytest.raises(ValueError, match="embedded with the torch embedding backend"):
        Retriever(_with(settings, "torch-int8")).search("How long do I have to return an item?", "help", mode="dense")


def test_models_prepare_checks_the_backend_the_default_resolves_to(settings, tmp_path, monkeypatch):
    from assistant.cli import models as models_cli
    from ui.cli import app

    monkeypatch.setenv("HELPMATE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("HELPMATE_EMBEDDING_BACKEND", raising=False)
    monkeypatch.setattr(models_cli, "prepare_llm", lambda settings, force=False: settings.models_dir / "llm")  # tested elsewhere
    from assistant.config import get_settings

    get_settings.cache_clear()
    fresh = get_settings()
    result = CliRunner().invoke(app, ["models", "prepare"])
    assert result.exit_code == 0, result.output
    default = resolve_backend(Settings())
    assert f"embedding backend: {default}" in result.output
    prepared = json.loads(prepared_path(fresh).read_text())
    assert prepared["backend"] == default == get_embedder(fresh).backend
    assert prepared["max_cosine_distance_to_float32"] <= BACKEND_LIMITS[default]
    assert prepare_backend(fresh) == prepared  # once: a second run reads what the first wrote


def test_sentiment_runs_on_its_own_backend_with_its_head_unchanged(settings):
    """A backend runs the merged encoder; the head stays float32. Whatever the backend,
    ``score`` (one text, traced encoder: the chat path) gives what ``score_batch`` (eager) gives it, for a
    one-word message, short ones and one cut at the encoder's 256 word pieces."""
    from assistant.sentiment.model import get_sentiment_model

    texts = ["Still no refund after three weeks!", "Thank you, that was quick.", "Where is my parcel?",
             "not bad at all", "the third time I am asking", "thanks", "The tent leaks. " * 120]
    def on(backend: str):
        return get_sentiment_model(settings.model_copy(update={"embedding_backend": backend, "sentiment_backend": backend}))

    reference = on("torch")
    for backend in ("torch", "torch-bf16", "torch-int8"):
        model = on(backend)
        assert model.backend == model.one_text_backend == backend
        assert np.array_equal(model.head.weight, reference.head.weight)
        gap = np.abs(model.probabilities(texts[:5]) - reference.probabilities(texts[:5])).max()
        assert gap < {"torch": 1e-9, "torch-bf16": 0.01, "torch-int8": 0.2}[backend]
        for text in texts:  # one text both ways (in a batch, padding and int8's per-batch scales move scores)
            one, eager = model.score(text), model.score_batch([text])[0]
            assert one.label == eager.label and abs(one.score - eager.score) <= 2e-4, (backend, text)
    bf16 = on("torch-bf16")
    assert [s.label for s in bf16.score_batch(texts[:5])] == [s.label for s in reference.score_batch(texts[:5])]
