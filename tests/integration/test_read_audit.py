"""Every read of passage text leaves an audit record written before the text is sent.

Security review, finding 3: `/v1/search` returned passages and was never audited, and a streamed
answer sent every passage in its first event but was recorded only when read to its end, so a
reader who left early left no record. Replayed over HTTP with a reader key; each assertion can
fail: the records name the very chunks the responses held.
"""

from __future__ import annotations

import json

import pytest

from appliance.auth.principal import Principal
from appliance.container import Components
from appliance.server.query_router import _events
from appliance.server.read_audit import audited_stream
from tests.integration.test_extractive_answers import extract_only_client

QUESTION = "How long until a VPN session expires?"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder):
    return extract_only_client(tmp_path_factory, embedder, "read-audit")


def _records(components: Components, kind: str) -> list:
    return [record for record in components.audit.records(kind=kind) if record.actor == "tester"]


def test_a_search_is_recorded_with_the_chunks_it_returned(served) -> None:
    api, components = served
    hits = api.post("/v1/search", json={"query": QUESTION}).json()["hits"]
    assert hits
    [record] = _records(components, "search")[-1:]
    assert record.payload["query"] == QUESTION
    assert [item["chunk_id"] for item in record.payload["retrieved"]] == [
        hit["chunk_id"] for hit in hits
    ]


def test_reading_a_documents_chunks_or_file_is_recorded(served) -> None:
    api, components = served
    doc = next(doc for doc in api.get("/v1/documents").json() if "vpn" in doc["path"])
    chunks = api.get(f"/v1/documents/{doc['doc_id']}/chunks").json()
    assert api.get(f"/v1/documents/{doc['doc_id']}/file").status_code == 200
    *_, chunk_read, file_read = _records(components, "read")
    assert chunk_read.payload["doc_id"] == file_read.payload["doc_id"] == doc["doc_id"]
    assert chunk_read.payload["chunk_ids"] == [chunk["chunk_id"] for chunk in chunks]
    assert file_read.payload["what"] == "file" and file_read.payload["sha256"]


def test_a_streamed_answer_is_recorded_when_it_opens_and_when_it_ends(served) -> None:
    api, components = served
    opened_before = len(_records(components, "query_opened"))
    with api.stream("POST", "/v1/query", json={"question": QUESTION, "stream": True}) as body:
        text = "".join(body.iter_text())
    events = [
        json.loads(block.split("data: ", 1)[1]) for block in text.strip().split("\n\n") if block
    ]
    sources = [citation["chunk_id"] for citation in events[0]["citations"]]
    opened = _records(components, "query_opened")
    assert len(opened) == opened_before + 1
    assert [item["chunk_id"] for item in opened[-1].payload["retrieved"]] == sources
    assert opened[-1].payload["surface"] == "sse"
    finished = _records(components, "query")[-1]
    assert finished.seq > opened[-1].seq and finished.payload["answer"] == events[-1]["answer"]


def test_a_reader_who_leaves_after_the_passages_leaves_a_record(served) -> None:
    """The body as the server iterates it: the record exists before the first event is made,
    and closing the body early (what the server does when the reader disconnects) records it."""
    _, components = served
    principal = Principal("leaver", "reader", frozenset({"everyone"}))
    stream = components.answers.stream(QUESTION, principal)
    body = audited_stream(_events(stream), stream, components, principal, None, "sse")
    [opened] = [r for r in components.audit.records(kind="query_opened") if r.actor == "leaver"]
    assert opened.payload["question"] == QUESTION and opened.payload["retrieved"]
    first = next(body)
    assert first.startswith("event: sources")
    body.close()
    [aborted] = [r for r in components.audit.records(kind="query_aborted") if r.actor == "leaver"]
    assert aborted.payload["reason"] == "the reader disconnected" and aborted.payload["sent"] == ""
    assert not [r for r in components.audit.records(kind="query") if r.actor == "leaver"]
