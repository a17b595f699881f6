"""Answers that hold, on the real vLLM (SmolLM2-135M) over the sample corpus: the default install
quotes the documents; a generating install flags or replaces what no source contains, and the
audit record says so."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from appliance.answering.claims import FLAG, Evidence, shown_unflagged
from appliance.container import Components
from tests.conftest import CORPUS, ROOT, api_client
from tests.e2e.conftest import Inference

pytestmark = pytest.mark.e2e

APPLIANCE = str(ROOT / ".venv" / "bin" / "appliance")
GOLD = [json.loads(line) for line in (ROOT / "eval" / "samples.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def indexed(inference: Inference, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("answers-hold") / "data"
    result = subprocess.run(
        [APPLIANCE, "ingest", str(CORPUS), "--json"],
        capture_output=True,
        text=True,
        env=inference.cli_env(data),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return data


def _chat_requests(inference: Inference) -> int:
    return inference.log.read_text(errors="replace").count("POST /v1/chat/completions")


def test_the_default_install_quotes_the_documents_without_asking_the_model(
    inference: Inference, indexed: Path
) -> None:
    env = {**inference.cli_env(indexed), "APPLIANCE__ANSWERING__MODE": "auto"}
    before = _chat_requests(inference)
    result = subprocess.run(
        [APPLIANCE, "ask", "What telephone extension is the incident bridge on?", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)
    # auto: the served SmolLM2 has 0.135 B parameters, under answering.generate_min_parameters_b.
    assert answer["mode"] == "extract" and answer["model"] == "extractive"
    assert "4471" in answer["answer"] and "[" in answer["answer"]
    assert _chat_requests(inference) == before


def _ask_all(components: Components) -> list[dict]:
    client = api_client(components.settings, components, role="reader")
    bodies = []
    for item in GOLD:
        response = client.post("/v1/query", json={"question": item["question"]})
        assert response.status_code == 200, response.text
        bodies.append(response.json())
    return bodies


def _components(inference: Inference, data: Path, action: str) -> Components:
    settings = inference.settings(data).model_copy(deep=True)
    settings.answering.mode = "generate"
    settings.answering.unsupported = action  # type: ignore[assignment]
    settings.llm.max_tokens = 96
    return Components(settings)


def test_flag_marks_every_unsupported_claim_in_the_answer_and_the_audit_record(
    inference: Inference, indexed: Path
) -> None:
    components = _components(inference, indexed, "flag")
    bodies = _ask_all(components)
    records = components.audit.records(kind="query")[-len(bodies) :]
    flagged = 0
    for body, record in zip(bodies, records, strict=True):
        passages = [citation["text"] for citation in body["citations"]]
        # Checked again on the text a reader gets: nothing unsupported is left unmarked.
        assert shown_unflagged(body["answer"], Evidence(passages, body["question"])) == []
        for claim in body["unsupported_claims"]:
            assert f"{claim['text']}{FLAG}" in body["answer"], body["answer"]
        assert record.payload["unsupported_claims"] == [
            claim["text"] for claim in body["unsupported_claims"]
        ]
        assert (
            record.payload["claim_check"] == "flag" and record.payload["answer_mode"] == "generate"
        )
        flagged += bool(body["unsupported_claims"])
    # SmolLM2 invents a number or two on these 8 questions (2 of 8 when this was written);
    # without one the test would not exercise the flag at all.
    assert flagged >= 1, [body["answer"] for body in bodies]


def test_replace_stops_the_model_and_quotes_the_documents_instead(
    inference: Inference, indexed: Path
) -> None:
    components = _components(inference, indexed, "replace")
    bodies = _ask_all(components)
    records = components.audit.records(kind="query")[-len(bodies) :]
    replaced = [body for body in bodies if body["replaced"]]
    assert replaced, [body["answer"] for body in bodies]
    for body, record in zip(bodies, records, strict=True):
        passages = [citation["text"] for citation in body["citations"]]
        assert shown_unflagged(body["answer"], Evidence(passages, body["question"])) == []
        assert record.payload["replaced"] is body["replaced"]
        if not body["replaced"]:
            assert body["unsupported_claims"] == []
            continue
        stopped_at = body["unsupported_claims"][0]["text"]
        assert body["notice"].startswith("The model's answer was stopped")
        assert f"“{stopped_at}”{FLAG}" in body["notice"] and body["notice"] in body["answer"]
        quotes = body["answer"].split(body["notice"], 1)[1].strip().splitlines()
        assert quotes and all(line.rstrip().endswith("]") for line in quotes), quotes
        assert record.payload["notice"] == body["notice"]

    # Streamed, the reader sees exactly that text: the model's words up to the claim, then why
    # and the quotes; the claim itself never arrives unmarked.
    client = api_client(components.settings, components, role="reader")
    question = replaced[0]["question"]
    with client.stream("POST", "/v1/query", json={"question": question, "stream": True}) as reply:
        blocks = reply.read().decode().strip().split("\n\n")
    events = [
        (dict(line.split(": ", 1) for line in block.splitlines())) for block in blocks if block
    ]
    deltas = "".join(json.loads(e["data"])["text"] for e in events if e["event"] == "delta")
    done = json.loads(events[-1]["data"])
    assert events[-1]["event"] == "done" and done["replaced"] is True
    assert deltas.strip() == done["answer"]


def test_generated_tokens_count_against_a_keys_day(inference: Inference, indexed: Path) -> None:
    """limits.tokens_per_day on the real model: the first answer's tokens are counted (the
    response and the audit record say how many) and use up the day, so the next generating
    request is refused while a search, which generates nothing, still goes through."""
    components = _components(inference, indexed, "flag")
    components.settings.limits.per_key.tokens_per_day = 5
    client = api_client(components.settings, components, role="reader")
    question = GOLD[0]["question"]
    first = client.post("/v1/query", json={"question": question})
    assert first.status_code == 200, first.text
    assert first.json()["generated_tokens"] >= 5
    record = components.audit.records(kind="query")[-1]
    assert record.payload["generated_tokens"] == first.json()["generated_tokens"]
    again = client.post("/v1/query", json={"question": question})
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0
    assert "generated tokens a day" in again.json()["message"]
    assert client.post("/v1/search", json={"query": question}).status_code == 200
