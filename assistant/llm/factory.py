"""Choose the language-model backend from the settings, so callers never name one."""

from __future__ import annotations

import os
from urllib.parse import urlparse

from assistant.config import Settings
from assistant.llm.base import ChatModel


def get_chat_model(settings: Settings) -> ChatModel:
    """``HELPMATE_LLM_BACKEND=vllm``: the served model over HTTP (``HELPMATE_VLLM_*``). ``local`` (the
    default): the packaged model in this process, loaded on first use.

    Both answer with ``versions.active_model``: the fine-tuned adapter promoted by `helpmate finetune
    promote` (the ``active`` model version in the database), else, with ``HELPMATE_ANSWERER=adapter``,
    the grounded-answer adapter (merged into the local model; served by `helpmate
    serve-model`), else (the default) the bare base model. An explicit ``HELPMATE_VLLM_MODEL`` overrides
    that choice for the vLLM backend.
    """
    from assistant.llm.versions import active_model, ensure_served

    if settings.llm_backend == "vllm":
        from assistant.llm.vllm import VLLMChatModel

        if settings.vllm_model:
            return VLLMChatModel.from_settings(settings)
        active = active_model(settings)
        if active.adapter_path is None:
            return VLLMChatModel.from_settings(settings)
        ensure_served(settings.vllm_base_url, active.name, str(active.adapter_path), settings.vllm_api_key)
        return VLLMChatModel.from_settings(settings.model_copy(update={"vllm_model": active.name}))
    from assistant.llm.local import LocalChatModel

    active = active_model(settings)
    model = LocalChatModel(settings, adapter_path=active.adapter_path)
    model.name = active.name
    return model


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
            from assistant.llm.vllm_server import gpu_available

            if not gpu_available():
                return 1
    return cores


def use_answering_threads(settings: Settings) -> int:
    """Set torch's thread count (process-wide) to ``answering_threads``; returns it."""
    import torch

    threads = answering_threads(settings)
    torch.set_num_threads(threads)
    return threads
