"""Choose the language-model backend from the settings, so callers never name one."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

from assistant.config import Settings, get_settings
from assistant.llm.base import ChatModel

log = logging.getLogger(__name__)


def get_chat_model(settings: Settings | None = None) -> ChatModel:
    """``HELPMATE_LLM_BACKEND=vllm``: the served model over HTTP (``HELPMATE_VLLM_*``). ``local`` (the
    default): the packaged model in this process, loaded on first use.

    Both answer with the fine-tuned adapter promoted by `helpmate finetune promote` (the ``active``
    model version in the database), and with the base model when none is active. An explicit
    ``HELPMATE_VLLM_MODEL`` overrides that choice for the vLLM backend.
    """
    from assistant.model_versions import active_version, ensure_served

    settings = settings or get_settings()
    if settings.llm_backend == "vllm":
        from assistant.llm.vllm import VLLMChatModel

        if settings.vllm_model:
            return VLLMChatModel.from_settings(settings)
        active = active_version(settings)
        if active is None:
            return VLLMChatModel.from_settings(settings)
        ensure_served(settings.vllm_base_url, active.name, active.adapter_path, settings.vllm_api_key)
        return VLLMChatModel.from_settings(settings.model_copy(update={"vllm_model": active.name}))
    from assistant.llm.local import LocalChatModel

    active = active_version(settings)
    if active is not None:
        if (Path(active.adapter_path) / "adapter_config.json").exists():
            model = LocalChatModel(settings, adapter_path=Path(active.adapter_path))
            model.name = active.name
            return model
        log.warning("the active model version %s has no adapter at %s; answering with the base model "
                    "(`helpmate finetune rollback` makes the registry agree)", active.name, active.adapter_path)
    return LocalChatModel(settings)


def answering_threads(settings: Settings) -> int:
    """CPU threads this process's models should use while answering: ``HELPMATE_CPU_THREADS`` when set,
    else every core, except one when the vLLM server shares this machine's CPU.

    vLLM on CPU pins its worker to a core. An embedding call that spreads over every core then waits
    at each layer for the thread that shares the worker's core, and slows the worker as well
    (bench/serve.py measures the full path against direct vLLM; BENCHMARKS.md).
    """
    if settings.cpu_threads:
        return settings.cpu_threads
    cores = os.cpu_count() or 1
    if settings.llm_backend == "vllm" and settings.device == "cpu":
        host = urlparse(settings.vllm_base_url).hostname or ""
        if host in ("localhost", "::1") or host.startswith("127."):
            from assistant.serving import gpu_available

            if not gpu_available():
                return 1
    return cores


def use_answering_threads(settings: Settings) -> int:
    """Set torch's thread count (process-wide) to ``answering_threads``; returns it."""
    import torch

    threads = answering_threads(settings)
    torch.set_num_threads(threads)
    return threads
