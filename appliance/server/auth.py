"""Authenticates every request but health with an API key, and checks the caller's role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from appliance.auth.keys import key_id_of
from appliance.auth.principal import Principal, Role
from appliance.container import Components
from appliance.errors import AuthenticationFailed, PermissionDenied

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or X-API-Key: <API key>")


def authenticated(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> Principal:
    components: Components = request.app.state.components
    token = (bearer.credentials if bearer else None) or header or ""
    try:
        principal = components.keys.authenticate(token)
    except AuthenticationFailed as error:
        client = request.client.host if request.client else ""
        components.audit.append(
            "auth_failed",
            actor=key_id_of(token) or "(no valid key id)",
            groups=[],
            payload={
                "method": request.method,
                "path": request.url.path,
                "client": client,
                "reason": error.message,
            },
        )
        raise
    request.state.principal = principal
    return principal


def role_in(*roles: Role) -> Callable[[Principal], Principal]:
    allowed = ", ".join(roles)

    def check(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if principal.role not in roles:
            raise PermissionDenied(
                f"this needs the role {allowed}; your key's role is {principal.role}"
            )
        return principal

    return check


# Readers ask and read; admins also manage documents, sources, jobs and keys; auditors read the
# audit log and nothing else (separation of duties: an admin cannot read or edit the log).
Reader = Annotated[Principal, Depends(role_in("reader", "admin"))]
Admin = Annotated[Principal, Depends(role_in("admin"))]
Auditor = Annotated[Principal, Depends(role_in("auditor"))]
