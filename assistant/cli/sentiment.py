"""`helpmate sentiment score|train|backfill|alerts` and `helpmate eval sentiment`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.cli.errors import fail, user_errors
from assistant.cli.options import (DEFAULT_RULE, BaselineOption, MinMessagesOption, ProgressOption, ThresholdOption,
                                   WindowOption, progress_bars, spike_rule)
from assistant.config import get_settings

sentiment_app = typer.Typer(help="Sentiment of customer messages: score, train, backfill, alerts.", no_args_is_help=True)


@sentiment_app.command("score")
def score(
    texts: Annotated[list[str], typer.Argument(help="Messages to score.")],
    baseline: Annotated[bool, typer.Option("--baseline", help="Also show VADER's score.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the sentiment (negative/neutral/positive) and score in [-1, 1] of each message."""
    from assistant.sentiment.model import get_sentiment_model, ModelFileError, VaderBaseline

    with user_errors(ModelFileError):
        results = get_sentiment_model(get_settings()).score_batch(texts)
    vader = VaderBaseline().score_batch(texts) if baseline else [None] * len(texts)
    for text, result, lexicon in zip(texts, results, vader):
        if as_json:
            row = {"text": text, "label": result.label, "score": result.score}
            if lexicon:
                row["vader"] = {"label": lexicon.label, "score": lexicon.score}
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            extra = f"  (vader: {lexicon.label} {lexicon.score:+.2f})" if lexicon else ""
            typer.echo(f"{result.label:8} {result.score:+.2f}  {text}{extra}")


@sentiment_app.command("train")
def train(
    datasets: Annotated[Path, typer.Option("--datasets", help="Folder with vader_groundtruth/, banking77/ and sst2/.")] = None,
    output: Annotated[Path, typer.Option("--output", help="Where to write the adapter, head and metadata.json (default: the shipped model).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (training is deterministic for a given seed).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metadata as JSON.")] = False,
    progress: ProgressOption = None,
) -> None:
    """Train the sentiment model on VADER's ground truth (MIT) and Banking77 (CC BY 4.0).

    Fine-tunes MiniLM (a LoRA adapter on its top blocks) with a linear head on all four domains and
    reports SST-2 dev (never trained on: its sentences are removed from the movie snippets first),
    then holds out each VADER domain in turn (trained on the other three and Banking77) against
    VADER. Takes about half an hour on 2 CPU cores; metadata.json is updated as each step ends.
    """
    from assistant.sentiment.data import DEFAULT_DATASETS
    from assistant.sentiment.model import MODEL_DIR
    from assistant.sentiment.training import train_model

    with user_errors(FileNotFoundError, ValueError):
        model = train_model(get_settings(), datasets or DEFAULT_DATASETS, output or MODEL_DIR, seed=seed,
                            show_progress=progress_bars(progress))
    metadata = model.metadata
    if as_json:
        typer.echo(json.dumps(metadata, indent=2))
        return
    typer.echo(f"model {metadata['version']} written to {output or MODEL_DIR}")
    typer.echo("held-out domain (3 classes)   macro-F1 helpmate / vader")
    for domain, result in metadata["metrics"]["held_out_domains"].items():
        typer.echo(f"  {domain:10} n={result['n']:6}          {result['helpmate']['macro_f1']:.4f} / {result['vader']['macro_f1']:.4f}")
    sst2 = metadata["metrics"]["sst2_dev"]
    typer.echo(f"SST-2 dev (binary) n={sst2['n']}      accuracy {sst2['helpmate']['accuracy']:.4f} / {sst2['vader']['accuracy']:.4f}")


