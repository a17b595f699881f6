"""The audit log for auditors: search records by user, time, kind and document; verify the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from appliance.container import Components
from appliance.server.auth import Auditor

audit_router = APIRouter(tags=["audit"])


@audit_router.get("/v1/audit/records")
def search_records(
    request: Request,
    principal: Auditor,
    user: str | None = None,
    kind: str | None = None,
    doc_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    components: Components = request.app.state.components
    records = components.audit.records(
        since=since, until=until, actor=user, kind=kind, doc_id=doc_id, limit=limit
    )
    return [record.to_dict() for record in records]


@audit_router.get("/v1/audit/verify")
def verify(request: Request, principal: Auditor) -> dict[str, Any]:
    """Checks every hash, signature and the signed head: edits, deletions, reordering, cuts."""
    report = request.app.state.components.audit.verify()
    return report.to_dict()
