"""``/healthz`` (the process answers) and ``/readyz`` (it can answer customers: the database, the
knowledge bases' indexes and the language model are there), for load balancers and orchestrators.

Both are open (no key) and say only what an operator needs to fix, never a server path or URL.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select, text

from assistant.config import Settings
from assistant.database import session_scope
from assistant.database.models import KnowledgeBase

router = APIRouter(tags=["health"])


def _database(settings: Settings) -> str | None:
    try:
        with session_scope(settings) as session:
            session.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return f"not reachable ({type(error).__name__}); check HELPMATE_DATABASE_URL and the database server"
    return None


def _indexes(settings: Settings) -> tuple[str | None, int]:
    from assistant.retrieval.vector_index import DENSE_FILE, generation_dir

    with session_scope(settings) as session:
        rows = session.execute(select(KnowledgeBase.name, KnowledgeBase.index_generation)).all()
    if not rows:
        return "no knowledge base yet; ingest one (`helpmate ingest PATH --kb NAME`, or an ingestion job)", 0
    missing = [name for name, generation in rows
               if not generation or not (generation_dir(settings, name, generation) / DENSE_FILE).exists()]
    if missing:
        return f"no index for {', '.join(sorted(missing))}; ingest documents into it (`helpmate ingest`)", len(rows)
    return None, len(rows)


def _model(settings: Settings) -> str | None:
    if settings.llm_backend == "vllm":
        try:
            response = httpx.get(settings.vllm_base_url.rstrip("/") + "/models", timeout=3.0,
                                 headers={"Authorization": f"Bearer {settings.vllm_api_key}"})
        except httpx.HTTPError as error:
            return f"the model server is not reachable ({type(error).__name__}); start it with `helpmate serve-model`"
        if response.status_code != 200:
            return f"the model server answered HTTP {response.status_code}; check HELPMATE_VLLM_API_KEY and HELPMATE_VLLM_BASE_URL"
        return None
    from assistant.modelstore import ModelMissingError, require_llm

    try:
        require_llm(settings)
    except ModelMissingError:
        return "the language model is not prepared; run `helpmate models prepare`"
    return None


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Database, indexes and model reachable", responses={503: {"description": "not ready"}})
def readyz(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    database = _database(settings)
    checks: dict[str, Any] = {"database": database or "ok"}
    if database is None:
        index, count = _indexes(settings)
        checks["index"] = index or f"ok ({count} knowledge base{'s' if count != 1 else ''})"
    else:
        checks["index"] = "not checked: no database"
    model = _model(settings)
    checks["model"] = model or f"ok ({settings.llm_backend})"
    ready = all(value.startswith("ok") for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503)
