"""A team's own agent tool: order status from the shop's order service, over HTTP.

Register it with ``HELPMATE_AGENT_EXTRA_TOOLS=examples.order_status_tool:order_status_tool`` and
point ``ORDER_SERVICE_URL`` at the service (it answers ``GET /orders/<number>`` with JSON). The
factory runs once when the agent starts, so the URL is read then; the tool's docstring is what the
model reads to decide when to call it, and its typed arguments become the tool's JSON schema.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from langchain_core.tools import BaseTool, StructuredTool

from assistant.agent.tools import tool_factory
from assistant.config import Settings


@tool_factory
def order_status_tool(settings: Settings) -> BaseTool:
    base_url = os.environ.get("ORDER_SERVICE_URL", "http://127.0.0.1:9000").rstrip("/")

    def order_status(order_number: str) -> dict[str, Any]:
        """Where a customer's order is: its status, carrier and tracking number, by order number (e.g. NG-10042)."""
        response = httpx.get(f"{base_url}/orders/{order_number}", timeout=5.0)
        if response.status_code == 404:
            raise ValueError(f"there is no order {order_number}")
        response.raise_for_status()
        return response.json()

    return StructuredTool.from_function(order_status)
