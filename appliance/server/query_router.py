"""POST /v1/query: a question in, an answer with numbered citations out (JSON or SSE)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StringConstraints

from appliance.answering.answer_service import MAX_QUESTION_CHARS, AnswerStream
from appliance.answering.query_audit import retrieved
from appliance.container import Components
from appliance.errors import ApplianceError
from appliance.server.auth import Reader
from appliance.server.read_audit import audited_stream, record_read

query_router = APIRouter(tags=["query"])


# Blank questions and pages of text are refused with a 422 that says which.
Question = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS)
]


class QueryRequest(BaseModel):
    question: Question
    top_k: int | None = Field(default=None, ge=1, le=50)
    # Search only these collections (default: every collection the key's groups may read).
    collections: list[str] | None = Field(default=None, max_length=20)
    # True: server-sent events `sources`, then `delta` (text) as it is generated, then `done`
    # (the whole QueryResponse, citations checked), or `error`.
    stream: bool = False


class CitationBody(BaseModel):
    number: int
    cited: bool
    # Whether the sentences citing this source share enough words with it (null: not cited).
    supported: bool | None
    overlap: float | None
    chunk_id: str
    doc_id: str
    version: str
    path: str
    page: int | None
    section: str | None
    score: float
    text: str
    collection: str


class ClaimBody(BaseModel):
    text: str
    kind: Literal["number", "identifier", "quote"]
    supported: bool


class QueryResponse(BaseModel):
    question: str
    answer: str
    citations: list[CitationBody]
    model: str
    prompt_version: str
    seconds_to_first_token: float | None
    seconds_total: float
    # True when the Cohere connector saw this question's passages (collection-scoped only).
    left_building: bool
    # True when no passage was close enough to answer from: the sources are the nearest ones.
    abstained: bool
    # Why the answer is (partly) quotes of the passages: the model was down or too slow, or it
    # stated something no passage contains; null otherwise.
    notice: str | None
    # generate: a language model wrote the answer; extract: quoted from the passages.
    mode: Literal["generate", "extract"]
    # The model's numbers, identifiers and quotes that no passage contains.
    unsupported_claims: list[ClaimBody]
    # What answering.unsupported did with them: flag, replace or off (null: nothing generated).
    claim_check: Literal["flag", "replace", "off"] | None
    # True when the model was stopped at an unsupported claim and quotes follow.
    replaced: bool
    # Tokens the model streamed for this answer (counted against limits.tokens_per_day).
    generated_tokens: int


class SearchRequest(BaseModel):
    query: Question
    top_k: int | None = Field(default=None, ge=1, le=50)
    collections: list[str] | None = Field(default=None, max_length=20)


class SearchResponse(BaseModel):
    query: str
    hits: list[CitationBody]


@query_router.post("/v1/search", response_model=SearchResponse)
def search(body: SearchRequest, request: Request, principal: Reader) -> dict[str, Any]:
    """The passages nearest the query among those the key may read, best first; no generation."""
    components: Components = request.app.state.components
    hits = components.answers.search(body.query, principal, body.top_k, body.collections)
    record_read(
        components,
        principal,
        "search",
        {"query": body.query, "collections": body.collections, "retrieved": retrieved(hits)},
    )
    return {
        "query": body.query,
        "hits": [
            {"number": n, "cited": False, "supported": None, "overlap": None, **hit.to_dict()}
            for n, hit in enumerate(hits, 1)
        ],
    }


_STREAMED = {
    200: {
        "description": "The answer as JSON, or with `stream: true` as server-sent events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@query_router.post("/v1/query", response_model=QueryResponse, responses=_STREAMED)
def query(body: QueryRequest, request: Request, principal: Reader) -> Any:
    components: Components = request.app.state.components
    stream = components.answers.stream(body.question, principal, body.top_k, body.collections)
    if body.stream:
        return StreamingResponse(
            audited_stream(_events(stream), stream, components, principal, body.collections, "sse"),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    for _ in stream:
        pass
    assert stream.answer is not None
    return stream.answer.to_dict()


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def _events(stream: AnswerStream) -> Iterator[str]:
    # The passages first, so a page can show them while the model is still thinking.
    yield _event(
        "sources",
        {
            "citations": [
                {"number": n, "cited": False, "supported": None, "overlap": None, **hit.to_dict()}
                for n, hit in enumerate(stream.hits, 1)
            ]
        },
    )
    try:
        for delta in stream:
            yield _event("delta", {"text": delta})
    except ApplianceError as error:
        # The headers went out with 200 already: the error is the stream's last event.
        yield _event("error", {"error": type(error).__name__, "message": error.message})
        return
    assert stream.answer is not None
    yield _event("done", stream.answer.to_dict())
