"""Every read of passage text leaves an audit record before its first byte is sent.

A JSON answer's `query` record is written before the response goes out. A streamed answer sends
its passages in the first event, so its opening (who, the question, the chunks retrieved) is
recorded before that event, its `query` record when it ends, and a `query_aborted` record, with
the text sent so far, when the reader leaves first or it fails. Searches, a document's chunks and
its file are each one `read` record written before the response.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from appliance.answering.answer_service import AnswerStream
from appliance.answering.query_audit import retrieved
from appliance.auth.principal import Principal
from appliance.container import Components
from appliance.observability.logs import request_id


def record_read(
    components: Components, principal: Principal, kind: str, payload: dict[str, Any]
) -> None:
    payload = {**payload, "request_id": request_id.get()}
    components.audit.append(kind, principal.user, principal.audit_groups(), payload)


def audited_stream(
    events: Iterator[str],
    stream: AnswerStream,
    components: Components,
    principal: Principal,
    collections: list[str] | None,
    surface: str,
) -> Iterator[str]:
    """`events` (the response body of a streamed answer), its opening recorded now, before
    the response exists, and its end recorded if it is left unfinished."""
    record_read(
        components,
        principal,
        "query_opened",
        {
            "question": stream.question,
            "collections": collections,
            "surface": surface,
            "retrieved": retrieved(stream.hits),
        },
    )
    return _closed_on_record(events, stream, components, principal)


def _closed_on_record(
    events: Iterator[str], stream: AnswerStream, components: Components, principal: Principal
) -> Iterator[str]:
    reason = "the answer failed"
    try:
        yield from events
    except GeneratorExit:  # the server closes the body when the reader disconnects
        reason = "the reader disconnected"
        raise
    finally:
        if stream.answer is None:
            components.usage.spent(principal, stream.generated_tokens)
            record_read(
                components,
                principal,
                "query_aborted",
                {"question": stream.question, "reason": reason, "sent": "".join(stream.shown)},
            )
