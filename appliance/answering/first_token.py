"""Give up on a model that has not started answering within a budget, and stop its generation."""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterator

from appliance.errors import InferenceTooSlow

_END = object()


def first_token_within(deltas: Iterator[str], budget_s: float, where: str) -> Iterator[str]:
    """`deltas`, or InferenceTooSlow when the first one takes longer than `budget_s` seconds.

    The stream is read in a thread so the wait can time out; once the asker has been answered
    without it, the thread closes the stream, which closes the HTTP response, and vLLM aborts a
    request whose client went away (so an overloaded server is not kept busy for nobody).
    """
    handoff: queue.Queue[object] = queue.Queue()
    abandoned = threading.Event()

    def pump() -> None:
        try:
            for delta in deltas:
                if abandoned.is_set():
                    break
                handoff.put(delta)
        except BaseException as error:  # handed to the reader, who raises it in its own thread
            handoff.put(error)
        finally:
            if isinstance(deltas, Generator):
                deltas.close()
            handoff.put(_END)

    # The caller's context goes along: the request id (sent to vLLM as X-Request-Id) and the
    # acting principal (named in the audit record of a refused connection) live in it.
    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(pump,), name="first-token", daemon=True).start()
    try:
        first = handoff.get(timeout=budget_s)
    except queue.Empty:
        abandoned.set()
        raise InferenceTooSlow(
            f"the inference service at {where} did not start answering within {budget_s:g} s "
            "(answering.first_token_budget_s)"
        ) from None
    item: object = first
    try:
        while item is not _END:
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, str)
            text = item
            # Tokens that arrived while the reader was busy go out as one piece: under load that
            # saves a thread hop, a server-sent event and a parse per token, and none is later.
            item = _waiting(handoff)
            while isinstance(item, str):
                text += item
                item = _waiting(handoff)
            yield text
            if item is None:
                item = handoff.get()
    finally:
        abandoned.set()  # the reader stopped early (a client went away): stop generating


def _waiting(handoff: queue.Queue[object]) -> object | None:
    try:
        return handoff.get_nowait()
    except queue.Empty:
        return None
