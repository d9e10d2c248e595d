"""Who is calling: the FastAPI dependency that checks the bearer key, counts it against its rate
limit, and hands the route its ``Request`` context (the key, the settings, the client address).

Routes then create the request's ``Caller`` from the key (``KeyInfo.caller``); nothing is decided
from the request body about who the caller is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assistant.access import AccessDenied, Caller
from assistant.config import Settings
from ui.api.errors import ApiError
from ui.api.keys import KeyInfo, check_key, count_request

bearer = HTTPBearer(auto_error=False, description="A Helpmate API key (`helpmate keys create`)")


@dataclass(frozen=True)
class Context:
    """One authenticated request."""

    key: KeyInfo
    settings: Settings
    client: str | None
    state: Any  # the app's shared state (agent, options, job runner)

    def caller(self, conversation_id: int | None = None) -> Caller:
        return self.key.caller(self.settings, conversation_id, self.client)

    def require_staff(self, what: str) -> Caller:
        caller = self.caller()
        if not caller.is_staff:
            raise ApiError(403, f"{what} is for operator and admin keys; this is a customer key", "access_denied")
        return caller

    def require_admin(self, what: str) -> Caller:
        caller = self.caller()
        if caller.role != "admin":
            raise ApiError(403, f"{what} needs an admin key (`helpmate keys create --role admin`)", "access_denied")
        return caller


def authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Context:
    """The request's key, checked and counted; 401 without a valid key, 429 over its limit."""
    settings = request.app.state.settings
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "send your API key as `Authorization: Bearer hm_...`; `helpmate keys create` makes one",
                       "missing_api_key", headers={"WWW-Authenticate": "Bearer"})
    try:
        key = check_key(settings, credentials.credentials.strip())
    except AccessDenied as error:
        raise ApiError(401, str(error), "invalid_api_key", headers={"WWW-Authenticate": "Bearer"}) from None
    wait = count_request(settings, key)
    if wait is not None:
        raise ApiError(429, f"this key may send {key.rate_limit} requests a minute; try again in {wait:.0f} s",
                       "rate_limit_exceeded", headers={"Retry-After": f"{wait:.0f}"})
    client = request.client.host if request.client else None
    return Context(key, settings, client, request.app.state)
