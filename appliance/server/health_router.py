"""GET /healthz: the state of each dependency; 503 when any of them is down."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from appliance.components.llm.openai_like import served_models
from appliance.container import Components
from appliance.errors import ApplianceError
from appliance.settings.settings import LLMSettings

health_router = APIRouter(tags=["health"])


def _vector_store(components: Components) -> dict[str, Any]:
    try:
        return {"ok": True, "chunks": components.chunk_store.count()}
    except Exception as error:  # any failure here is reported, not raised
        return {"ok": False, "detail": f"{type(error).__name__}: {error}"}


def _server(settings: LLMSettings) -> dict[str, Any]:
    try:
        models = served_models(settings)
    except ApplianceError as error:
        return {"ok": False, "url": settings.base_url, "detail": error.message}
    if settings.model not in models:
        detail = f"serves {models}, not the configured model {settings.model!r}"
        return {"ok": False, "url": settings.base_url, "detail": detail}
    return {"ok": True, "url": settings.base_url, "model": settings.model}


def _inference(components: Components) -> dict[str, Any]:
    """The inference server; with several (llm.base_urls), ok while any one serves the model,
    each listed under `servers`."""
    settings = components.settings.llm
    urls = settings.urls
    if len(urls) == 1:
        return _server(settings)
    servers = [_server(settings.model_copy(update={"base_url": url})) for url in urls]
    serving = [server for server in servers if server["ok"]]
    summary = {"ok": bool(serving), "url": serving[0]["url"] if serving else settings.base_url}
    if serving:
        summary["model"] = settings.model
    else:
        summary["detail"] = "no inference server serves the model"
    return {**summary, "servers": servers}


@health_router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    components: Components = request.app.state.components
    checks = {"vector_store": _vector_store(components), "inference": _inference(components)}
    healthy = all(check["ok"] for check in checks.values())
    return JSONResponse(
        status_code=200 if healthy else 503,
        content={"status": "ok" if healthy else "degraded", "dependencies": checks},
    )
