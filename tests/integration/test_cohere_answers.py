"""The Cohere connector inside the query path: only a question scoped to an allowed collection
reaches it, and the audit log says what left the building and for whom.

Cohere's cloud cannot be reached from here: `tests/fakes/cohere_standin.py` is a STAND-IN that
speaks its v2 HTTP API on loopback. The local inference service is left dead on purpose, so a
question that stays in the building visibly never reached the stand-in (it answers 503).
"""

from __future__ import annotations

from pathlib import Path

from appliance.container import Components
from appliance.server.app import create_app
from tests.access import ENG_MARKER, bearer, ingest_departments, write_corpus
from tests.conftest import free_port, settings_for
from tests.fakes.cohere_standin import CohereStandIn
from tests.integration.test_cohere_connector import enabled_settings


def test_only_questions_over_allowed_collections_reach_cohere(tmp_path: Path, embedder) -> None:
    from fastapi.testclient import TestClient

    from appliance.settings.settings import AccessSettings, SourceAccess

    hr, eng = write_corpus(tmp_path / "docs")
    with CohereStandIn() as standin:
        settings = enabled_settings(
            tmp_path,
            standin.base_url,
            APPLIANCE_LLM_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens
            # A local answer then fails loudly (503) instead of falling back to the passages.
            APPLIANCE__ANSWERING__WHEN_INFERENCE_FAILS="error",
        )
        settings.access = AccessSettings(
            sources=[
                SourceAccess(path=hr, groups=["staff"], collection="hr"),
                SourceAccess(path=eng, groups=["staff"], collection="public"),
            ]
        )
        components = Components(settings)
        components.embedder = embedder
        ingest_departments(components, hr, eng)
        token = components.keys.create("erin", "reader", ["staff"], "test")[1]
        client = TestClient(create_app(settings, components), raise_server_exceptions=False)
        question = "What is the build cache server called?"

        scoped = client.post(
            "/v1/query",
            headers=bearer(token),
            json={"question": question, "collections": ["public"]},
        )
        assert scoped.status_code == 200, scoped.text
        body = scoped.json()
        assert body["model"].startswith("cohere:") and body["left_building"] is True
        assert body["answer"].startswith("stand-in answer")
        assert [request.path for request in standin.requests] == ["/v2/rerank", "/v2/chat"]
        assert ENG_MARKER in standin.requests[0].body["documents"][0]
        assert all("PINEAPPLE" not in str(request.body) for request in standin.requests)

        for collections in (["hr"], ["public", "hr"], None):
            response = client.post(
                "/v1/query",
                headers=bearer(token),
                json={"question": question, "collections": collections},
            )
            if collections == ["hr"]:
                # Nothing in hr is near the question: it abstains without asking any model.
                assert response.status_code == 200 and response.json()["abstained"] is True
            else:
                assert response.status_code == 503  # generated locally, and vLLM is down
            assert len(standin.requests) == 2, collections

    egress = components.audit.records(kind="egress")
    assert [record.payload["endpoint"] for record in egress] == ["/v2/rerank", "/v2/chat"]
    assert {record.actor for record in egress} == {"erin"}
    assert egress[1].payload["prompt"].count(ENG_MARKER) >= 1
    queries = components.audit.records(kind="query")
    assert [record.payload["left_building"] for record in queries] == [True, False]
    assert queries[1].payload["abstained"] is True


def test_the_connector_is_off_by_default(settings) -> None:
    assert settings.connectors.cohere.enabled is False
    assert Components(settings).cohere is None
    assert settings_for(settings.data_dir).connectors.cohere.use_for == []
