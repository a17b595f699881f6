"""Questions that arrive while the encoder is busy are embedded together in its next call.

The API answers each question on a thread of its own. When several arrive at once (users whose
answers ended together ask again), one encoder call for all of them costs about what two single
calls do (all-MiniLM on one core: 8 questions 8.7 ms together, 3.7 ms each alone), so the last
of them is not kept waiting behind the others one by one. An idle encoder takes a question at
once: nothing waits for a batch to fill.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Question:
    text: str
    vector: list[float] | None = None
    error: BaseException | None = None


class Coalescer:
    def __init__(self, embed: Callable[[list[str]], list[list[float]]]) -> None:
        self._embed = embed
        self._changed = threading.Condition()
        self._waiting: list[_Question] = []
        self._busy = False

    def __call__(self, text: str) -> list[float]:
        mine = _Question(text)
        with self._changed:
            self._waiting.append(mine)
            while mine.vector is None and mine.error is None:
                if self._busy:
                    self._changed.wait()
                    continue
                # The encoder is free: this thread embeds everything waiting, its own included.
                self._busy = True
                batch, self._waiting = self._waiting, []
                self._changed.release()
                try:
                    self._run(batch)
                finally:
                    self._changed.acquire()
                    self._busy = False
                    self._changed.notify_all()
        if mine.error is not None:
            raise mine.error
        assert mine.vector is not None
        return mine.vector

    def _run(self, batch: list[_Question]) -> None:
        try:
            vectors = self._embed([question.text for question in batch])
        except BaseException as error:  # each asker gets the failure in its own thread
            for question in batch:
                question.error = error
            return
        for question, vector in zip(batch, vectors, strict=True):
            question.vector = vector
