"""Choose the language-model backend from the settings, so callers never name one."""

from __future__ import annotations

from assistant.config import Settings, get_settings
from assistant.llm.base import ChatModel


def get_chat_model(settings: Settings | None = None) -> ChatModel:
    """``HELPMATE_LLM_BACKEND=vllm``: the served model over HTTP (``HELPMATE_VLLM_*``; an empty
    ``HELPMATE_VLLM_MODEL`` means the base model ``helpmate serve-model`` serves). ``local`` (the
    default): the packaged model in this process, loaded on first use."""
    settings = settings or get_settings()
    if settings.llm_backend == "vllm":
        from assistant.llm.vllm import VLLMChatModel

        return VLLMChatModel.from_settings(settings)
    from assistant.llm.local import LocalChatModel

    return LocalChatModel(settings)
