"""Questions asked at once share encoder calls, and each asker gets its own vector or error."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from appliance.components.embedding.coalesce import Coalescer


class SlowEncoder:
    """Stands in for the model's timing only: a vector that names its text, after a pause."""

    def __init__(self, fail_on: str = "", first_pause_s: float = 0.5) -> None:
        self.calls: list[list[str]] = []
        self._fail_on = fail_on
        self._first_pause_s = first_pause_s  # time for every asker to arrive

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        time.sleep(self._first_pause_s if len(self.calls) == 1 else 0.05)
        if self._fail_on in texts:
            raise RuntimeError("the encoder failed")
        return [[float(len(text)), float(ord(text[0]))] for text in texts]


def ask_together(coalescer: Coalescer, questions: list[str]) -> list[object]:
    start = threading.Barrier(len(questions))

    def ask(question: str) -> object:
        start.wait()
        try:
            return coalescer(question)
        except RuntimeError as error:
            return error

    with ThreadPoolExecutor(len(questions)) as pool:
        return list(pool.map(ask, questions))


def test_questions_arriving_while_the_encoder_is_busy_go_in_one_call() -> None:
    encoder = SlowEncoder()
    questions = [f"{letter} question {'x' * n}" for n, letter in enumerate("abcdefgh")]

    answers = ask_together(Coalescer(encoder), questions)

    assert answers == [[float(len(q)), float(ord(q[0]))] for q in questions]
    # The first asker finds the encoder free; the seven behind it share the next call.
    assert len(encoder.calls) == 2 and sorted(map(len, encoder.calls)) == [1, 7]
    assert sorted(q for call in encoder.calls for q in call) == sorted(questions)


def test_one_question_alone_is_embedded_at_once() -> None:
    encoder = SlowEncoder(first_pause_s=0.05)
    started = time.perf_counter()
    assert Coalescer(encoder)("alone") == [5.0, float(ord("a"))]
    assert encoder.calls == [["alone"]] and time.perf_counter() - started < 0.5


def test_a_failed_call_fails_its_askers_and_the_next_call_still_works() -> None:
    encoder = SlowEncoder(fail_on="bad")
    coalescer = Coalescer(encoder)
    with pytest.raises(RuntimeError, match="encoder failed"):
        coalescer("bad")
    assert coalescer("good") == [4.0, float(ord("g"))]
