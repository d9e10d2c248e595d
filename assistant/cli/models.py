"""`helpmate models prepare`: find the packaged embedding model and convert the packaged language model, once."""

from __future__ import annotations

import typer

from assistant.cli.errors import user_errors
from assistant.config import get_settings
from assistant.modelstore import ModelMissingError, embedding_model_path, prepare_llm

models_app = typer.Typer(help="Find and prepare the packaged models (offline).", no_args_is_help=True)


@models_app.command("prepare")
def models_prepare(force: bool = typer.Option(False, "--force", help="Convert the language model again.")) -> None:
    """Locate the embedding model and convert the packaged SmolLM2 GGUF to a float32 checkpoint, once."""
    settings = get_settings()
    with user_errors(ModelMissingError):
        typer.echo(f"embedding model: {embedding_model_path(settings)}")
        typer.echo(f"language model:  {prepare_llm(settings, force=force)}")