@sentiment_app.command("backfill")
def backfill(
    rescore_all: Annotated[bool, typer.Option("--all", help="Rescore every customer message, not only unscored or outdated ones.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 512,
    window_hours: WindowOption = DEFAULT_RULE.window.total_seconds() / 3600,
    baseline_days: BaselineOption = DEFAULT_RULE.baseline.days,
    threshold: ThresholdOption = DEFAULT_RULE.threshold,
    min_messages: MinMessagesOption = DEFAULT_RULE.min_messages,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    progress: ProgressOption = None,
) -> None:
    """Score customer messages without sentiment or scored by another model version; topics and alerts follow."""
    from assistant.conversations.store import backfill_sentiment
    from assistant.sentiment.model import ModelFileError

    with user_errors(ModelFileError):
        counts = backfill_sentiment(get_settings(), rescore_all=rescore_all, batch_size=batch_size, show_progress=progress_bars(progress),
                                    spike_rule=spike_rule(window_hours, baseline_days, threshold, min_messages))
    if as_json:
        typer.echo(json.dumps(counts))
    else:
        typer.echo(f"{counts['rescored']} messages scored ({counts['negative']} negative), "
                   f"{counts['topics']} topics assigned, {counts['alerts']} new alerts")


@sentiment_app.command("alerts")
def alerts(
    since: Annotated[Optional[str], typer.Option("--since", help="Show alerts whose window ends after this ISO date/time (default: 7 days ago).")] = None,
    scan: Annotated[bool, typer.Option("--scan", help="First check every hour since --since for new spikes.")] = False,
    window_hours: WindowOption = DEFAULT_RULE.window.total_seconds() / 3600,
    baseline_days: BaselineOption = DEFAULT_RULE.baseline.days,
    threshold: ThresholdOption = DEFAULT_RULE.threshold,
    min_messages: MinMessagesOption = DEFAULT_RULE.min_messages,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List spikes of negative customer messages (per knowledge base and channel)."""
    from sqlalchemy import select

    from assistant.analytics.spikes import scan_negative_spikes
    from assistant.conversations.store import parse_timestamp
    from assistant.database import session_scope
    from assistant.database.models import Alert

    now = datetime.now(timezone.utc)
    with user_errors(ValueError):
        start = parse_timestamp(since) if since else now - timedelta(days=7)
    with session_scope(get_settings()) as session:
        if scan:
            scan_negative_spikes(session, start, now, spike_rule(window_hours, baseline_days, threshold, min_messages))
        rows = session.scalars(select(Alert).where(Alert.window_end > start).order_by(Alert.window_end)).all()
        listed = [{"id": a.id, "kb": a.kb, "channel": a.channel, "window_start": a.window_start.isoformat(),
                   "window_end": a.window_end.isoformat(), "messages": a.messages, "negative": a.negative,
                   "negative_share": a.negative_share, "baseline_share": a.baseline_share} for a in rows]
    if as_json:
        typer.echo(json.dumps(listed))
        return
    if not listed:
        typer.echo(f"no alerts since {start:%Y-%m-%d %H:%M} UTC")
    for a in listed:
        baseline = f"{100 * a['baseline_share']:.0f}%" if a["baseline_share"] is not None else "no data"
        typer.echo(f"#{a['id']} {a['window_start'][:16]} to {a['window_end'][:16]} kb={a['kb'] or '-'} channel={a['channel']}: "
                   f"{a['negative']}/{a['messages']} negative ({100 * a['negative_share']:.0f}%, baseline {baseline})")


def eval_sentiment(
    file: Annotated[Path, typer.Option("--file", help="Labelled file: a text column and a label column (negative/neutral/positive or 0/1).")],
    fmt: Annotated[Optional[str], typer.Option("--format", help="tsv, csv, or vader (VADER ground truth: id, mean rating, text; no header). Default: by extension.")] = None,
    text_column: Annotated[Optional[str], typer.Option("--text-column", help="Default: text, sentence, message or review.")] = None,
    label_column: Annotated[Optional[str], typer.Option("--label-column", help="Default: label, sentiment or class.")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", help="Folder of another trained model (default: the shipped one).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"n", "helpmate": {...}, "vader": {...}}.')] = False,
) -> None:
    """Accuracy, macro-F1 and macro-recall of Helpmate's sentiment model and of the VADER baseline.

    On a binary (0/1) file a neutral prediction counts as positive or negative by its score's
    sign. VADER ground-truth ratings become classes: above 0.5 positive, below -0.5 negative.
    """
    from assistant.sentiment.data import read_labelled
    from assistant.sentiment.evaluation import evaluate
    from assistant.sentiment.model import get_sentiment_model, ModelFileError, SentimentModel, VaderBaseline

    if fmt not in (None, "tsv", "csv", "vader"):
        fail(ValueError(f"--format {fmt!r}: choose tsv, csv or vader"))
    settings = get_settings()
    with user_errors(FileNotFoundError, ValueError, ModelFileError):
        dataset = read_labelled(file, fmt, text_column, label_column)  # type: ignore[arg-type]
        scorer = SentimentModel.load(model, settings) if model else get_sentiment_model(settings)
    result = evaluate(dataset, [scorer, VaderBaseline()])
    if as_json:
        typer.echo(json.dumps(result))
        return
    kind = "binary, neutral by sign of score" if dataset.binary else "3 classes"
    typer.echo(f"{file}: {result['n']} texts ({kind})")
    typer.echo(f"{'':10} {'accuracy':>9} {'macro-F1':>9} {'macro-recall':>13}")
    for name in (scorer.name, "vader"):
        m = result[name]
        typer.echo(f"{name:10} {m['accuracy']:9.4f} {m['macro_f1']:9.4f} {m['macro_recall']:13.4f}")
