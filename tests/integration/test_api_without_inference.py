"""With the inference service down, a clear 503 (answering.when_inference_fails: error)."""

from __future__ import annotations

from pathlib import Path

from appliance.container import Components
from tests.conftest import CORPUS, api_client, free_port, settings_for


def test_dead_inference_gives_503_with_a_clear_message(tmp_path: Path, embedder) -> None:
    dead_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    settings = settings_for(
        tmp_path / "data",
        APPLIANCE_LLM_BASE_URL=dead_url,
        APPLIANCE__ANSWERING__WHEN_INFERENCE_FAILS="error",
    )
    components = Components(settings)
    components.embedder = embedder  # reuse the session's loaded model
    from ingest.catalog import Catalog
    from ingest.service import IngestService

    IngestService(
        settings, embedder, components.chunk_store, Catalog.for_settings(settings)
    ).ingest([CORPUS / "onboarding.md"])
    client = api_client(settings, components, role="reader", raise_server_exceptions=False)

    response = client.post("/v1/query", json={"question": "What is the build cache called?"})
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "InferenceUnavailable"
    assert dead_url in body["message"] and "appliance models serve" in body["message"]

    health = client.get("/healthz")
    assert health.status_code == 503
    dependencies = health.json()["dependencies"]
    assert dependencies["vector_store"]["ok"] is True
    assert dependencies["inference"]["ok"] is False


def test_empty_question_is_rejected(settings) -> None:
    client = api_client(settings, role="reader")
    assert client.post("/v1/query", json={"question": ""}).status_code == 422
