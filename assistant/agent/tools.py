"""The agent's tools: typed functions with LangChain tool descriptions.

Each tool is a plain function of typed arguments that returns JSON-ready data, so the router calls
it directly and a model calls it through LangChain's tool interface with the same schema. Tools
share a ``ToolContext`` (settings, one retriever) and get the turn's ``Caller``, bound when the
agent builds them for a turn. Each tool checks the caller itself, whoever called it (the router,
the escalation policy or the model): customers search the public knowledge bases and open a ticket
on their own conversation, nothing else; reports and transcripts need an operator with access to
that knowledge base.

A team adds its own tools, such as an order-status lookup over HTTP, by pointing
``HELPMATE_AGENT_EXTRA_TOOLS`` at ``module:attribute`` entries: a LangChain ``BaseTool``, a typed
function with a docstring, a list of either, or a factory taking the ``Settings`` and returning
one of those. ``examples/order_status_tool.py`` is a complete example.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Any, Callable, Literal

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import Field

from assistant.access import AccessDenied, Caller
from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import Conversation
from assistant.retrieval.retriever import Retriever
from assistant.analytics.questions import ReportRequest, parse_period, run_report
from assistant.conversations.tickets import create_ticket as open_ticket_row
from assistant.conversations.tickets import ticket_dict, transcript

GroupBy = Literal["hour", "day", "week", "channel", "kb", "topic", "conversation"]
Priority = Literal["low", "normal", "high", "urgent"]
# Bounded texts: the schema's maxLength is enforced by vLLM's tool-call grammar, so a small model cannot write a
# query that runs until the token limit cuts the call off (seen: "1.1.1.1..." as a search query).
Query = Annotated[str, Field(max_length=100)]
Reason = Annotated[str, Field(max_length=150)]
# Reports on other customers and other conversations: operators' tools, never offered to the model in a
# customer's conversation (the router answers operators' questions).
OPERATOR_TOOLS = frozenset({"sentiment_report", "get_conversation"})


@dataclass
class ToolContext:
    """What the tools need: the settings and the retriever (shared with the answering path)."""

    settings: Settings
    retriever: Retriever
    default_kb: str = "default"
    now: Callable[[], Any] | None = None  # tests pin the clock for period arithmetic
    cache: dict[str, Any] = field(default_factory=dict)


def search_knowledge_base(ctx: ToolContext, caller: Caller, query: Query, kb: str | None = None, k: int = 4) -> list[dict[str, Any]]:
    """Passages of the knowledge base that best match the query, best first, numbered for citing."""
    if not query.strip():
        raise ValueError("the search query is empty")
    kb = kb or ctx.default_kb
    caller.check_kb(kb)
    hits = ctx.retriever.search(query, kb, k=max(1, min(k, 10)), mode="hybrid")
    return [{"number": n, "chunk_id": h.chunk_id, "document_id": h.document_id, "source": h.source, "title": h.title, "section": h.section,
             "page": h.page, "score": round(h.score, 4), "text": h.text} for n, h in enumerate(hits, start=1)]


def sentiment_report(ctx: ToolContext, caller: Caller, period: str = "the past 7 days", group_by: GroupBy | None = "day",
                     kb: str | None = None, channel: str | None = None, limit: int = 5) -> dict[str, Any]:
    """Customer sentiment from the database: messages per class, share negative, mean score, with a written summary.

    ``period`` is plain words ("today", "this week", "the past 30 days", "November 2026",
    "from 2026-11-01 to 2026-11-15"); ``group_by`` one of hour, day, week, channel, kb, topic,
    or conversation (the ``limit`` most negative conversations); none for one overall line.
    """
    caller.check_staff(kb, "a sentiment report")
    now = ctx.now() if ctx.now else datetime.now(timezone.utc)
    start, end, words = parse_period(period, now)
    with session_scope(ctx.settings) as session:
        report = run_report(session, ReportRequest(group_by, start, end, words, kb, channel, max(1, min(limit, 50))), now)
    return {"summary": report.text, "kind": report.kind, "period": words, "start": start.isoformat(),
            "end": end.isoformat() if end else None, "group_by": group_by, "filters": report.filters,
            "rows": [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()} for row in report.rows]}


def get_conversation(ctx: ToolContext, caller: Caller, conversation_id: int) -> dict[str, Any]:
    """A conversation's channel, knowledge base and transcript with each message's sentiment."""
    if not caller.is_staff:
        raise AccessDenied("conversation transcripts are for our team only")
    with session_scope(ctx.settings) as session:
        conversation = session.get(Conversation, conversation_id)
        # One answer for "missing" and "on a knowledge base you may not see", so ids cannot be probed.
        if conversation is None or not caller.may_use_kb(conversation.kb):
            raise ValueError(f"there is no conversation {conversation_id} you may see")
        return {"id": conversation.id, "external_id": conversation.external_id, "channel": conversation.channel,
                "kb": conversation.kb, "started_at": conversation.started_at.isoformat(),
                "messages": transcript(session, conversation.id)}


def create_ticket(ctx: ToolContext, caller: Caller, conversation_id: int, reason: Reason, priority: Priority = "normal") -> dict[str, Any]:
    """Hand the conversation over to a person: opens a ticket with the transcript (or returns the open one)."""
    with session_scope(ctx.settings) as session:
        conversation = session.get(Conversation, conversation_id)
        if conversation is None:
            raise ValueError(f"there is no conversation {conversation_id}")
        caller.check_conversation(conversation_id, conversation.kb)
        ticket, created = open_ticket_row(session, conversation_id, reason, priority)
        return {**ticket_dict(ticket), "created": created}


_BUILTINS: dict[str, Callable[..., Any]] = {
    "search_knowledge_base": search_knowledge_base,
    "sentiment_report": sentiment_report,
    "get_conversation": get_conversation,
    "create_ticket": create_ticket,
}


def _bind(ctx: ToolContext, caller: Caller, function: Callable[..., Any]) -> BaseTool:
    """The function as a LangChain tool whose schema leaves out the context and caller arguments."""
    signature = inspect.signature(function)
    hints = typing.get_type_hints(function, include_extras=True)

    def bound(**kwargs: Any) -> Any:
        return function(ctx, caller, **kwargs)

    parameters = [p.replace(annotation=hints[p.name]) for p in list(signature.parameters.values())[2:]]
    bound.__signature__ = signature.replace(parameters=parameters, return_annotation=hints["return"])  # type: ignore[attr-defined]
    bound.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": hints["return"]}
    bound.__name__, bound.__doc__ = function.__name__, function.__doc__
    return StructuredTool.from_function(bound, name=function.__name__, description=(function.__doc__ or "").strip())


def load_extra_tools(spec: str, settings: Settings) -> list[BaseTool]:
    """The team's own tools named in ``HELPMATE_AGENT_EXTRA_TOOLS`` (``module:attribute``, comma-separated)."""
    tools: list[BaseTool] = []
    for entry in (part.strip() for part in spec.split(",") if part.strip()):
        module_name, _, attribute = entry.partition(":")
        if not attribute:
            raise ValueError(f"HELPMATE_AGENT_EXTRA_TOOLS entry {entry!r} must look like package.module:attribute")
        try:
            value = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"HELPMATE_AGENT_EXTRA_TOOLS entry {entry!r} cannot be loaded: {error}") from error
        if callable(value) and not isinstance(value, BaseTool) and getattr(value, "__helpmate_tool_factory__", False):
            value = value(settings)
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, BaseTool):
                tools.append(item)
            elif callable(item):
                tools.append(StructuredTool.from_function(item))
            else:
                raise ValueError(f"HELPMATE_AGENT_EXTRA_TOOLS entry {entry!r} is not a tool or function: {item!r}")
    return tools


def tool_factory(function: Callable[[Settings], Any]) -> Callable[[Settings], Any]:
    """Mark a ``factory(settings) -> tool(s)`` for ``HELPMATE_AGENT_EXTRA_TOOLS`` (tools that need configuration)."""
    function.__helpmate_tool_factory__ = True  # type: ignore[attr-defined]
    return function


def build_tools(ctx: ToolContext, caller: Caller, extra: list[BaseTool]) -> dict[str, BaseTool]:
    """The built-in tools bound to ``ctx`` and one turn's ``caller``, plus the team's own (``extra``,
    loaded once with ``load_extra_tools``), by name."""
    tools = {name: _bind(ctx, caller, function) for name, function in _BUILTINS.items()}
    for tool in extra:
        if tool.name in tools:
            raise ValueError(f"HELPMATE_AGENT_EXTRA_TOOLS adds a tool named {tool.name!r}, which Helpmate already has")
        tools[tool.name] = tool
    return tools
