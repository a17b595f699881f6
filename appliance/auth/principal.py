"""The principal behind a request: a user, one role, and the groups whose documents it may read."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["reader", "admin", "auditor"]
ROLES: tuple[Role, ...] = ("reader", "admin", "auditor")


@dataclass(frozen=True)
class Principal:
    user: str
    role: Role
    groups: frozenset[str] = field(default_factory=frozenset)
    key_id: str | None = None
    # The CLI on the host itself: whoever can run it can read the data folder anyway.
    all_groups: bool = False

    @classmethod
    def local(cls, user: str) -> Principal:
        return cls(user=f"local:{user}", role="admin", all_groups=True)

    def may_read(self, document_groups: Iterable[str]) -> bool:
        return self.all_groups or not self.groups.isdisjoint(document_groups)

    def audit_groups(self) -> list[str]:
        return ["*"] if self.all_groups else sorted(self.groups)


# Who the work on this thread is for, so records made deep down (an outbound call, a refused
# connection) name the user who caused them.
acting: ContextVar[Principal | None] = ContextVar("acting", default=None)
