"""When the model cannot help, the asker still gets what the documents say: abstention, and
degradation to quotes of the passages (the extractive answer).

No vLLM here on purpose: a dead inference port proves abstention never calls the model, and a
socket that accepts connections but never answers stands in for an overloaded vLLM (a real one
cannot be made reliably slow on demand).
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.container import Components
from ingest.catalog import Catalog
from ingest.service import IngestService
from tests.conftest import CORPUS, api_client, free_port, settings_for

ON_TOPIC = "Where does the build cache live?"
OFF_TOPIC = "What is the airspeed velocity of an unladen swallow?"


@pytest.fixture
def silent_inference() -> Iterator[str]:
    """STAND-IN for an overloaded vLLM: it accepts connections and never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # never accepted: the kernel completes the handshakes, nothing answers
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        listener.close()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """The sample corpus, ingested once; each test works on its own copy."""
    data_dir = tmp_path_factory.mktemp("indexed") / "data"
    settings = settings_for(data_dir)
    components = Components(settings)
    IngestService(
        settings, embedder, components.chunk_store, Catalog.for_settings(settings)
    ).ingest(sorted(CORPUS.iterdir()))
    return data_dir


@pytest.fixture
def components_with(tmp_path: Path, indexed: Path, embedder):
    def build(llm_url: str, **overrides: str) -> Components:
        data_dir = tmp_path / "data"
        shutil.copytree(indexed, data_dir)
        components = Components(settings_for(data_dir, APPLIANCE_LLM_BASE_URL=llm_url, **overrides))
        components.embedder = embedder  # the session's loaded model
        return components

    return build


def _dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there


def test_dead_inference_still_answers_with_quotes_and_a_notice(components_with) -> None:
    dead = _dead_url()
    components = components_with(dead)
    client = api_client(components.settings, components, role="reader")

    response = client.post("/v1/query", json={"question": ON_TOPIC})

    assert response.status_code == 200
    body = response.json()
    assert dead in body["notice"] and "not answering" in body["notice"]
    assert body["abstained"] is False
    # Readers that only show the text (chat front-ends) see the notice and the quotes too.
    assert body["answer"].startswith(body["notice"])
    quotes = body["answer"][len(body["notice"]) :].strip().splitlines()
    assert quotes, body["answer"]
    cited = [citation for citation in body["citations"] if citation["cited"]]
    assert cited, "each quote cites the passage it comes from"
    for line in quotes:
        number = int(line.rsplit("[", 1)[1].rstrip("]"))
        sentence = line.rsplit(" [", 1)[0].split(": ")[-1]
        passage = " ".join(body["citations"][number - 1]["text"].split())
        assert " ".join(sentence.split()) in passage, (sentence, passage)
    assert "kestrel" in body["answer"]  # the sample corpus names the build cache server
    record = components.audit.records(kind="query")[-1]
    assert record.payload["notice"] == body["notice"]
    assert record.payload["abstained"] is False


def test_dead_inference_is_a_503_when_settings_ask_for_errors(components_with) -> None:
    dead = _dead_url()
    components = components_with(dead, APPLIANCE__ANSWERING__WHEN_INFERENCE_FAILS="error")
    client = api_client(
        components.settings, components, role="reader", raise_server_exceptions=False
    )

    response = client.post("/v1/query", json={"question": ON_TOPIC})

    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "InferenceUnavailable"
    assert dead in body["message"] and "appliance models serve" in body["message"]


def test_an_off_topic_question_abstains_without_asking_the_model(components_with) -> None:
    # The inference service is dead: had the model been asked, a notice would say so.
    components = components_with(_dead_url())
    client = api_client(components.settings, components, role="reader")

    body = client.post("/v1/query", json={"question": OFF_TOPIC}).json()

    assert body["abstained"] is True
    assert body["notice"] is None
    assert body["answer"].startswith("The documents do not answer this question")
    threshold = components.settings.answering.abstain_below
    assert all(citation["score"] < threshold for citation in body["citations"])
    assert len(body["citations"]) == components.settings.retrieval.top_k  # the nearest, anyway
    record = components.audit.records(kind="query")[-1]
    assert record.payload["abstained"] is True
    assert record.payload["question"] == OFF_TOPIC


def test_an_on_topic_question_clears_the_abstention_threshold(components_with) -> None:
    components = components_with(_dead_url())
    client = api_client(components.settings, components, role="reader")
    body = client.post("/v1/query", json={"question": ON_TOPIC}).json()
    assert body["abstained"] is False
    assert body["citations"][0]["score"] >= components.settings.answering.abstain_below


def test_a_model_slower_than_the_budget_gives_the_passages(
    components_with, silent_inference
) -> None:
    components = components_with(
        silent_inference,
        APPLIANCE__ANSWERING__FIRST_TOKEN_BUDGET_S="1",
    )
    client = api_client(components.settings, components, role="reader")

    body = client.post("/v1/query", json={"question": ON_TOPIC}).json()

    assert "did not start answering within 1 s" in body["notice"]
    assert body["citations"] and body["abstained"] is False


def test_a_slow_model_is_a_504_when_settings_ask_for_errors(
    components_with, silent_inference
) -> None:
    components = components_with(
        silent_inference,
        APPLIANCE__ANSWERING__FIRST_TOKEN_BUDGET_S="1",
        APPLIANCE__ANSWERING__WHEN_INFERENCE_FAILS="error",
    )
    client = api_client(
        components.settings, components, role="reader", raise_server_exceptions=False
    )
    response = client.post("/v1/query", json={"question": ON_TOPIC})
    assert response.status_code == 504
    assert response.json()["error"] == "InferenceTooSlow"


def _events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_query_streams_server_sent_events_sources_then_text_then_done(components_with) -> None:
    components = components_with(_dead_url())
    client = api_client(components.settings, components, role="reader")

    with client.stream("POST", "/v1/query", json={"question": ON_TOPIC, "stream": True}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        events = _events(reply.read().decode())

    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done"
    assert set(names[1:-1]) == {"delta"}
    sources, done = events[0][1], events[-1][1]
    assert [c["chunk_id"] for c in sources["citations"]] == [
        c["chunk_id"] for c in done["citations"]
    ]
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    assert streamed.strip() == done["answer"]
    assert done["notice"]  # the model is dead here: the stream degrades like the JSON answer


def test_a_streamed_error_is_the_last_event(components_with) -> None:
    components = components_with(_dead_url(), APPLIANCE__ANSWERING__WHEN_INFERENCE_FAILS="error")
    client = api_client(components.settings, components, role="reader")
    with client.stream("POST", "/v1/query", json={"question": ON_TOPIC, "stream": True}) as reply:
        events = _events(reply.read().decode())
    assert [name for name, _ in events] == ["sources", "error"]
    assert events[-1][1]["error"] == "InferenceUnavailable"
