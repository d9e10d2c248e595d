"""The sentiment model on real text: the shipped model, evaluation files, training."""

from __future__ import annotations

import hashlib
import json

from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from assistant.config import Settings

from assistant.sentiment.data import contains_any, load_training_set, neutral_requests, read_labelled, TrainingSet
from assistant.sentiment.evaluation import metrics
from assistant.sentiment.model import (
    ADAPTER_FILE,
    get_sentiment_model,
    HEAD_FILE,
    LABELS,
    MODEL_DIR,
    ModelFileError,
    Sentiment,
    SentimentModel,
    VaderBaseline,
    sentiment_backend,
)
from assistant.embeddings import resolve_backend
from assistant.sentiment.training import FrozenStates, fold_rows, held_out_domains, HELD_OUT_ROWS, train_model
from assistant.cli.sentiment import eval_sentiment
from tests.conftest import SHARED

DATASETS = SHARED / "datasets"
needs_datasets = pytest.mark.needs((DATASETS / "sst2" / "dev.tsv").exists(), reason=f"public datasets not in {DATASETS}")


@pytest.fixture(scope="module")
def model():
    return get_sentiment_model(Settings(data_dir=Path("/tmp")))


def _eval_app() -> typer.Typer:
    """`helpmate eval sentiment` as the eval sub-app mounts it (that app lives in ui/eval_cli.py)."""
    app = typer.Typer()
    app.command()(eval_sentiment)
    return app


def test_shipped_model_scores_customer_messages(model):
    texts = [
        "I have been waiting three weeks for my refund and nobody answers my emails. This is ridiculous.",
        "The tent arrived with a broken pole. Really disappointed.",
        "How do I change the delivery address of my order?",
        "What are your opening hours on Saturday?",
        "Thank you so much, the replacement arrived today and it works perfectly!",
        "Great service, the staff in the Munich store were super helpful.",
    ]
    results = model.score_batch(texts)
    assert [r.label for r in results] == ["negative", "negative", "neutral", "neutral", "positive", "positive"]
    assert all(-1.0 <= r.score <= 1.0 for r in results)
    assert results[0].score < -0.5 < 0.5 < results[4].score
    alone = model.score(texts[0])  # one at a time runs the int8 encoder on the CPU, a batch the embedding backend
    assert alone.label == results[0].label and abs(alone.score - results[0].score) < 0.05
    assert model.score_batch([]) == []


# Handwritten customer-service messages: test data only, never used for training.
COMPLAINTS = [
    "This is the third time I am asking. My refund still has not arrived and I am furious.",
    "I am furious.",
    "Worst service ever.",
    "Still no refund after three weeks, this is unacceptable.",
    "The jacket fell apart after one wash and your support just ignores me.",
    "I was charged twice and no one can tell me why. Fix this now.",
]
THANKS = [
    "Thanks a lot, that solved it!",
    "Great, the refund arrived today. Thanks!",
    "Your colleague in the Hamburg store was wonderful, thank you.",
]
QUESTIONS = [
    "Can I return a sleeping bag I bought online in a store?",
    "Do you ship to Austria?",
    "Where can I find the size chart for hiking boots?",
]


def test_customer_service_complaints_are_negative_and_thanks_positive(model):
    results = model.score_batch(COMPLAINTS + THANKS + QUESTIONS)
    labels = [r.label for r in results]
    assert labels == ["negative"] * len(COMPLAINTS) + ["positive"] * len(THANKS) + ["neutral"] * len(QUESTIONS), list(zip(labels, COMPLAINTS + THANKS + QUESTIONS))
    assert max(r.score for r in results[:len(COMPLAINTS)]) < 0 < min(r.score for r in results[len(COMPLAINTS):len(COMPLAINTS) + len(THANKS)])


@pytest.mark.xfail(strict=True, reason="known gap since the lexicon-prior model (2026-11-30): a thanks without an "
                   "exclamation reads as neutral (score +0.39); the model before it said positive but lost to VADER on "
                   "held-out tweets and NYT editorials")
def test_polite_thanks_is_positive(model):
    result = model.score("Thank you for the quick help, much appreciated.")
    assert result.score > 0  # the lean is right; the label is the gap
    assert result.label == "positive"


@pytest.mark.xfail(strict=True, reason="known gap: a complaint without any negative word reads as neutral (score -0.08)")
def test_implicit_complaint_without_negative_words_is_negative(model):
    assert model.score("Nobody has answered my emails for ten days. I want my money back.").label == "negative"


def test_complaints_are_not_taken_as_neutral_banking_requests():
    requests = ["How do I change my PIN?", "My card still hasn't arrived", "Why was I charged a fee?", "I love the app, how do I top up?"]
    assert neutral_requests(requests, VaderBaseline()) == [True, False, False, False]


