"""The pool over several inference servers, with stand-in servers (no vLLM): who is asked,
and what a failure before or after the first token does. tests/e2e/test_inference_failover.py
does it with two real vLLMs."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from appliance.components.llm.pool import Backend, PooledLLM


class StandIn:
    """A stand-in server's client: streams its name, or fails as told."""

    def __init__(self, name: str, fail: str | None = None) -> None:
        self.name, self.fail, self.asked = name, fail, 0

    def stream_chat(self, messages, **kwargs):
        self.asked += 1
        if self.fail == "refused":
            raise openai.APIConnectionError(request=httpx.Request("POST", "http://x"))
        yield self.name
        if self.fail == "midway":
            raise openai.APIConnectionError(request=httpx.Request("POST", "http://x"))
        yield "."


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_least_busy_server_answers_and_ties_take_turns() -> None:
    one, two = StandIn("one"), StandIn("two")
    pool = PooledLLM([Backend("u1", one), Backend("u2", two)], cooldown_s=10)
    held = pool.stream_chat([])
    assert next(held) == "one"  # one is busy with this answer now
    assert list(pool.stream_chat([])) == ["two", "."]
    assert list(held) == ["."]
    answered = [list(pool.stream_chat([])) for _ in range(4)]
    assert [words[0] for words in answered] == ["one", "two", "one", "two"]


def test_a_server_that_refuses_is_skipped_until_its_cooldown_ends() -> None:
    clock = Clock()
    dead, alive = StandIn("dead", fail="refused"), StandIn("alive")
    pool = PooledLLM([Backend("u1", dead), Backend("u2", alive)], cooldown_s=10, clock=clock)
    assert list(pool.stream_chat([])) == ["alive", "."]
    assert [state["down_for_s"] for state in pool.state()] == [10.0, 0.0]
    assert list(pool.stream_chat([])) == ["alive", "."] and dead.asked == 1
    clock.now += 11
    assert list(pool.stream_chat([])) == ["alive", "."] and dead.asked == 2


def test_all_down_raises_and_a_failure_after_the_first_token_is_not_retried() -> None:
    pool = PooledLLM(
        [Backend("u1", StandIn("a", fail="refused")), Backend("u2", StandIn("b", "refused"))], 10
    )
    with pytest.raises(openai.APIConnectionError):
        list(pool.stream_chat([]))
    other = StandIn("other")
    midway = PooledLLM([Backend("u1", StandIn("half", fail="midway")), Backend("u2", other)], 10)
    stream = midway.stream_chat([])
    assert next(stream) == "half"
    with pytest.raises(openai.APIConnectionError):
        next(stream)
    assert other.asked == 0  # the reader has seen "half": a second answer would not fit it
    # ... but the next question does not go to the server that broke off.
    assert [state["down_for_s"] for state in midway.state()] == [10.0, 0.0]
    assert next(midway.stream_chat([])) == "other"


def test_questions_that_arrive_together_spread_over_the_servers() -> None:
    """Eight answers start at once (each held open until all have started): each server takes
    four. Choosing a server and counting it busy were two steps once, and questions arriving
    together all went to the first server."""
    started = threading.Barrier(8, timeout=10)

    class Held(StandIn):
        def stream_chat(self, messages, **kwargs):
            self.asked += 1
            started.wait()
            yield self.name

    one, two = Held("one"), Held("two")
    pool = PooledLLM([Backend("u1", one), Backend("u2", two)], cooldown_s=10)
    with ThreadPoolExecutor(8) as threads:
        answers = list(threads.map(lambda _: list(pool.stream_chat([])), range(8)))
    assert sorted(words[0] for words in answers) == ["one"] * 4 + ["two"] * 4
    assert (one.asked, two.asked) == (4, 4)
