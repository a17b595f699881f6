"""Extractive answers over the sample corpus, through the API, with no language model at all
(the inference URL is dead: an answer that needed it would carry a notice)."""

from __future__ import annotations

import json
import re

import pytest

from appliance.container import Components
from ingest.catalog import Catalog
from ingest.service import IngestService
from tests.conftest import CORPUS, ROOT, api_client, free_port, settings_for

GOLD = [json.loads(line) for line in (ROOT / "eval" / "samples.jsonl").read_text().splitlines()]
_QUOTE = re.compile(r"^(?:(?P<label>[^\n]*?): )?(?P<sentence>.+?) \[(?P<number>\d+)\]$")


def extract_only_client(tmp_path_factory: pytest.TempPathFactory, embedder, name: str):
    """A reader's API client over the ingested sample corpus, answering by quotes alone."""
    data_dir = tmp_path_factory.mktemp(name) / "data"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = settings_for(
        data_dir, APPLIANCE__ANSWERING__MODE="extract", APPLIANCE_LLM_BASE_URL=dead
    )
    components = Components(settings)
    components.embedder = embedder
    IngestService(
        settings, embedder, components.chunk_store, Catalog.for_settings(settings)
    ).ingest(sorted(CORPUS.iterdir()))
    return api_client(settings, components, role="reader"), components


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, embedder):
    return extract_only_client(tmp_path_factory, embedder, "extract")


def _normal(text: str) -> str:
    return " ".join(text.split()).casefold()


def test_each_quote_is_a_sentence_of_the_passage_it_cites(client) -> None:
    api, _ = client
    for item in GOLD:
        body = api.post("/v1/query", json={"question": item["question"]}).json()
        assert body["mode"] == "extract" and body["model"] == "extractive"
        assert body["notice"] is None and not body["abstained"], body
        assert body["unsupported_claims"] == [] and body["claim_check"] is None
        passages = {citation["number"]: citation["text"] for citation in body["citations"]}
        lines = body["answer"].splitlines()
        assert 1 <= len(lines) <= 2, body["answer"]
        for line in lines:
            quote = _QUOTE.match(line)
            assert quote, line
            source = _normal(passages[int(quote["number"])])
            assert _normal(quote["sentence"]) in source
            assert quote["label"] is None or _normal(quote["label"]) in source
        cited = {citation["number"] for citation in body["citations"] if citation["cited"]}
        assert cited == {int(_QUOTE.match(line)["number"]) for line in lines}


def test_quotes_hold_the_expected_facts(client) -> None:
    api, _ = client
    held = [
        _normal(item["expected_answer"])
        in _normal(api.post("/v1/query", json={"question": item["question"]}).json()["answer"])
        for item in GOLD
    ]
    # Measured 8 of 8 when this was written; one miss is allowed so a harmless change in
    # tie-breaking does not fail the suite, more is a regression.
    assert sum(held) >= len(GOLD) - 1, held


def test_streaming_and_the_openai_endpoint_give_the_same_quotes(client) -> None:
    api, _ = client
    question = GOLD[1]["question"]
    plain = api.post("/v1/query", json={"question": question}).json()
    events = api.post("/v1/query", json={"question": question, "stream": True}).text
    deltas = [
        json.loads(line[6:])["text"]
        for block in events.split("\n\n")
        if block.startswith("event: delta")
        for line in block.splitlines()
        if line.startswith("data: ")
    ]
    assert "".join(deltas) == plain["answer"]
    chat = api.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": question}]}
    ).json()
    assert chat["choices"][0]["message"]["content"] == plain["answer"]
    assert chat["mode"] == "extract"


def test_the_audit_record_says_the_answer_was_quoted(client) -> None:
    api, components = client
    api.post("/v1/query", json={"question": GOLD[0]["question"]})
    record = components.audit.records(kind="query")[-1]
    assert record.payload["answer_mode"] == "extract"
    assert record.payload["model"] == "extractive"
    assert record.payload["model_manifest_sha256"] == ""
    assert record.payload["citations"]


@pytest.mark.parametrize(
    ("question", "statuses"),
    [
        ("", {422}),
        ("   ", {422}),
        ("word " * 10_000, {422}),
        ("𐀀𐀁𐀂 𐀃𐀄 𐀅𐀆𐀇?", {200}),  # Linear B: no word piece the tokenizer knows
        ("🦜🦜🦜", {200}),
    ],
)
def test_bad_questions_get_a_clear_answer_or_a_clear_4xx(client, question, statuses) -> None:
    api, _ = client
    for path, payload in (
        ("/v1/query", {"question": question}),
        ("/v1/search", {"query": question}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": question}]}),
    ):
        response = api.post(path, json=payload)
        assert response.status_code in statuses | {400}, (path, response.text)
        body = response.json()
        if response.status_code >= 400:
            message = body.get("message") or body.get("detail")
            assert message, body
        elif path == "/v1/query":
            assert body["answer"].strip(), body
