"""Creates the FastAPI application and maps every user-facing error to one status code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from appliance.container import Components
from appliance.errors import ApplianceError
from appliance.observability.middleware import RequestIdMiddleware
from appliance.server.audit_router import audit_router
from appliance.server.documents_router import documents_router
from appliance.server.health_router import health_router
from appliance.server.keys_router import keys_router
from appliance.server.metrics_router import metrics_router
from appliance.server.openai_router import openai_router
from appliance.server.query_router import query_router
from appliance.settings import Settings
from appliance.web import install_web


async def _appliance_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApplianceError)
    retry_after = getattr(error, "retry_after", None)
    return JSONResponse(
        status_code=error.status_code,
        content={"error": type(error).__name__, "message": error.message},
        headers={"Retry-After": str(retry_after)} if retry_after else None,
    )


def create_app(settings: Settings, components: Components | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The answer pipeline is synchronous: a streaming answer holds a worker thread while it
        # waits for the model's next token. With anyio's default of 40 threads, 40 open streams
        # would queue every new request, health checks included, behind them.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.server.threads
        yield

    app = FastAPI(
        title="On-prem RAG appliance",
        description="Ask questions of internal documents; answers cite their sources.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.components = components = components or Components(settings)
    # The guard is armed by the process's entry point (`appliance serve`); what it refuses while
    # this app runs becomes an audit record naming the user whose request caused it.
    from appliance.egress import guard

    def record_refusal(destination: str, host: str, port: int) -> None:
        components.record_egress(
            {"refused": True, "destination": destination, "host": host, "port": port}
        )

    app.state.remove_egress_listener = guard.add_listener(record_refusal)
    app.add_exception_handler(ApplianceError, _appliance_error)
    app.include_router(query_router)
    app.include_router(health_router)
    app.include_router(documents_router)
    app.include_router(keys_router)
    app.include_router(openai_router)
    app.include_router(audit_router)
    app.include_router(metrics_router)
    app.add_middleware(RequestIdMiddleware)
    install_web(app)
    return app
