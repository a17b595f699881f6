"""Failed authentication, counted per client address: a flood is refused early and audited in
a few records rather than one signed record (and one argon2 check) per request."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Window:
    started: float
    failures: int = 0


class FailedAuthLimiter:
    """At most `limit` failed attempts per client address per `window_s` seconds are checked;
    past that the address is refused (429) until its window ends, unless it presents a key
    this process has verified already."""

    def __init__(
        self,
        limit: int,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._max_clients = max_clients
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def _window(self, client: str, now: float) -> _Window:
        window = self._windows.get(client)
        if window is None or now - window.started >= self.window_s:
            if len(self._windows) >= self._max_clients:  # bounded memory under a spread flood
                self._windows = {
                    address: kept
                    for address, kept in self._windows.items()
                    if now - kept.started < self.window_s
                }
            window = self._windows[client] = _Window(now)
        return window

    def retry_after(self, client: str) -> int | None:
        """Seconds until `client` may try again, or None while it is under the limit."""
        with self._lock:
            now = self._clock()
            window = self._window(client, now)
            if window.failures < self.limit:
                return None
            return max(1, math.ceil(window.started + self.window_s - now))

    def failed(self, client: str) -> int:
        """Counts a failure; the number of failures of this window so far."""
        with self._lock:
            window = self._window(client, self._clock())
            window.failures += 1
            return window.failures


def worth_a_record(failures: int, limit: int) -> bool:
    """The first ten failures of a window each (a person mistyping a key), then the 100th,
    1000th ... and the one that reaches the limit: a flood from one address is a handful of
    records a minute, each saying how many so far, not one signed record per request."""
    return failures <= 10 or failures == limit or math.log10(failures).is_integer()