def test_shipped_model_records_its_training_data_and_metrics(model):
    metadata = json.loads((MODEL_DIR / "metadata.json").read_text())
    assert metadata == model.metadata and model.version.startswith("sentiment-")
    files = [source["file"] for source in metadata["training_data"]]
    assert sorted(files) == sorted(["vader_groundtruth/tweets_GroundTruth.txt", "vader_groundtruth/amazonReviewSnippets_GroundTruth.txt",
                                    "vader_groundtruth/movieReviewSnippets_GroundTruth.txt", "vader_groundtruth/nytEditorialSnippets_GroundTruth.txt",
                                    "banking77/train.csv"])
    assert not any("sst2" in f or "scifact" in f for f in files)
    held_out = metadata["metrics"]["held_out_domains"]
    assert set(held_out) == {"tweets", "amazon", "movie", "nyt"}
    for domain, result in held_out.items():
        assert domain not in result["trained_on"]
    assert metadata["metrics"]["sst2_dev"]["n"] == 872
    assert model.head.weight.shape == (3, model.embedder.dim + 4)
    # Only small files ship: the LoRA adapter and the head, not a copy of MiniLM.
    assert (MODEL_DIR / ADAPTER_FILE).stat().st_size < 3_000_000 and (MODEL_DIR / HEAD_FILE).stat().st_size < 20_000
    assert sorted(p.name for p in MODEL_DIR.iterdir()) == ["adapter_config.json", ADAPTER_FILE, HEAD_FILE, "metadata.json"]


@needs_datasets
def test_one_message_scoring_in_int8_is_as_accurate_as_float32():
    """The chat scores one message at a time with the int8 encoder on the CPU (HELPMATE_SENTIMENT_BACKEND=auto,
    chosen by bench/embed.py for speed): scored that way, all of SST-2 dev must be as accurate as float32's
    (within the 0.005 the choice allowed). Batches stay on the embedding backend. int8 is not the same model:
    some of these sentences, ones the model is unsure of, change sign, in both directions."""
    settings = Settings(data_dir=Path("/tmp"))
    assert Settings.model_fields["sentiment_backend"].default == "auto"
    assert sentiment_backend(settings) == "torch-int8"
    assert sentiment_backend(settings.model_copy(update={"device": "cuda", "embedding_backend": "torch"})) == "torch"
    model = get_sentiment_model(settings)
    assert (model.one_text_backend, model.backend) == ("torch-int8", resolve_backend(settings))
    reference = get_sentiment_model(settings.model_copy(update={"embedding_backend": "torch", "sentiment_backend": "torch"}))
    sst2 = read_labelled(DATASETS / "sst2" / "dev.tsv", "tsv")
    quantised, exact = [model.score(text) for text in sst2.texts], reference.score_batch(sst2.texts)
    accuracy = {name: metrics(sst2.labels, scored, binary=True)["accuracy"] for name, scored in (("int8", quantised), ("float32", exact))}
    assert accuracy["int8"] >= accuracy["float32"] - 0.005 and accuracy["int8"] >= 0.85, accuracy
    same_sign = sum((a.score > 0) == (b.score > 0) for a, b in zip(quantised, exact)) / len(exact)
    assert 0.9 <= same_sign < 1.0, same_sign  # int8 really ran, and stayed close
    batched = model.score_batch(sst2.texts[:50])  # the embedding backend's, not int8's
    assert [s.label for s in batched] == [s.label for s in get_sentiment_model(settings.model_copy(
        update={"sentiment_backend": resolve_backend(settings)})).score_batch(sst2.texts[:50])]


