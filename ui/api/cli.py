"""`helpmate api` (serve the HTTP API with uvicorn) and `helpmate keys` (create, list and revoke API keys).

Kept free of FastAPI imports at module level, so `helpmate --help` stays quick.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.errors import fail
from assistant.config import get_settings

keys_app = typer.Typer(help="API keys for `helpmate api`: customer (public, for a website), operator, admin.",
                       no_args_is_help=True)


def api(
    host: Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 serves other machines too.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to serve on.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes (each loads the models; state is in the database).")] = 1,
    ingest_root: Annotated[list[Path], typer.Option("--ingest-root", help="A server folder admin keys may ingest from (repeatable; "
                                                    "sets HELPMATE_API_INGEST_ROOTS).")] = [],
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn's log level: debug, info, warning, error.")] = "info",
) -> None:
    """Serve the HTTP API: OpenAI-compatible chat, conversations, feedback, ingestion jobs, operators'
    data, /healthz, /readyz, /docs and the chat widget (/widget.js). Ctrl-C stops it."""
    import uvicorn

    if not 1 <= port <= 65535:
        fail(f"port {port} is not between 1 and 65535")
    if workers < 1:
        fail("--workers must be at least 1")
    missing = [str(root) for root in ingest_root if not root.is_dir()]
    if missing:
        fail(f"--ingest-root {missing[0]} is not a folder")
    if ingest_root:
        os.environ["HELPMATE_API_INGEST_ROOTS"] = os.pathsep.join(str(root.resolve()) for root in ingest_root)
    settings = get_settings()
    if workers > 1 and not settings.database_url:
        typer.secho("several workers share one SQLite file; for real traffic set HELPMATE_DATABASE_URL to PostgreSQL",
                    fg="yellow", err=True)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    typer.secho(f"Helpmate API at http://{shown}:{port}  (docs: /docs, widget: /widget.js; Ctrl-C stops it)", fg="green")
    typer.echo("Each request needs a key from `helpmate keys create --role customer|operator|admin`.")
    uvicorn.run("ui.api.app:from_environment", factory=True, host=host, port=port, workers=workers, log_level=log_level,
                timeout_graceful_shutdown=30)


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help="customer (public: chat on public knowledge bases), operator or admin.")],
    kb: Annotated[list[str], typer.Option("--kb", help="A knowledge base the key may use (repeatable); default: all its role may.")] = [],
    name: Annotated[str | None, typer.Option("--name", help="What the key is for, e.g. 'website widget'.")] = None,
    rate_limit: Annotated[int | None, typer.Option("--rate-limit", help="Requests per minute (default HELPMATE_API_DEFAULT_RATE_LIMIT, 120).")] = None,
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    from assistant.access import Caller
    from ui.api.keys import create_key
    from ui.api.options import ApiOptions

    try:
        secret, row = create_key(get_settings(), role, kb, name, rate_limit or ApiOptions().default_rate_limit, Caller.local_admin())
    except ValueError as error:
        fail(error)
    scope = ", ".join(row.knowledge_bases) if row.knowledge_bases else "all its role may use"
    typer.echo(f"key {row.id} '{row.name}' ({row.role}; knowledge bases: {scope}; {row.rate_limit} requests/minute):")
    typer.echo(secret)
    typer.secho("It is shown only now; `helpmate keys revoke " + str(row.id) + "` ends it.", err=True, fg="yellow")


@keys_app.command("list")
def list_() -> None:
    """Every key: id, prefix, name, role, knowledge bases, limit, last use, revoked."""
    from ui.api.keys import list_keys

    rows = list_keys(get_settings())
    if not rows:
        typer.echo("no API keys yet; create one with `helpmate keys create --role customer --kb NAME`")
    for row in rows:
        used = row.last_used_at.strftime("%Y-%m-%d %H:%M UTC") if row.last_used_at else "never"
        state = f"revoked {row.revoked_at:%Y-%m-%d}" if row.revoked_at else "active"
        kbs = ",".join(row.knowledge_bases) if row.knowledge_bases else "*"
        typer.echo(f"{row.id}\t{row.prefix}…\t{row.name}\t{row.role}\t{kbs}\t{row.rate_limit}/min\tlast used {used}\t{state}")


@keys_app.command("revoke")
def revoke(which: Annotated[str, typer.Argument(help="The key's id or prefix (`helpmate keys list`).")]) -> None:
    """Revoke a key: its next request is refused."""
    from assistant.access import Caller
    from ui.api.keys import revoke_key

    try:
        row = revoke_key(get_settings(), which, Caller.local_admin())
    except ValueError as error:
        fail(error)
    typer.echo(f"key {row.id} '{row.name}' revoked")
