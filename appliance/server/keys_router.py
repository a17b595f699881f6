"""API keys over HTTP, for admins: create (the secret is returned once), list, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from appliance.auth.principal import Role
from appliance.container import Components
from appliance.errors import PermissionDenied
from appliance.server.auth import Admin

keys_router = APIRouter(tags=["keys"])


class KeyBody(BaseModel):
    user: str = Field(min_length=1, max_length=200)
    role: Role = "reader"
    groups: list[str] = Field(default_factory=lambda: ["everyone"], max_length=100)


@keys_router.post("/v1/keys", status_code=201)
def create_key(body: KeyBody, request: Request, principal: Admin) -> dict[str, Any]:
    """A reader or admin key. Auditor keys are made only on the host (`appliance keys create
    --role auditor`): an admin who could mint one could read every user's questions."""
    if body.role == "auditor":
        raise PermissionDenied(
            "auditor keys are not made over the API: an admin could otherwise read every "
            "user's questions and answers; create one on the host with "
            "`appliance keys create --role auditor`"
        )
    components: Components = request.app.state.components
    key, token = components.keys.create(body.user, body.role, body.groups, principal.user)
    components.audit.append("key_created", principal.user, principal.audit_groups(), key.to_dict())
    return {**key.to_dict(), "token": token}


@keys_router.get("/v1/keys")
def list_keys(request: Request, principal: Admin) -> list[dict[str, Any]]:
    return [key.to_dict() for key in request.app.state.components.keys.list()]


@keys_router.delete("/v1/keys/{key_id}")
def revoke_key(key_id: str, request: Request, principal: Admin) -> dict[str, Any]:
    components: Components = request.app.state.components
    key = components.keys.revoke(key_id)
    components.audit.append("key_revoked", principal.user, principal.audit_groups(), key.to_dict())
    return key.to_dict()
