"""Requests per minute and generated tokens per day, per API key and per group.

Checked right after a key is authenticated, before any retrieval or generation, so a key over
its limit costs the others almost nothing. Windows are fixed (the current minute, the current
UTC day) and counted in this process: each API node of a cluster counts its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.auth.principal import Principal
from appliance.errors import TooManyRequests
from appliance.settings.settings import LimitsSettings, UsageLimit

_MINUTE = 60
_DAY = 86_400
# Paths whose answers the model generates: the ones tokens_per_day applies to.
GENERATING_PATHS = ("/v1/query", "/v1/chat/completions")


@dataclass(frozen=True)
class Exceeded:
    """A limit a request ran into, for the audit record and the metric."""

    scope: str  # "key" or "group"
    name: str  # the key id or the group
    limit: str  # "requests_per_minute" or "tokens_per_day"
    allowed: int
    retry_after: int
    first_in_window: bool  # audited once per window


class UsageLimiter:
    def __init__(self, settings: LimitsSettings, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        # (scope, name, limit) -> (window number, count); the count is requests or tokens.
        self._counts: dict[tuple[str, str, str], tuple[int, int]] = {}
        self._reported: set[tuple[str, str, str, int]] = set()

    def _scopes(self, principal: Principal) -> list[tuple[str, str, UsageLimit]]:
        assert principal.key_id is not None
        own = self._settings.keys.get(principal.key_id, self._settings.per_key)
        scopes = [("key", principal.key_id, own)]
        scopes += [
            ("group", group, self._settings.groups[group])
            for group in sorted(principal.groups)
            if group in self._settings.groups
        ]
        return scopes

    def _count(self, key: tuple[str, str, str], window: int) -> int:
        seen_window, count = self._counts.get(key, (window, 0))
        return count if seen_window == window else 0

    def admit(self, principal: Principal, path: str) -> None:
        """Counts the request; TooManyRequests (429, with Retry-After) past a limit."""
        if principal.key_id is None:  # the CLI on the host
            return
        now = self._clock()
        minute, day = int(now // _MINUTE), int(now // _DAY)
        generating = path in GENERATING_PATHS
        with self._lock:
            scopes = self._scopes(principal)
            for scope, name, limit in scopes:
                if limit.requests_per_minute is not None:
                    key = (scope, name, "requests_per_minute")
                    if self._count(key, minute) >= limit.requests_per_minute:
                        wait = math.ceil((minute + 1) * _MINUTE - now)
                        self._refuse(key, minute, limit.requests_per_minute, wait)
                if generating and limit.tokens_per_day is not None:
                    key = (scope, name, "tokens_per_day")
                    if self._count(key, day) >= limit.tokens_per_day:
                        wait = math.ceil((day + 1) * _DAY - now)
                        self._refuse(key, day, limit.tokens_per_day, wait)
            # Counted only once admitted by every scope: a refused request uses up nothing.
            for scope, name, limit in scopes:
                if limit.requests_per_minute is not None:
                    key = (scope, name, "requests_per_minute")
                    self._counts[key] = (minute, self._count(key, minute) + 1)

    def spent(self, principal: Principal, tokens: int) -> None:
        """Adds an answer's generated tokens to its key's and groups' day."""
        if principal.key_id is None or tokens <= 0:
            return
        day = int(self._clock() // _DAY)
        with self._lock:
            for scope, name, limit in self._scopes(principal):
                if limit.tokens_per_day is not None:
                    key = (scope, name, "tokens_per_day")
                    self._counts[key] = (day, self._count(key, day) + tokens)

    def _refuse(self, key: tuple[str, str, str], window: int, allowed: int, wait: int) -> None:
        scope, name, limit = key
        marker = (*key, window)
        first = marker not in self._reported
        if first:
            # Old windows' markers go: one per key and limit is all that is ever needed.
            self._reported = {seen for seen in self._reported if seen[:3] != key} | {marker}
        exceeded = Exceeded(scope, name, limit, allowed, max(1, wait), first)
        what = "this key" if scope == "key" else f"the group {name}"
        unit = "requests a minute" if limit == "requests_per_minute" else "generated tokens a day"
        raise RateLimited(
            f"{what} is over its limit of {allowed} {unit} (limits.*); "
            f"try again in {exceeded.retry_after} s",
            exceeded,
        )


class RateLimited(TooManyRequests):
    def __init__(self, message: str, exceeded: Exceeded) -> None:
        super().__init__(message, exceeded.retry_after)
        self.exceeded = exceeded
