"""Every tool call an agent turn makes, timed and summarised, stored with the assistant's message.

A failing tool never ends the turn: its error is recorded here and given back to whoever called it
(the router, the escalation policy or the model), which carries on without that result.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from langchain_core.tools import BaseTool

log = logging.getLogger("helpmate.agent")

CalledBy = Literal["router", "policy", "model"]
_SUMMARY_CHARS = 300


@dataclass
class ToolCall:
    """One call: what was called, by whom, with what, what came back (shortened) and how long it took."""

    tool: str
    arguments: dict[str, Any]
    by: CalledBy
    duration_ms: float
    result: str | None = None
    error: str | None = None


@dataclass
class Trace:
    """The tool calls of one agent turn, in order, and the route the router chose."""

    route: str = ""
    calls: list[ToolCall] = field(default_factory=list)

    def call(self, tool: BaseTool, arguments: dict[str, Any], by: CalledBy) -> tuple[Any, str | None]:
        """Run ``tool``; returns (result, None) or (None, error message). Never raises."""
        started = time.perf_counter()
        try:
            result = tool.invoke(arguments)
        except Exception as error:  # a tool's failure is data for the caller, not a crash of the chat
            message = f"{type(error).__name__}: {error}"
            log.warning("tool %s(%s) failed: %s", tool.name, arguments, message)
            self.calls.append(ToolCall(tool.name, arguments, by, _ms(started), error=message))
            return None, message
        self.calls.append(ToolCall(tool.name, arguments, by, _ms(started), result=summarise(result)))
        return result, None

    def as_dict(self) -> dict[str, Any]:
        return {"route": self.route, "tools": [asdict(call) for call in self.calls]}


def summarise(result: Any) -> str:
    """A short text of a tool's result, for the dashboard (the full result goes to the model)."""
    if isinstance(result, list) and result and isinstance(result[0], dict) and "source" in result[0]:
        text = f"{len(result)} passages: " + "; ".join(f"[{r['number']}] {r['title'] or r['source']}" for r in result)
    elif isinstance(result, (dict, list)):
        text = json.dumps(result, ensure_ascii=False, default=str)
    else:
        text = str(result)
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
