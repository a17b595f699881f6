"""Serves the page (plain HTML, JS and CSS; no build step) and tells it who is signed in.

Feedback on an answer is an audit record of kind `feedback`, so it is stored and audited at once
and an auditor finds it with the same search as every other record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from appliance.auth.principal import Principal
from appliance.container import Components
from appliance.server.auth import Reader, authenticated

STATIC = Path(__file__).parent / "static"

web_router = APIRouter(tags=["web"])


class Feedback(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    answer: str = Field(max_length=20000)
    chunk_ids: list[Annotated[str, Field(max_length=300)]] = Field(max_length=50)
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=2000)


@web_router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/ui/")


@web_router.get("/v1/me")
def me(principal: Annotated[Principal, Depends(authenticated)]) -> dict[str, Any]:
    """The caller's user, role and groups: the page shows what the role may use."""
    return {"user": principal.user, "role": principal.role, "groups": principal.audit_groups()}


@web_router.post("/v1/feedback", status_code=201)
def feedback(body: Feedback, request: Request, principal: Reader) -> dict[str, Any]:
    """A thumbs-up or -down on an answer, kept in the audit log with who gave it."""
    components: Components = request.app.state.components
    # Chunk ids are `doc_id:version:n`; naming the documents lets `audit search --doc` find it.
    retrieved = [
        {"chunk_id": chunk_id, "doc_id": chunk_id.rsplit(":", 2)[0]} for chunk_id in body.chunk_ids
    ]
    record = components.audit.append(
        "feedback",
        principal.user,
        principal.audit_groups(),
        {
            "rating": body.rating,
            "question": body.question,
            "answer": body.answer,
            "comment": body.comment,
            "retrieved": retrieved,
        },
    )
    return {"seq": record.seq, "rating": body.rating}


def install_web(app: FastAPI) -> None:
    app.include_router(web_router)
    app.mount("/ui", StaticFiles(directory=STATIC, html=True), name="ui")
