"""Authenticates every request but health with an API key, and checks the caller's role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from appliance.auth.failures import worth_a_record
from appliance.auth.keys import key_id_of
from appliance.auth.principal import Principal, Role
from appliance.auth.usage_limits import RateLimited
from appliance.container import Components
from appliance.errors import AuthenticationFailed, PermissionDenied, TooManyRequests
from appliance.observability.metrics import RATE_LIMITED

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="or X-API-Key: <API key>")


def authenticated(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> Principal:
    components: Components = request.app.state.components
    token = (bearer.credentials if bearer else None) or header or ""
    client = request.client.host if request.client else ""
    failures = components.auth_failures
    wait = failures.retry_after(client)
    if wait is not None and not components.keys.verified_before(token):
        raise TooManyRequests(
            f"too many failed attempts to authenticate from {client or 'this address'}; "
            f"try again in {wait} s",
            wait,
        )
    try:
        principal = components.keys.authenticate(token)
    except AuthenticationFailed as error:
        count = failures.failed(client)
        if worth_a_record(count, failures.limit):
            # The actor is who is known to be asking: nobody. The key id is only claimed
            # (anyone can write `apk_<someone's id>.junk`), so it is kept apart.
            components.audit.append(
                "auth_failed",
                actor="unauthenticated",
                groups=[],
                payload={
                    "method": request.method,
                    "path": request.url.path,
                    "client": client,
                    "claimed_key_id": key_id_of(token),
                    "reason": error.message,
                    "failures_this_minute": count,
                    "refused_from_now": count >= failures.limit,
                },
            )
        raise
    request.state.principal = principal
    try:
        components.usage.admit(principal, request.url.path)
    except RateLimited as refused:
        exceeded = refused.exceeded
        RATE_LIMITED.labels(exceeded.scope, exceeded.limit).inc()
        if exceeded.first_in_window:
            components.audit.append(
                "rate_limited",
                principal.user,
                principal.audit_groups(),
                {
                    "key_id": principal.key_id,
                    "scope": exceeded.scope,
                    "name": exceeded.name,
                    "limit": exceeded.limit,
                    "allowed": exceeded.allowed,
                    "retry_after": exceeded.retry_after,
                    "path": request.url.path,
                },
            )
        raise
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
