"""End to end on real parts: CLI and API over a real vLLM, real Chroma, real parsing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CORPUS, ROOT, api_client
from tests.e2e.conftest import Inference

pytestmark = pytest.mark.e2e

APPLIANCE = str(ROOT / ".venv" / "bin" / "appliance")
QUESTION = "What telephone extension is the incident bridge on?"


def run_cli(inference: Inference, data_dir: Path, *args: str) -> dict:
    result = subprocess.run(
        [APPLIANCE, *args, "--json"],
        capture_output=True,
        text=True,
        env=inference.cli_env(data_dir),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_cli_ingests_every_type_and_cites_the_one_file_with_the_answer(
    inference: Inference, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    data = tmp_path / "data"

    first = run_cli(inference, data, "ingest", str(corpus))
    assert first["indexed"] == 5 and first["failed"] == 0 and first["chunks"] > 5
    types = {Path(item["path"]).suffix for item in first["files"]}
    assert types == {".md", ".txt", ".html", ".pdf", ".docx"}

    answer = run_cli(inference, data, "ask", QUESTION)
    assert answer["answer"].strip()
    top = answer["citations"][0]
    assert Path(top["path"]).name == "incident-response.pdf"
    assert top["page"] == 2 and "4471" in top["text"]
    assert [c["score"] for c in answer["citations"]] == sorted(
        (c["score"] for c in answer["citations"]), reverse=True
    )
    assert answer["seconds_to_first_token"] is not None

    hits = run_cli(inference, data, "search", "hotel cap per night")["hits"]
    assert Path(hits[0]["path"]).name == "expense-policy.docx"
    assert {"path", "page", "score", "text"} <= set(hits[0])

    second = run_cli(inference, data, "ingest", str(corpus))
    assert second["unchanged"] == 5 and second["chunks"] == 0

    (corpus / "vpn-policy.txt").write_text("Remote access\n\nVPN sessions expire after 9 hours.\n")
    third = run_cli(inference, data, "ingest", str(corpus))
    assert third["indexed"] == 1 and third["unchanged"] == 4
    vpn_hits = run_cli(inference, data, "search", "VPN session expires after", "-k", "10")["hits"]
    vpn_texts = [h["text"] for h in vpn_hits if Path(h["path"]).name == "vpn-policy.txt"]
    assert vpn_texts and all("11 hours" not in text for text in vpn_texts)


def test_api_answers_with_citations_and_reports_health(
    inference: Inference, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    run_cli(inference, data, "ingest", str(CORPUS))
    client = api_client(inference.settings(data), role="reader")

    health = client.get("/healthz")
    assert health.status_code == 200, health.text
    assert health.json()["dependencies"]["inference"]["ok"] is True

    response = client.post("/v1/query", json={"question": "How long until a VPN session expires?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"].strip()
    assert Path(body["citations"][0]["path"]).name == "vpn-policy.txt"
    assert {"path", "page", "score", "text", "chunk_id"} <= set(body["citations"][0])
    assert body["notice"] is None and body["abstained"] is False
    for citation in body["citations"]:
        # The citation check ran on every source the model cited, and only on those.
        assert (citation["supported"] is not None) == citation["cited"]

    # The same question as server-sent events: the passages, the model's tokens, the whole answer.
    with client.stream(
        "POST",
        "/v1/query",
        json={"question": "How long until a VPN session expires?", "stream": True},
    ) as reply:
        assert reply.status_code == 200
        blocks = reply.read().decode().strip().split("\n\n")
    events = []
    for block in blocks:
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "done"
    assert names.count("delta") >= 2, "tokens arrive one by one, not as one block"
    done = events[-1][1]
    assert (
        "".join(data["text"] for name, data in events if name == "delta").strip() == done["answer"]
    )
    assert done["notice"] is None and done["seconds_to_first_token"] is not None
    records = client.app.state.components.audit.records(kind="query")
    assert records[-1].payload["answer"] == done["answer"]
