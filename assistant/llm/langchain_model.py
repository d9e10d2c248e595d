"""Any Helpmate ``ChatModel`` (vLLM or local) as a LangChain chat model.

LangChain chains, agents and LangGraph nodes then run on the configured backend, with
LangChain's callbacks and streaming, while the backends stay free of LangChain.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ChatMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
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
        entry: dict[str, Any] = {"role": role, "content": message.text}
        if isinstance(message, ToolMessage):
            entry["tool_call_id"] = message.tool_call_id
        if isinstance(message, AIMessage) and message.tool_calls:
            entry["tool_calls"] = [
                {"id": call["id"], "type": "function",
                 "function": {"name": call["name"], "arguments": json.dumps(call["args"])}}
                for call in message.tool_calls
            ]
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

    def bind_tools(self, tools: Sequence[BaseTool | dict[str, Any]], *, tool_choice: str | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """OpenAI-style tool calling; only backends with a ``chat(..., tools=...)`` method (vLLM) have it.

        ``tool_choice`` is ``auto``, ``required`` (vLLM enforces a valid call with structured
        output) or ``none``.
        """
        if not hasattr(self.chat_model, "chat"):
            raise ValueError(f"the {type(self.chat_model).__name__} backend cannot call tools; "
                             "set HELPMATE_LLM_BACKEND=vllm or HELPMATE_AGENT_MODEL_TOOLS=off")
        schemas = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=schemas, tool_choice=tool_choice or "auto", **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str = "auto",
        **kwargs: Any,
    ) -> ChatResult:
        if tools:
            reply = self.chat_model.chat(to_message_dicts(messages), self._options(stop), tools=tools,  # type: ignore[attr-defined]
                                         tool_choice=tool_choice)
            calls = [
                {"name": call["function"]["name"], "args": _arguments(call["function"].get("arguments")),
                 "id": call.get("id") or f"call_{i}"}
                for i, call in enumerate(reply.get("tool_calls") or [])
            ]
            message = AIMessage(content=reply.get("content") or "", tool_calls=calls,
                                response_metadata={"model_name": self.chat_model.name})
        else:
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


def _arguments(raw: str | dict[str, Any] | None) -> dict[str, Any]:
    """A tool call's arguments; a model that wrote invalid JSON gets its text back as ``_raw``."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}
