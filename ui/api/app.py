"""The API's app factory: FastAPI with its routes, the OpenAI-shaped errors, CORS for the chat widget,
``/widget.js``, and the per-process parts every request shares (the agent, the turn and job pools).

`helpmate api` runs ``from_environment`` under uvicorn (one call per worker process); tests call
``create_app`` with their settings and, to share models already loaded, their agent.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse

from assistant.config import Settings, get_settings
from assistant.webhooks import Deliverer
from ui.api import chat, conversations, errors, health, jobs, operators, webhooks
from ui.api.conversations import SECRET_HEADER
from ui.api.jobs import JobRunner
from ui.api.options import ApiOptions
from ui.api.turns import TurnRunner

log = logging.getLogger("helpmate.api")
WIDGET = Path(__file__).resolve().parent / "static" / "widget.js"
DESCRIPTION = """Helpmate's support agent over HTTP. Send an API key as `Authorization: Bearer hm_...`
(`helpmate keys create --role customer|operator|admin [--kb NAME]`). `POST /v1/chat/completions` speaks
OpenAI's schema (model `helpmate/<knowledge base>`); Helpmate's own fields are under `helpmate`. Errors
have OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`."""


def create_app(settings: Settings | None = None, options: ApiOptions | None = None, agent: Any = None,
               warm: bool = False) -> FastAPI:
    """The app. ``agent`` (a ``SupportAgent``) is built on the first chat turn unless given; ``warm``
    builds it right after start-up, so the first customer does not wait for the models."""
    settings = settings or get_settings()
    options = options or ApiOptions()

    def make_agent() -> Any:
        from assistant.agent import SupportAgent

        return agent if agent is not None else SupportAgent(settings)

    turns = TurnRunner(make_agent, options.turn_threads)
    job_runner = JobRunner(settings, options)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            threading.Thread(target=_warm, args=(turns,), name="helpmate-warm", daemon=True).start()
        # Webhook deliveries are queued by whatever process stored the event (chat, dashboard, import); this one sends them.
        sender = Deliverer(settings, options.webhook_interval_s) if options.webhook_interval_s else None
        if sender:
            sender.start()
        yield
        if sender:
            sender.stop()
        turns.close()
        job_runner.close()

    # The docs page's scripts are served from this package, not a CDN: it works behind a firewall too.
    app = FastAPIOffline(title="Helpmate API", version="1", description=DESCRIPTION, lifespan=lifespan, redoc_url=None)
    app.state.settings, app.state.options, app.state.turns, app.state.jobs = settings, options, turns, job_runner
    errors.install(app)
    # The widget runs on the company's own site, another origin; requests carry a bearer key, never cookies.
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_credentials=False,
                       allow_methods=["GET", "POST", "PATCH", "OPTIONS"],
                       allow_headers=["Authorization", "Content-Type", SECRET_HEADER], expose_headers=["Retry-After"])
    for module in (chat, conversations, operators, jobs, webhooks, health):
        app.include_router(module.router)

    @app.get("/widget.js", include_in_schema=False)
    def widget() -> FileResponse:
        return FileResponse(WIDGET, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "public, max-age=300"})

    @app.get("/", include_in_schema=False)
    def root() -> dict[str, str]:
        return {"name": "Helpmate API", "docs": "/docs", "openapi": "/openapi.json", "health": "/healthz", "ready": "/readyz"}

    return app


def _warm(turns: TurnRunner) -> None:
    try:
        turns.agent  # noqa: B018 - loads the embedding, sentiment and routing models
    except Exception:  # noqa: BLE001 - the first turn reports it again, with what to do
        log.exception("could not load the support agent at start-up")


def from_environment() -> FastAPI:
    """The factory `helpmate api` gives uvicorn: settings from HELPMATE_*, options from HELPMATE_API_*."""
    return create_app(get_settings(), ApiOptions(), warm=True)
