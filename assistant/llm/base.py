"""The one interface every language-model backend implements.

Messages are OpenAI-style dicts (``{"role": "system"|"user"|"assistant", "content": str}``), so
the same prompt goes to vLLM over HTTP and to the in-process model unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

Message = dict[str, str]


class ModelUnavailableError(RuntimeError):
    """The model cannot answer now (server down, timed out, not prepared); the message tells the user what to do."""


@dataclass(frozen=True)
class GenerationOptions:
    max_tokens: int = 256
    temperature: float = 0.0  # greedy by default: answers are reproducible and easier to verify
    stop: tuple[str, ...] = ()


class ChatModel(Protocol):
    """A chat model: ``name`` is what gets recorded with each answer (base model or adapter version)."""

    name: str

    def generate(self, messages: Sequence[Message], options: GenerationOptions = GenerationOptions()) -> str:
        """The whole completion."""
        ...

    def stream(self, messages: Sequence[Message], options: GenerationOptions = GenerationOptions()) -> Iterator[str]:
        """The completion as text pieces, as soon as the model produces them."""
        ...
