"""Several inference servers serving the same model, as one LLM: least busy first, failover.

`llm.base_url` and `llm.base_urls` name them (one vLLM per GPU, or per GPU server). Each
answer goes to the server with the fewest answers in flight from this process (ties: the one
that has had fewest). A server that cannot be reached, or answers 5xx, before its first token
is marked down for `llm.failover_cooldown_s` and the answer goes to the next one, so a
question fails only when no server can take it. A server that dies after its first token ends
that answer early (the answer service then finishes it with quotes and a notice) and is marked
down the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import openai

# What says "this server is not there" rather than "this request is wrong".
_UNREACHABLE = (openai.APIConnectionError, openai.APITimeoutError, httpx.TransportError)


def _server_failed(error: Exception) -> bool:
    if isinstance(error, _UNREACHABLE):
        return True
    return isinstance(error, openai.APIStatusError) and error.status_code >= 500


@dataclass
class Backend:
    url: str
    llm: Any  # a llama-index LLM bound to `url`
    in_flight: int = 0
    served: int = 0
    down_until: float = 0.0

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "url": self.url,
            "in_flight": self.in_flight,
            "served": self.served,
            "down_for_s": round(max(0.0, self.down_until - now), 1),
        }


class PooledLLM:
    """`stream_chat` over the first server that takes the request; the rest is the first
    server's LLM (model name, window), which every server shares."""

    def __init__(
        self,
        backends: Sequence[Backend],
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert backends, "at least one inference server"
        self.backends = list(backends)
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()

    def _take(self, tried: list[Backend]) -> Backend | None:
        """The best server not yet tried, counted busy in the same step: questions that arrive
        together must not all see the same idle server. Up servers by load first, then the ones
        marked down (one may be back before its cooldown ends, and trying it beats failing)."""
        now = self._clock()
        with self._lock:
            left = [backend for backend in self.backends if backend not in tried]
            if not left:
                return None
            up = [backend for backend in left if backend.down_until <= now]
            down = [backend for backend in left if backend.down_until > now]
            up.sort(key=lambda backend: (backend.in_flight, backend.served))
            down.sort(key=lambda backend: backend.down_until)
            best = (up + down)[0]
            best.in_flight += 1
            return best

    def stream_chat(self, messages: Any, **kwargs: Any) -> Iterator[Any]:
        failure: Exception | None = None
        tried: list[Backend] = []
        while (backend := self._take(tried)) is not None:
            tried.append(backend)
            started = False
            try:
                for response in backend.llm.stream_chat(messages, **kwargs):
                    if not started:
                        started = True
                        with self._lock:
                            backend.served += 1
                            backend.down_until = 0.0
                    yield response
                return
            except Exception as error:
                if not _server_failed(error):
                    raise
                # Unreachable before or during the answer: the next question goes elsewhere.
                with self._lock:
                    backend.down_until = self._clock() + self._cooldown_s
                if started:
                    raise
                failure = error
            finally:
                with self._lock:
                    backend.in_flight -= 1
        assert failure is not None
        raise failure

    def state(self) -> list[dict[str, Any]]:
        now = self._clock()
        with self._lock:
            return [backend.to_dict(now) for backend in self.backends]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backends[0].llm, name)
