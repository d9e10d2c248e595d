"""Webhooks over HTTP, for admin keys: what `helpmate webhooks` does, for a team that wires its desk by API.

A desk's setup script adds its own endpoint (`POST /v1/webhooks`, the secret in the answer, once),
checks it with a ping and reads failed deliveries; ``assistant.webhooks.manage`` does the work and
writes the audit log, with the key's name as the actor.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from assistant.webhooks import EVENTS, manage
from ui.api.auth import Context, authenticated
from ui.api.errors import ApiError

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


class NewWebhook(BaseModel):
    url: str = Field(description="Where to POST the events (http or https).")
    events: list[str] | None = Field(None, description=f"Events to send (default: all): {', '.join(EVENTS)}.")
    kb: str | None = Field(None, description="Only events of this knowledge base (default: all).")


@router.post("", status_code=201, summary="Add a webhook; the answer holds its signing secret, this once")
def add(body: NewWebhook, ctx: Context = Depends(authenticated)) -> dict[str, Any]:
    caller = ctx.require_admin("adding a webhook")
    try:
        webhook_id, events, secret = manage.add(ctx.settings, caller, body.url, body.events or list(EVENTS), body.kb)
    except ValueError as error:
        raise ApiError(400, str(error), "invalid_webhook", "events" if "event" in str(error) else "url") from error
    return {"id": webhook_id, "url": body.url.strip(), "events": events, "kb": body.kb, "secret": secret}


@router.get("", summary="Every webhook with its deliveries by status (never the secret)")
def list_(ctx: Context = Depends(authenticated)) -> dict[str, Any]:
    return {"webhooks": manage.webhooks(ctx.settings, ctx.require_admin("listing webhooks"))}


@router.delete("/{webhook_id}", summary="Stop a webhook; its deliveries stay listed")
def remove(webhook_id: int, ctx: Context = Depends(authenticated)) -> dict[str, Any]:
    caller = ctx.require_admin("removing a webhook")
    try:
        url = manage.remove(ctx.settings, caller, webhook_id)
    except ValueError as error:
        raise ApiError(404, str(error), "webhook_not_found") from error
    return {"id": webhook_id, "url": url, "active": False}


@router.post("/{webhook_id}/ping", summary="Send a signed ping now; the answer says whether the receiver took it")
def ping(webhook_id: int, ctx: Context = Depends(authenticated)) -> dict[str, Any]:
    caller = ctx.require_admin("testing a webhook")
    try:
        return manage.ping(ctx.settings, caller, webhook_id)
    except ValueError as error:
        raise ApiError(404, str(error), "webhook_not_found") from error


@router.get("/deliveries", summary="The newest deliveries (event, status, attempts, last error), without payloads")
def deliveries(ctx: Context = Depends(authenticated), webhook_id: int | None = None,
               status: Literal["pending", "delivered", "failed"] | None = None, limit: int = 20) -> dict[str, Any]:
    caller = ctx.require_admin("reading webhook deliveries")
    return {"deliveries": manage.deliveries(ctx.settings, caller, webhook_id, status, max(1, min(limit, 500)))}


@router.post("/deliveries/{delivery_id}/retry", summary="Send a delivery again at the next round")
def retry(delivery_id: int, ctx: Context = Depends(authenticated)) -> dict[str, Any]:
    caller = ctx.require_admin("retrying a webhook delivery")
    try:
        manage.retry(ctx.settings, caller, delivery_id)
    except ValueError as error:
        raise ApiError(404, str(error), "delivery_not_found") from error
    return {"id": delivery_id, "status": "pending"}
