"""Any Helpmate ``ChatModel`` (vLLM or local) as a LangChain chat model.

LangChain chains, agents and LangGraph nodes then run on the configured backend, with
LangChain's callbacks and streaming, while the backends stay free of LangChain.
"""

from __future__ import annotations

from typing import Any, Iterator

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ChatMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, SkipValidation

from assistant.llm.base import ChatModel, GenerationOptions, Message

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def to_message_dicts(messages: list[BaseMessage]) -> list[Message]:
    """LangChain messages as the OpenAI-style dicts the backends take."""
    converted: list[Message] = []
    for message in messages:
        role = message.role if isinstance(message, ChatMessage) else _ROLES.get(message.type)
        if role is None:
            raise ValueError(f"A {type(message).__name__} cannot be sent to a chat model; use system, human, AI or tool messages.")
        entry: Message = {"role": role, "content": message.text}
        if isinstance(message, ToolMessage):
            entry["tool_call_id"] = message.tool_call_id
        converted.append(entry)
    return converted


class LangChainChatModel(BaseChatModel):
    """``LangChainChatModel(chat_model=get_chat_model())``; ``.invoke``, ``.stream``, ``.batch`` as usual."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    chat_model: SkipValidation[ChatModel]
    max_tokens: int = GenerationOptions.max_tokens
    temperature: float = GenerationOptions.temperature

    @property
    def _llm_type(self) -> str:
        return "helpmate"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.chat_model.name, "max_tokens": self.max_tokens, "temperature": self.temperature}

    def _options(self, stop: list[str] | None) -> GenerationOptions:
        return GenerationOptions(max_tokens=self.max_tokens, temperature=self.temperature, stop=tuple(stop or ()))

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = self.chat_model.generate(to_message_dicts(messages), self._options(stop))
        message = AIMessage(content=text, response_metadata={"model_name": self.chat_model.name})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in self.chat_model.stream(to_message_dicts(messages), self._options(stop)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
