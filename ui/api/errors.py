"""Errors in OpenAI's shape, so every OpenAI client shows them as it shows OpenAI's own:
``{"error": {"message", "type", "param", "code"}}`` with the matching HTTP status.

Bad input is a 4xx that says what to fix. Anything unexpected is logged with its traceback under a
reference, and the caller gets a 500 with that reference only: no traceback, no internal path.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.access import AccessDenied

log = logging.getLogger("helpmate.api")

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
         405: "invalid_request_error", 409: "conflict_error", 413: "invalid_request_error", 415: "invalid_request_error",
         422: "invalid_request_error", 429: "rate_limit_error", 500: "server_error", 503: "service_unavailable"}


class ApiError(Exception):
    """An error the caller can act on; ``message`` is shown to them as it is."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}
        self.extra = extra  # Helpmate's own fields (e.g. the conversation a failed turn was stored in)


def error_body(status: int, message: str, code: str | None = None, param: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": TYPES.get(status, "invalid_request_error"), "param": param,
                             "code": code}
    if extra:
        error["helpmate"] = extra
    return {"error": error}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error_body(error.status, error.message, error.code, error.param, error.extra),
                        status_code=error.status, headers=error.headers)


def _validation_message(error: RequestValidationError) -> tuple[str, str | None]:
    problems = []
    param = None
    for item in error.errors():
        if item.get("type") == "json_invalid":
            return "the request body is not valid JSON", None
        location = ".".join(str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path", "header"))
        param = param or location or None
        problems.append(f"{location or 'request'}: {item.get('msg', 'invalid')}")
    return "; ".join(problems[:5]) or "the request is not valid", param


def install(app: FastAPI) -> None:
    """Every error the app can raise, answered in OpenAI's shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(AccessDenied)
    async def _denied(request: Request, error: AccessDenied) -> JSONResponse:
        return error_response(ApiError(403, str(error), "access_denied"))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(error)
        return error_response(ApiError(400, message, "invalid_request", param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404:
            message = f"there is no {request.method} {request.url.path}; /docs lists every endpoint"
        elif error.status_code == 405:
            message = f"{request.url.path} does not take {request.method}; /docs lists what it takes"
        else:
            message = str(error.detail)
        return error_response(ApiError(error.status_code, message, None, headers=dict(error.headers or {})))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        reference = uuid.uuid4().hex[:12]
        log.exception("unexpected error %s in %s %s", reference, request.method, request.url.path)
        return error_response(ApiError(500, f"something went wrong on our side (reference {reference}); "
                                            "the server log has the details", "internal_error"))
