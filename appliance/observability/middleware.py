"""ASGI middleware giving every HTTP request an id, returned as X-Request-ID and logged."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appliance.observability.logs import accepted_request_id, request_id

HEADER = "X-Request-ID"


class RequestIdMiddleware:
    """Plain ASGI rather than BaseHTTPMiddleware: the context variable it sets is then seen by
    the endpoint, its thread pool, a streamed body and uvicorn's access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        current = accepted_request_id(Headers(scope=scope).get(HEADER))
        token = request_id.set(current)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = current
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
