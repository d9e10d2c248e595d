"""`helpmate models prepare`: find the packaged embedding model, check its backend, and convert the packaged
language model, once."""

from __future__ import annotations

import typer

from assistant.cli.errors import user_errors
from assistant.config import get_settings
from assistant.embeddings import prepare_backend, prepared_path
from assistant.modelstore import ModelMissingError, embedding_model_path, prepare_llm

models_app = typer.Typer(help="Find and prepare the packaged models (offline).", no_args_is_help=True)


@models_app.command("prepare")
def models_prepare(force: bool = typer.Option(False, "--force", help="Convert the language model and check the "
                                              "embedding backend again.")) -> None:
    """Locate the embedding model, check the embedding backend (HELPMATE_EMBEDDING_BACKEND) on this machine, and
    convert the packaged SmolLM2 GGUF to a float32 checkpoint, once."""
    settings = get_settings()
    with user_errors(ModelMissingError, RuntimeError):
        typer.echo(f"embedding model: {embedding_model_path(settings)}")
        prepared = prepare_backend(settings, force=force)
        typer.echo(f"embedding backend: {prepared['backend']} (largest cosine distance to float32 "
                   f"{prepared['max_cosine_distance_to_float32']:.2e}; {prepared_path(settings, prepared['backend'])})")
        typer.echo(f"language model:  {prepare_llm(settings, force=force)}")
