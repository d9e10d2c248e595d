"""What the benchmarks share: the checkout's prepared models, a vLLM server for the run, latency percentiles."""

from __future__ import annotations

import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from assistant.config import Settings

REPO = Path(__file__).resolve().parents[1]
# What `helpmate` resolves here (helpmate.env, HELPMATE_*), read when a benchmark starts, before it
# points HELPMATE_DATA_DIR at a scratch folder.
CHECKOUT_SETTINGS = Settings()


def publish(settings, kb: str) -> None:
    """Offer ``kb`` to customers (knowledge bases start internal), as an admin would."""
    from assistant.access import Caller, set_visibility

    set_visibility(settings, kb, "public", Caller.staff("admin", "bench"))


def customer_conversation(agent, kb: str, channel: str = "bench"):
    """A new conversation on the public ``kb`` and its customer (what the web chat does for a visitor)."""
    from assistant.access import Caller

    customer = Caller.customer(agent.settings, None)
    conversation = agent.start(channel, kb, caller=customer)
    return conversation, customer.in_conversation(conversation)


def share_checkout_models() -> None:
    """Keep using the models `make` prepared (``helpmate models prepare``) in a scratch data directory."""
    os.environ.setdefault("HELPMATE_MODELS_DIR", str(CHECKOUT_SETTINGS.models_dir))


def percentile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of already sorted values, nearest rank below."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def vllm_server(settings, base_url: str | None = None, dtype: str | None = None) -> Iterator[str]:
    """The base URL of a vLLM server: ``base_url`` if given, else one started on a free port with weights in
    ``dtype`` (default: ``helpmate serve-model``'s) for the ``with`` block (its virtual environment and logs
    in the checkout's data directory) and stopped after."""
    if base_url:
        yield base_url
        return
    from assistant.llm.vllm_server import ServeOptions, start_server, stop_server

    serve_settings = settings.model_copy(update={"data_dir": CHECKOUT_SETTINGS.data_dir, "models_dir": CHECKOUT_SETTINGS.models_dir})
    server = start_server(serve_settings, ServeOptions(port=free_port(), **({"dtype": dtype} if dtype else {})), background=True,
                          echo=lambda line: print(line, file=sys.stderr))
    try:
        yield server.base_url
    finally:
        stop_server(serve_settings, server)
