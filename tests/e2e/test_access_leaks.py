"""The generating paths, on a real vLLM: an `eng` reader's answers never carry the HR document.

/v1/query and the OpenAI-compatible endpoint (through the official `openai` SDK, streaming and
not) are asked the HR question by both readers; only the HR reader's responses may hold it.
"""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from appliance.container import Components
from appliance.server.app import create_app
from tests.access import (
    HR_MARKER,
    bearer,
    create_keys,
    ingest_departments,
    with_department_access,
    write_corpus,
)
from tests.e2e.conftest import Inference

pytestmark = pytest.mark.e2e
HR_QUESTION = "What is the confidential salary band code for level 7 engineers?"


def _sdk(client: TestClient, token: str) -> openai.OpenAI:
    # TestClient is an httpx.Client: the SDK talks to the app in-process, over real HTTP semantics.
    return openai.OpenAI(base_url="http://testserver/v1", api_key=token, http_client=client)


def test_answers_and_sources_respect_groups_on_every_generating_path(
    inference: Inference, tmp_path: Path, embedder
) -> None:
    hr, eng = write_corpus(tmp_path / "docs")
    settings = with_department_access(inference.settings(tmp_path / "data"), hr, eng)
    components = Components(settings)
    components.embedder = embedder
    ingest_departments(components, hr, eng)
    keys = create_keys(components)
    client = TestClient(create_app(settings, components))

    responses: dict[str, dict[str, str]] = {"eng": {}, "hr": {}}
    for who, token in (("eng", keys.eng_reader), ("hr", keys.hr_reader)):
        query = client.post("/v1/query", headers=bearer(token), json={"question": HR_QUESTION})
        assert query.status_code == 200
        responses[who]["/v1/query"] = query.text
        sdk = _sdk(client, token)
        completion = sdk.chat.completions.create(
            model="appliance-rag", messages=[{"role": "user", "content": HR_QUESTION}]
        )
        responses[who]["chat.completions"] = completion.model_dump_json()
        streamed = sdk.chat.completions.create(
            model="appliance-rag",
            messages=[{"role": "user", "content": HR_QUESTION}],
            stream=True,
        )
        responses[who]["chat.completions stream"] = "".join(
            event.model_dump_json() for event in streamed
        )
        assert [m.id for m in sdk.models.list().data] == ["appliance-rag"]

    for path, body in responses["eng"].items():
        assert HR_MARKER not in body, path
    for path, body in responses["hr"].items():
        assert HR_MARKER in body, path  # its source text is returned to the HR reader

    queries = components.audit.records(kind="query")
    assert len(queries) == 6
    eng_ids = {r.doc_id for r in _catalog(components) if r.collection == "eng"}
    for record in queries:
        retrieved = {item["doc_id"] for item in record.payload["retrieved"]}
        assert retrieved <= eng_ids if record.actor == "alice" else retrieved.isdisjoint(eng_ids)
        assert record.payload["model_manifest_sha256"].isalnum()
        assert record.payload["left_building"] is False


def _catalog(components: Components):
    from ingest.catalog import Catalog

    return Catalog.for_settings(components.settings).list()
