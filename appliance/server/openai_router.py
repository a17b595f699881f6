"""OpenAI-compatible chat completions answered with RAG, so the `openai` SDK and chat UIs work.

The last user message is the question; the answer cites numbered sources, which are returned in
an extra `sources` field (and, streaming, in the final chunk) beside the OpenAI shape.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from appliance.container import Components
from appliance.errors import ApplianceError, UploadRejected
from appliance.server.auth import Reader
from appliance.server.read_audit import audited_stream

openai_router = APIRouter(tags=["openai"])
RAG_MODEL = "appliance-rag"


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model: str = RAG_MODEL
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    # Accepted for compatibility; the appliance's settings decide generation.
    temperature: float | None = None
    max_tokens: int | None = None
    top_k: int | None = Field(default=None, ge=1, le=50)
    collections: list[str] | None = Field(default=None, max_length=20)


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
    return content or ""


def _question(body: ChatRequest) -> str:
    for message in reversed(body.messages):
        if message.role == "user" and _text(message.content).strip():
            # Checked (length) by the answer service, as every question is.
            return _text(message.content).strip()
    raise UploadRejected("the conversation has no user message to answer")


def _answer_fields(answer: dict[str, Any]) -> dict[str, Any]:
    """What the appliance adds to OpenAI's shape besides the sources (see POST /v1/query)."""
    fields = ("abstained", "notice", "mode", "unsupported_claims", "claim_check", "replaced")
    return {name: answer[name] for name in fields}


@openai_router.get("/v1/models")
def list_models(request: Request, principal: Reader) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": RAG_MODEL, "object": "model", "created": 0, "owned_by": "appliance"}],
    }


@openai_router.post("/v1/chat/completions", response_model=None)
def chat_completions(
    body: ChatRequest, request: Request, principal: Reader
) -> dict[str, Any] | StreamingResponse:
    components: Components = request.app.state.components
    question = _question(body)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    stream = components.answers.stream(question, principal, body.top_k, body.collections)
    if not body.stream:
        for _ in stream:
            pass
        assert stream.answer is not None
        answer = stream.answer.to_dict()
        return {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": RAG_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer["answer"]},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "sources": answer["citations"],
            **_answer_fields(answer),
        }

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": RAG_MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(payload)}\n\n"

    def events() -> Iterator[str]:
        yield chunk({"role": "assistant", "content": ""})
        try:
            for delta in stream:
                yield chunk({"content": delta})
        except ApplianceError as error:
            # Headers are sent already: the error becomes the stream's last event.
            yield f"data: {json.dumps({'error': {'message': error.message}})}\n\n"
            return
        assert stream.answer is not None
        answer = stream.answer.to_dict()
        yield chunk(
            {},
            "stop",
            sources=answer["citations"],
            **_answer_fields(answer),
        )
        yield "data: [DONE]\n\n"

    body_events = audited_stream(events(), stream, components, principal, body.collections, "chat")
    return StreamingResponse(body_events, media_type="text/event-stream")
