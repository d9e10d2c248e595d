"""`helpmate import-conversations`: a team's past conversations, scored for sentiment, with topics and alerts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from assistant.cli.errors import fail
from assistant.cli.options import (DEFAULT_RULE, BaselineOption, MinMessagesOption, ProgressOption, ThresholdOption,
                                   WindowOption, progress_bars, spike_rule)
from assistant.config import get_settings


def import_conversations(
    file: Annotated[Path, typer.Argument(help="CSV with a header, or JSONL (one object per line).", exists=False)],
    kb: Annotated[Optional[str], typer.Option("--kb", help="Knowledge base the conversations were answered from (topics come from its documents).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Messages scored and committed together.")] = 512,
    window_hours: WindowOption = DEFAULT_RULE.window.total_seconds() / 3600,
    baseline_days: BaselineOption = DEFAULT_RULE.baseline.days,
    threshold: ThresholdOption = DEFAULT_RULE.threshold,
    min_messages: MinMessagesOption = DEFAULT_RULE.min_messages,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    progress: ProgressOption = None,
    engine: Annotated[str, typer.Option("--engine", help="Where sentiment is scored: local (this process) or ray (actors on a Ray cluster).")] = "local",
    address: Annotated[Optional[str], typer.Option("--address", help="Ray cluster to join with --engine ray (default: start a local one).")] = None,
) -> None:
    """Import historical conversations, scoring the sentiment of every customer message.

    Columns (CSV header or JSONL keys): conversation_id, timestamp (ISO 8601; no offset means
    UTC), role (customer, assistant or agent), text, channel (e.g. chat, email, phone); optional
    customer_id. Rows that cannot be read are listed with their line numbers and left out; the
    others are kept. Running the same file again adds nothing twice. Negative messages get topics
    and the imported period is checked for spikes of negative messages.
    Exit code 0 when every row was imported, 2 when some rows were left out, 1 on an error.
    """
    from assistant.conversations.store import import_conversations as run_import
    from assistant.ray_cluster import RayUnavailableError
    from assistant.sentiment.model import ModelFileError

    if engine not in ("local", "ray"):
        fail(ValueError(f"--engine {engine!r}: choose local or ray"))
    settings = get_settings()
    scorer = None
    try:
        if engine == "ray":
            from assistant.sentiment.batch import RaySentimentScorer

            scorer = RaySentimentScorer(settings, address=address)
        report = run_import(file, kb=kb, settings=settings, batch_size=batch_size, show_progress=progress_bars(progress),
                            spike_rule=spike_rule(window_hours, baseline_days, threshold, min_messages), scorer=scorer)
    except (FileNotFoundError, ValueError, ModelFileError, RayUnavailableError) as error:
        fail(error)
    finally:
        if scorer is not None:
            scorer.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        typer.echo(f"{file}: {report.rows} rows; {report.messages_added} messages added in {report.conversations_added} new "
                   f"conversations, {report.duplicates} already there, {len(report.bad_rows)} bad rows left out; "
                   f"{report.customer_messages} customer messages scored, {report.negative} negative; "
                   f"{report.alerts} alerts; {report.seconds} s")
        for topic, count in list(report.topics.items())[:10]:
            typer.echo(f"  {count:5} negative about {topic}")
        for bad in report.bad_rows:
            typer.secho(f"  line {bad.line}: {bad.error}", err=True, fg="yellow")
    raise typer.Exit(2 if report.bad_rows else 0)
