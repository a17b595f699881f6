"""POST /v1/query: a question in, an answer with numbered citations out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from appliance.container import Components
from appliance.server.auth import Reader

query_router = APIRouter(tags=["query"])


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    top_k: int | None = Field(default=None, ge=1, le=50)
    # Search only these collections (default: every collection the key's groups may read).
    collections: list[str] | None = Field(default=None, max_length=20)


class CitationBody(BaseModel):
    number: int
    cited: bool
    chunk_id: str
    doc_id: str
    version: str
    path: str
    page: int | None
    section: str | None
    score: float
    text: str
    collection: str


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


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
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
    return {
        "query": body.query,
        "hits": [{"number": n, "cited": False, **hit.to_dict()} for n, hit in enumerate(hits, 1)],
    }


@query_router.post("/v1/query", response_model=QueryResponse)
def query(body: QueryRequest, request: Request, principal: Reader) -> dict[str, Any]:
    components: Components = request.app.state.components
    answer = components.answers.ask(body.question, principal, body.top_k, body.collections)
    return answer.to_dict()