def test_loading_and_tracing_silence_only_the_known_warnings(monkeypatch):
    """Loading the model (int8 copy, peft merge) and tracing its one-text encoder leave nothing in a chat's
    log, yet every other warning stays audible meanwhile: the chat server runs many threads, and
    silencing all warnings around the trace (as before) silenced them for every thread."""
    import warnings

    import torch

    blanket = ("ignore", None, Warning, None, 0)
    during_trace = []
    trace = torch.jit.trace

    def trace_noting_filters(*args, **kwargs):
        during_trace.append(blanket in warnings.filters)
        return trace(*args, **kwargs)

    monkeypatch.setattr(torch.jit, "trace", trace_noting_filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = SentimentModel.load(None, Settings(data_dir=Path("/tmp"), sentiment_backend="torch-int8"))
        assert model.score("The parcel never arrived and nobody answers.").label == "negative"
        warnings.warn("another part of the server warns", UserWarning)
    assert during_trace == [False]
    assert [str(w.message) for w in caught] == ["another part of the server warns"]


def test_shipped_model_meets_the_sst2_goal_and_names_its_data(model):
    """SST-2 dev >= 0.85, as recorded by `helpmate sentiment train`, and the training files are the ones recorded."""
    assert model.metadata["metrics"]["sst2_dev"]["helpmate"]["accuracy"] >= 0.85
    if DATASETS.exists():
        for source in model.metadata["training_data"]:
            assert hashlib.sha256((DATASETS / source["file"]).read_bytes()).hexdigest() == source["sha256"]


@pytest.mark.slow
@needs_datasets
def test_held_out_amazon_reviews_the_recipe_beats_vader_as_recorded(settings):
    """Computed here, not read from metadata.json: the shipped recipe trained without the Amazon reviews
    (seed 0, 1 epoch over at most 1,500 rows of each other domain, as `helpmate sentiment train` does)
    beats VADER on all 3,708 of them, and gives the macro-F1 that training recorded for that seed.

    Only the rows this fold trains on and the Amazon rows are encoded (about 10,000 of 24,000), so
    it takes minutes instead of the whole training's forty.
    """
    data = load_training_set(DATASETS)
    domains = np.asarray(data.domains)
    trained_on = ["tweets", "movie", "nyt", "banking77"]
    keep = np.union1d(fold_rows(domains, trained_on, HELD_OUT_ROWS, seed=0), np.flatnonzero(domains == "amazon"))
    fold = TrainingSet([data.texts[i] for i in keep], data.labels[keep], [data.domains[i] for i in keep], data.sources)
    lexical = VaderBaseline().lexicon_features(fold.texts)
    result = held_out_domains(fold, FrozenStates(fold.texts, settings), lexical, settings, seeds=(0,), held_out=("amazon",))["amazon"]
    assert result["n"] == 3708 and result["training_rows"] == {"tweets": 1500, "movie": 1500, "nyt": 1500, "banking77": 1500}
    assert result["helpmate"]["macro_f1"] > result["vader"]["macro_f1"] + 0.02
    recorded = json.loads((MODEL_DIR / "metadata.json").read_text())["metrics"]["held_out_domains"]["amazon"]
    assert result["vader"] == recorded["vader"]
    assert result["helpmate"]["macro_f1"] == pytest.approx(recorded["helpmate_by_seed"]["0"]["macro_f1"], abs=0.015)


@needs_datasets
def test_eval_command_on_sst2_dev_beats_vader():
    result = CliRunner().invoke(_eval_app(), ["--file", str(DATASETS / "sst2" / "dev.tsv"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 872 and set(report) == {"n", "helpmate", "vader"}
    assert set(report["vader"]) == {"accuracy", "macro_f1", "macro_recall"}
    assert report["vader"]["accuracy"] == pytest.approx(0.63, abs=0.01)  # the reference figure
    assert report["helpmate"]["accuracy"] >= 0.85 > report["vader"]["accuracy"] + 0.1


@needs_datasets
def test_eval_reads_vader_ground_truth(tmp_path):
    lines = (DATASETS / "vader_groundtruth" / "nytEditorialSnippets_GroundTruth.txt").read_bytes().split(b"\r\n")[:60]
    path = tmp_path / "nyt.txt"
    path.write_bytes(b"\r\n".join(lines) + b"\r\n")
    dataset = read_labelled(path, "vader")
    assert len(dataset.texts) == 60 and not dataset.binary and set(dataset.labels) <= set(LABELS)
    result = CliRunner().invoke(_eval_app(), ["--file", str(path), "--format", "vader"])
    assert result.exit_code == 0, result.output
    assert "60 texts (3 classes)" in result.output and "helpmate" in result.output and "vader" in result.output


def test_labelled_files_are_checked(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text('message,sentiment\n"Love it, thanks",positive\nWhere is my order?,Neutral\nBroken on arrival,negative\n')
    dataset = read_labelled(good)
    assert dataset.labels == ["positive", "neutral", "negative"] and not dataset.binary
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nfine\t1\nawful\tterrible\n")
    with pytest.raises(ValueError, match="line 3: label 'terrible'"):
        read_labelled(bad)
    mixed = tmp_path / "mixed.tsv"
    mixed.write_text("text\tlabel\nfine\t1\nmeh\tneutral\n")
    with pytest.raises(ValueError, match="mixes"):
        read_labelled(mixed)
    columns = tmp_path / "columns.tsv"
    columns.write_text("body\tstars\nfine\t5\n")
    with pytest.raises(ValueError, match="--text-column"):
        read_labelled(columns)
    with pytest.raises(ValueError, match="line 1"):
        read_labelled(good, "vader")


def test_binary_metrics_count_neutral_by_the_sign_of_the_score():
    predicted = [Sentiment("neutral", 0.2), Sentiment("neutral", -0.1), Sentiment("neutral", 0.0), Sentiment("negative", -0.9)]
    gold = ["positive", "negative", "negative", "positive"]
    assert metrics(gold, predicted, binary=True) == {"accuracy": 0.5, "macro_f1": 0.5, "macro_recall": 0.5}
    three = metrics(["neutral", "negative", "positive"], [Sentiment("neutral", 0.0)] * 3, binary=False)
    assert three["accuracy"] == pytest.approx(0.3333, abs=1e-4) and three["macro_recall"] == pytest.approx(0.3333, abs=1e-4)


def test_vader_baseline_uses_its_published_thresholds():
    results = VaderBaseline().score_batch(["I love it!", "I hate it!", "It is a chair."])
    assert [r.label for r in results] == ["positive", "negative", "neutral"]
    assert results[2].score == 0.0


def test_sst2_sentences_are_found_inside_movie_snippets():
    snippets = ["Effective but too tepid biopic", "The Rock is destined to be the 21st Century's new ''Conan'' and that he's "
                "going to make a splash even greater than Arnold Schwarzenegger."]
    held_out = ["the rock is destined to be the 21st century 's new `` conan '' and that he 's going to make a splash even greater "
                "than arnold schwarzenegger . "]
    assert contains_any(snippets, held_out) == [False, True]


def test_missing_model_says_how_to_build_one(tmp_path):
    with pytest.raises(ModelFileError, match="helpmate sentiment train"):
        SentimentModel.load(tmp_path, Settings(data_dir=tmp_path))


def _small_datasets(root, movie_in_sst2: int):
    """A copy of the real datasets cut to a few dozen rows each, so training takes seconds."""
    (root / "vader_groundtruth").mkdir(parents=True)
    (root / "banking77").mkdir()
    (root / "sst2").mkdir()
    for path in (DATASETS / "vader_groundtruth").glob("*_GroundTruth.txt"):
        lines = path.read_bytes().split(b"\r\n")
        (root / "vader_groundtruth" / path.name).write_bytes(b"\r\n".join(lines[:80]) + b"\r\n")
    banking = (DATASETS / "banking77" / "train.csv").read_text().splitlines()
    (root / "banking77" / "train.csv").write_text("\n".join(banking[:1] + banking[1::100]) + "\n")
    movie = (DATASETS / "vader_groundtruth" / "movieReviewSnippets_GroundTruth.txt").read_bytes().decode("utf-8", errors="replace").split("\r\n")
    sst2 = (DATASETS / "sst2" / "dev.tsv").read_text().splitlines()
    own = [movie[i].split("\t")[2].lower() + " \t1" for i in range(movie_in_sst2)]  # as if SST-2 held these snippets
    (root / "sst2" / "dev.tsv").write_text("\n".join(sst2[:1] + own + sst2[1:41]) + "\n")
    return root


@needs_datasets
def test_training_is_reproducible_held_out_and_recorded(tmp_path, settings):
    # float32 scoring, where training and loading give the same scores bit for bit; in int8 (the CPU default)
    # or bfloat16 the merged weights' last-bit differences show in the fourth decimal of a score.
    settings = settings.model_copy(update={"embedding_backend": "torch", "sentiment_backend": "torch"})
    datasets = _small_datasets(tmp_path / "datasets", movie_in_sst2=3)
    options = dict(banking_rows=10, epochs=1, held_out_epochs=1, held_out_rows=15)
    first = train_model(settings, datasets, tmp_path / "model", **options)
    again = train_model(settings, datasets, None, **options)
    probe = ["I hate this.", "Thank you, it works!", "Where is my parcel?"]
    assert first.version == again.version
    assert first.score_batch(probe) == again.score_batch(probe)  # same seed, same predictions
    loaded = SentimentModel.load(tmp_path / "model", settings)
    assert loaded.version == first.version
    assert loaded.score_batch(probe) == first.score_batch(probe)
    meta = loaded.metadata
    movie = next(s for s in meta["training_data"] if "movie" in s["file"])
    assert (movie["rows"], movie["used"]) == (80, 77) and movie["dropped"].startswith("3 snippets")
    assert meta["training_rows"] == {"tweets": 80, "amazon": 80, "movie": 77, "nyt": 80, "banking77": 10}
    assert meta["metrics"]["sst2_dev"]["n"] == 43
    nyt = meta["metrics"]["held_out_domains"]["nyt"]
    assert nyt["trained_on"] == ["tweets", "amazon", "movie", "banking77"] and nyt["n"] == 80
    assert nyt["training_rows"] == {"tweets": 15, "amazon": 15, "movie": 15, "banking77": 10}
