"""`helpmate ingest`: the batch job an engineer runs by hand or from cron."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.errors import user_errors
from assistant.config import get_settings
from ingest.locking import IngestionLockedError


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to ingest (folders are walked recursively).")],
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base to ingest into; created if new.")] = "default",
    include: Annotated[list[str], typer.Option("--include", help="Glob of files to take inside folders (repeatable); default: every supported type.")] = [],
    exclude: Annotated[list[str], typer.Option("--exclude", help="Glob of files to leave out (repeatable).")] = [],
    prune: Annotated[bool, typer.Option("--prune", help="Remove documents whose files are gone from the given folders.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first file that cannot be ingested.")] = False,
    reparse: Annotated[bool, typer.Option("--reparse", help="Parse unchanged files again (after an upgrade that reads a format better); only documents whose text changed are embedded again.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Progress bars (default: only on a terminal).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="Where parsing, chunking and embedding run: local (this process) or ray (a Ray cluster).")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster address for --engine ray (e.g. ray://head:10001 or auto); default: RAY_ADDRESS, else a new local Ray instance.")] = None,
) -> None:
    """Parse, chunk, embed and index documents, skipping unchanged files.

    Supported: Markdown, HTML, PDF, DOCX, TXT, FAQ CSV/JSONL (question and answer columns) and
    BEIR corpus.jsonl. Exit code 0 when everything was ingested, 2 when some files were skipped
    (each listed with its reason), 1 on an error that stopped the job.
    """
    from assistant.ray_cluster import RayUnavailableError
    from ingest.pipeline import ingest_paths

    with user_errors(FileNotFoundError, IngestionLockedError, ValueError, RayUnavailableError):
        summary = ingest_paths(paths, kb, get_settings(), include=include, exclude=exclude, prune=prune, strict=strict, reparse=reparse,
                               show_progress=progress, engine=engine, address=address)
    result = summary.as_dict()
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(
            f"{kb}: {result['files']} files; {result['added']} documents added, {result['updated']} updated, "
            f"{result['unchanged']} unchanged, {result['pruned']} pruned, {len(result['failed'])} failed; "
            f"{result['chunks_added']} chunks embedded ({result['chunks_per_s']}/s), {result['chunks_removed']} removed; "
            f"{result['seconds']} s; index generation {result['index_generation']} ({result['index_kind']})"
        )
        for failure in summary.failed:
            typer.secho(f"  skipped {failure['path']}: {failure['error']}", err=True, fg="yellow")
        if summary.stopped_early:
            typer.secho("  stopped at the first failure (--strict)", err=True, fg="yellow")
    raise typer.Exit(summary.exit_code)
