"""`helpmate`: one command whose subcommands each package defines; assembled here, at the top."""

from __future__ import annotations

import typer

from assistant.cli import models_app
from ingest.cli import ingest

app = typer.Typer(help="Helpmate: customer-service AI on your own documents.", no_args_is_help=True, add_completion=False)
app.add_typer(models_app, name="models")
app.command("ingest")(ingest)

if __name__ == "__main__":
    app()
