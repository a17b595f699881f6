"""A STAND-IN for Cohere's cloud API: a local HTTP server speaking its v2 rerank and chat JSON.

Cohere's real service cannot be reached from here (and tests must not send data out), so this
answers `POST /v2/rerank` and `POST /v2/chat` in the shapes the official `cohere` SDK parses, with
made-up but deterministic results, and records every request so a test can see exactly what
arrived. It checks nothing about models; it is not Cohere.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ReceivedRequest:
    path: str
    authorization: str
    body: dict[str, Any]


@dataclass
class CohereStandIn:
    """Start with `with CohereStandIn() as standin:`; point the SDK at `standin.base_url`."""

    requests: list[ReceivedRequest] = field(default_factory=list)
    # Set to answer every request with this HTTP status, as an outage would.
    fail_with: int | None = None
    _server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the stand-in is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> CohereStandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                standin.requests.append(
                    ReceivedRequest(self.path, self.headers.get("authorization", ""), body)
                )
                answer = standin.answer(self.path, body)
                status = standin.fail_with or (200 if answer is not None else 404)
                if status != 200:
                    answer = {"message": f"stand-in answered {status} for {self.path}"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if path == "/v2/rerank":
            return _rerank(body)
        if path == "/v2/chat":
            return _chat(body)
        return None


def _rerank(body: dict[str, Any]) -> dict[str, Any]:
    # Word overlap with the query stands in for relevance: enough to order passages visibly.
    query = set(body["query"].lower().split())
    scores = [
        len(query & set(document.lower().split())) / max(1, len(query))
        for document in body["documents"]
    ]
    order = sorted(range(len(scores)), key=lambda index: scores[index], reverse=True)
    top_n = body.get("top_n") or len(order)
    return {
        "id": "standin-rerank",
        "results": [{"index": index, "relevance_score": scores[index]} for index in order[:top_n]],
        "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
    }


def _chat(body: dict[str, Any]) -> dict[str, Any]:
    prompt = body["messages"][-1]["content"]
    return {
        "id": "standin-chat",
        "finish_reason": "COMPLETE",
        "message": {
            "role": "assistant",
            "content": [{"type": "text", "text": f"stand-in answer ({len(prompt)} characters)"}],
        },
        "usage": {"billed_units": {"input_tokens": 1, "output_tokens": 1}},
    }
