"""The state of one agent turn: which conversation, what came before, and what the turn has done so far.

Its own module so that the agent and the model's tool loop both use it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.tools import BaseTool

from assistant.access import Caller
from assistant.agent.trace import Trace


@dataclass
class Turn:
    """One customer message being answered; ``trace`` records every tool call of the turn."""

    conversation_id: int
    kb: str
    history: list[tuple[str, str]]  # (user | assistant, text), oldest first, before this message
    customer_message_id: int
    sentiment: tuple[str | None, float | None]
    started: float  # time.perf_counter() when the message arrived
    caller: Caller
    tools: dict[str, BaseTool]  # bound to ``caller``
    trace: Trace = field(default_factory=Trace)
    ticket: dict[str, Any] | None = None  # opened by the model's own create_ticket call
    person_ticket: dict[str, Any] | None = None  # the open ticket of a person who has replied: the assistant does not answer
    receipt_id: int | None = None  # the receipt that already stands since that person's last message (not stored again)
    waiting_ticket: int | None = None  # the conversation's ticket that is not closed, when the message arrived
