"""The first-token budget: a slow stream is given up on, and its generation is stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from appliance.answering.first_token import first_token_within
from appliance.errors import InferenceTooSlow, InferenceUnavailable


def _slow(first_after_s: float, closed: threading.Event) -> Iterator[str]:
    try:
        time.sleep(first_after_s)
        yield "late"
        yield "more"
    finally:
        closed.set()


def test_a_stream_that_starts_in_time_is_passed_through_whole() -> None:
    closed = threading.Event()
    assert "".join(first_token_within(_slow(0.0, closed), 5.0, "http://x")) == "latemore"
    assert closed.wait(5)


def test_tokens_waiting_when_the_reader_comes_back_go_out_together() -> None:
    released = threading.Event()

    def burst() -> Iterator[str]:
        yield "first"
        released.wait(5)
        yield from ("a", "b", "c")
        time.sleep(0.3)  # the reader is waiting again: this one goes alone
        yield "d"

    reader = first_token_within(burst(), 5.0, "http://x")
    assert next(reader) == "first"
    released.set()
    time.sleep(0.2)  # the reader busy elsewhere while three tokens arrive
    assert list(reader) == ["abc", "d"]


def test_a_stream_slower_than_the_budget_raises_and_is_closed() -> None:
    closed = threading.Event()
    with pytest.raises(InferenceTooSlow, match=r"within 0\.2 s"):
        next(iter(first_token_within(_slow(0.6, closed), 0.2, "http://x")))
    # The pump thread stops reading (closing the HTTP response) once its first token arrives.
    assert closed.wait(5)


def test_an_error_of_the_stream_reaches_the_reader() -> None:
    def failing() -> Iterator[str]:
        yield "partial"
        raise InferenceUnavailable("gone")

    reader = first_token_within(failing(), 5.0, "http://x")
    assert next(reader) == "partial"
    with pytest.raises(InferenceUnavailable, match="gone"):
        next(reader)
