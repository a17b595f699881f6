"""GET /metrics: Prometheus text format, unauthenticated like /healthz (counts and timings only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from appliance.observability.metrics import render

metrics_router = APIRouter(tags=["health"])


# Out of the OpenAPI schema: it is for Prometheus, not API clients. Its labels are fixed words
# (stage, state, mode), never a user, a question or a file name, so it needs no key.
@metrics_router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    from ingest.celery_app import QUEUE

    return Response(render(request.app.state.components, QUEUE), media_type=CONTENT_TYPE_LATEST)
