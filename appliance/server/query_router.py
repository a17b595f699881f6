"""POST /v1/query: a question in, an answer with numbered citations out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from appliance.container import Components

query_router = APIRouter(tags=["query"])


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    top_k: int | None = Field(default=None, ge=1, le=50)


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


class QueryResponse(BaseModel):
    question: str
    answer: str
    citations: list[CitationBody]
    model: str
    prompt_version: str
    seconds_to_first_token: float | None
    seconds_total: float


@query_router.post("/v1/query", response_model=QueryResponse)
def query(body: QueryRequest, request: Request) -> dict[str, Any]:
    components: Components = request.app.state.components
    return components.answers.ask(body.question, body.top_k).to_dict()
