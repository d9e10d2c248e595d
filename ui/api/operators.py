"""Operators' data as JSON: the sentiment summary, alerts and the ticket queue (operator and admin keys).

The numbers are the operator dashboard's (``ui.dashboard_data``), with its access rules: every
query is limited to the knowledge bases the key's caller may see, and asking for another one is
403. Dates are whole UTC days, ``start`` to ``end`` inclusive; without them, the last 14 days that
have customer messages (imported history can be older than today).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from assistant.access import audit
from assistant.database import session_scope
from ui import dashboard_data as data
from ui.api.auth import Context, authenticated
from ui.api.errors import ApiError

router = APIRouter(prefix="/v1", tags=["operators"])
GroupBy = Literal["day", "hour", "week", "channel", "kb", "topic"]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table as JSON rows (times in ISO 8601 UTC, missing values as null)."""
    return json.loads(frame.to_json(orient="records", date_format="iso", date_unit="s"))


def _period(session, start: date | None, end: date | None) -> data.Period:
    if start is None and end is None:
        return data.default_period(session)
    default = data.default_period(session)
    period = data.Period(start or default.first, end or default.last)
    if period.first > period.last:
        raise ApiError(400, f"start {period.first} is after end {period.last}", "invalid_period", "start")
    return period


@router.get("/reports/sentiment", summary="Sentiment per day, hour, week, channel, knowledge base or topic")
def sentiment(ctx: Context = Depends(authenticated), start: date | None = None, end: date | None = None,
              group_by: GroupBy = "day", kb: str | None = None) -> dict[str, Any]:
    caller = ctx.require_staff("the sentiment report")
    with session_scope(ctx.settings) as session:
        period = _period(session, start, end)
        rows = data.sentiment_by(session, caller, period, group_by, kb)
        overview = data.overview(session, caller, period, kb)
    return {"start": period.first.isoformat(), "end": period.last.isoformat(), "group_by": group_by, "kb": kb,
            "overview": overview, "rows": records(rows)}


@router.get("/alerts", summary="Negative-sentiment spike alerts whose window ends in the period")
def alerts(ctx: Context = Depends(authenticated), start: date | None = None, end: date | None = None,
           kb: str | None = None) -> dict[str, Any]:
    caller = ctx.require_staff("alerts")
    with session_scope(ctx.settings) as session:
        period = _period(session, start, end)
        rows = data.alerts(session, caller, period, kb)
    return {"start": period.first.isoformat(), "end": period.last.isoformat(), "kb": kb, "alerts": records(rows)}


@router.get("/tickets", summary="The ticket queue: urgent first, then oldest first")
def tickets(ctx: Context = Depends(authenticated), kb: str | None = None,
            status: list[Literal["open", "assigned", "closed"]] = Query(["open", "assigned"])) -> dict[str, Any]:
    caller = ctx.require_staff("the ticket queue")
    with session_scope(ctx.settings) as session:
        rows = data.tickets(session, caller, tuple(status), kb)
    return {"kb": kb, "status": status, "tickets": records(rows)}


class TicketUpdate(BaseModel):
    status: Literal["open", "assigned", "closed"]
    assignee: str | None = Field(None, max_length=200)


@router.patch("/tickets/{ticket_id}", summary="Move a ticket: open, assigned (to someone) or closed")
def update_ticket(ticket_id: int, body: TicketUpdate, ctx: Context = Depends(authenticated)) -> dict[str, Any]:
    caller = ctx.require_staff("moving tickets")
    with session_scope(ctx.settings) as session:
        try:
            ticket = data.update_ticket(session, caller, ticket_id, body.status, body.assignee)
        except ValueError as error:
            raise ApiError(400 if "no ticket" not in str(error) else 404, str(error), "invalid_ticket") from None
        result = {"id": ticket.id, "status": ticket.status, "assignee": ticket.assignee, "priority": ticket.priority,
                  "conversation_id": ticket.conversation_id}
    audit(ctx.settings, caller, "ticket.update", f"ticket {ticket_id}", {"status": body.status, "assignee": body.assignee})
    return result
