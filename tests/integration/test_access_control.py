"""Keys, roles and document groups through the API: a reader of one group never sees another's.

Every path a document's text or existence could take is asked, as an `eng` reader, for the
`hr` document's marker; the query path with a real model is in tests/e2e/test_access_leaks.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from appliance.container import Components
from appliance.server.app import create_app
from appliance.settings import Settings
from tests.access import (
    ENG_MARKER,
    ENG_TEXTS,
    HR_MARKER,
    Keys,
    bearer,
    create_keys,
    ingest_departments,
    with_department_access,
    write_corpus,
)

HR_QUESTION = "What is the confidential salary band code for level 7 engineers?"


@pytest.fixture
def world(tmp_path: Path, settings: Settings, embedder) -> tuple[TestClient, Components, Keys]:
    hr, eng = write_corpus(tmp_path / "docs")
    settings = with_department_access(settings, hr, eng)
    components = Components(settings)
    components.embedder = embedder
    ingest_departments(components, hr, eng)
    client = TestClient(create_app(settings, components), raise_server_exceptions=False)
    return client, components, create_keys(components)


def test_every_endpoint_but_health_needs_a_key(world) -> None:
    client, components, keys = world
    assert client.get("/healthz").status_code in (200, 503)  # no key needed
    for method, path in [
        ("POST", "/v1/query"),
        ("POST", "/v1/search"),
        ("GET", "/v1/documents"),
        ("GET", "/v1/jobs"),
        ("GET", "/v1/keys"),
    ]:
        response = client.request(method, path, json={"question": "x", "query": "x"})
        assert response.status_code == 401, (method, path)
        assert response.json()["error"] == "AuthenticationFailed"
    wrong = keys.eng_reader[:-4] + "AAAA"
    assert client.get("/v1/documents", headers=bearer(wrong)).status_code == 401
    assert client.get("/v1/documents", headers={"X-API-Key": keys.eng_reader}).status_code == 200
    failures = components.audit.records(kind="auth_failed")
    assert [record.payload["failures_this_minute"] for record in failures] == [1, 2, 3, 4, 5, 6]
    assert all(record.payload["reason"] for record in failures)
    assert {record.actor for record in failures} == {"unauthenticated"}
    assert failures[-1].payload["claimed_key_id"] == wrong.split(".")[0].removeprefix("apk_")


def test_a_revoked_key_is_refused_at_once(world) -> None:
    client, components, keys = world
    assert client.get("/v1/documents", headers=bearer(keys.eng_reader)).status_code == 200
    key_id = keys.eng_reader.split(".")[0].removeprefix("apk_")
    admin = bearer(keys.admin)
    assert client.delete(f"/v1/keys/{key_id}", headers=admin).json()["revoked_at"]
    assert client.get("/v1/documents", headers=bearer(keys.eng_reader)).status_code == 401
    kinds = [record.kind for record in components.audit.records()]
    assert "key_revoked" in kinds


def test_roles_reader_admin_auditor(world) -> None:
    client, _, keys = world
    reader, admin, auditor = bearer(keys.eng_reader), bearer(keys.admin), bearer(keys.auditor)
    # Readers do not manage; auditors read the audit log and nothing else.
    assert client.get("/v1/jobs", headers=reader).status_code == 403
    assert client.get("/v1/keys", headers=reader).status_code == 403
    assert client.post("/v1/keys", headers=reader, json={"user": "eve"}).status_code == 403
    assert client.post("/v1/search", headers=auditor, json={"query": "build"}).status_code == 403
    assert client.get("/v1/documents", headers=auditor).status_code == 403
    assert client.get("/v1/jobs", headers=admin).status_code == 200
    created = client.post("/v1/keys", headers=admin, json={"user": "dave", "groups": ["hr"]})
    assert created.status_code == 201 and created.json()["token"].startswith("apk_")
    listed = client.get("/v1/keys", headers=admin).json()
    assert "token" not in json.dumps(listed) and "hash" not in json.dumps(listed)


def _body(response) -> str:
    return response.text


def test_an_eng_reader_cannot_reach_the_hr_document_by_any_path(world) -> None:
    client, components, keys = world
    eng, hr = bearer(keys.eng_reader), bearer(keys.hr_reader)
    hr_doc = next(r for r in components_catalog(components) if r.collection == "hr")
    leaks: dict[str, str] = {}

    search = client.post("/v1/search", headers=eng, json={"query": HR_QUESTION, "top_k": 10})
    leaks["search"] = _body(search)
    # top-k is still k: the filter ran inside the search, not on its results.
    assert len(search.json()["hits"]) == len(ENG_TEXTS)
    assert {hit["collection"] for hit in search.json()["hits"]} == {"eng"}
    leaks["search, collection hr named"] = _body(
        client.post("/v1/search", headers=eng, json={"query": HR_QUESTION, "collections": ["hr"]})
    )
    listing = client.get("/v1/documents", headers=eng)
    leaks["document listing"] = _body(listing)
    assert len(listing.json()) == len(ENG_TEXTS)
    for suffix in ("", "/chunks", "/file"):
        response = client.get(f"/v1/documents/{hr_doc.doc_id}{suffix}", headers=eng)
        assert response.status_code == 404, suffix
        leaks[f"document{suffix or ' metadata'}"] = _body(response)
    response = client.delete(f"/v1/documents/{hr_doc.doc_id}", headers=eng)
    assert response.status_code == 403
    leaks["delete"] = _body(response)
    leaks["jobs"] = _body(client.get("/v1/jobs", headers=eng))

    for path, body in leaks.items():
        assert HR_MARKER not in body, path
        assert "Bonuses are paid" not in body, path  # HR text beyond the marker
    # The same paths do answer the HR reader: the test could fail.
    own = client.post("/v1/search", headers=hr, json={"query": HR_QUESTION, "top_k": 3})
    assert HR_MARKER in own.text and ENG_MARKER not in own.text
    chunks = client.get(f"/v1/documents/{hr_doc.doc_id}/chunks", headers=hr)
    assert HR_MARKER in chunks.text
    assert HR_MARKER in client.get(f"/v1/documents/{hr_doc.doc_id}/file", headers=hr).text


def components_catalog(components: Components):
    from ingest.catalog import Catalog

    return Catalog.for_settings(components.settings).list()


def test_upload_names_its_groups_and_admins_see_every_document(world, tmp_path: Path) -> None:
    client, components, keys = world
    admin = bearer(keys.admin)
    files = [("files", ("board-minutes.txt", b"The board approved budget TANGERINE-77.\n"))]
    response = client.post(
        "/v1/documents", headers=admin, files=files, data={"groups": "board", "collection": "board"}
    )
    assert response.status_code == 202
    from tests.integration.test_api_documents import wait_done

    job = wait_done(client, response.json()["job_id"], headers=admin)
    assert job["files"][0]["status"] == "indexed" and job["submitted_by"] == "root"
    everything = client.get("/v1/documents", headers=admin).json()
    board = next(doc for doc in everything if doc["path"].endswith("board-minutes.txt"))
    assert board["groups"] == ["board"] and board["collection"] == "board"
    assert (
        "TANGERINE"
        not in client.post(
            "/v1/search", headers=bearer(keys.eng_reader), json={"query": "board budget"}
        ).text
    )
    ingests = [r for r in components.audit.records(kind="ingest") if r.actor == "root"]
    assert ingests and ingests[-1].payload["doc_id"] == board["doc_id"]
