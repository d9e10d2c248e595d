"""The API server's own settings, read from ``HELPMATE_API_*`` at the edge (`helpmate api`, the app
factory) and passed down, like ``assistant.config.Settings`` for the rest of Helpmate.

They are environment variables rather than only command options because `helpmate api --workers N`
starts N processes that each build the app; the command sets the variables before it starts them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ApiOptions(BaseSettings):
    """Each field is the environment variable ``HELPMATE_API_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="HELPMATE_API_", extra="ignore")

    ingest_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Server folders an admin key may ingest from (``os.pathsep``-separated); empty: folder jobs are refused, "
                    "uploads still work. A key that could name any folder could read any file of the server.")
    turn_threads: int = Field(64, ge=1, description="Chat turns one process runs at once; more wait their turn.")
    default_rate_limit: int = Field(120, ge=1, description="Requests per minute of a key created without --rate-limit.")
    lock_wait_s: float = Field(600.0, ge=0, description="How long an ingestion job waits for another job on its knowledge base.")
    max_files: int = Field(200, ge=1, description="Files one upload job may carry.")
    webhook_interval_s: float = Field(2.0, ge=0, description="Seconds between the rounds in which the server sends due "
                                                             "webhook deliveries (`helpmate webhooks`); 0: it sends none.")

    @field_validator("ingest_roots", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(part).expanduser().resolve() for part in value.split(os.pathsep) if part.strip()]
        return value
