"""Uploads in the embedded default: the API ingests on its own thread, one writer for Chroma."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from appliance.container import Components
from appliance.settings import Settings
from tests.conftest import CORPUS, api_client


def wait_done(
    client: TestClient, job_id: str, timeout: float = 120, headers: dict | None = None
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] == "done":
            return job
        time.sleep(0.2)
    raise TimeoutError(job_id)


def test_upload_list_and_delete_through_the_api(settings: Settings, embedder) -> None:
    components = Components(settings)
    components.embedder = embedder
    client = api_client(settings, components)
    files = [
        ("files", (name, (CORPUS / name).read_bytes(), "application/octet-stream"))
        for name in ("onboarding.md", "incident-response.pdf")
    ]
    response = client.post("/v1/documents", files=files)
    assert response.status_code == 202
    job = wait_done(client, response.json()["job_id"])
    assert [item["status"] for item in job["files"]] == ["indexed", "indexed"]

    documents = client.get("/v1/documents").json()
    assert {doc["path"].rsplit("/", 1)[-1] for doc in documents} == {
        "onboarding.md",
        "incident-response.pdf",
    }
    pdf = next(doc for doc in documents if doc["path"].endswith(".pdf"))
    deletion = wait_done(client, client.delete(f"/v1/documents/{pdf['doc_id']}").json()["job_id"])
    assert deletion["files"][0]["status"] == "deleted"
    assert components.chunk_store.chunk_ids(pdf["doc_id"]) == []
    assert client.delete(f"/v1/documents/{pdf['doc_id']}").status_code == 404
    assert client.get("/v1/jobs").json()[0]["job_id"] == deletion["job_id"]


def test_an_oversized_upload_is_refused_without_being_stored(tmp_path) -> None:
    from tests.conftest import settings_for

    settings = settings_for(tmp_path / "data", APPLIANCE__INGEST__MAX_FILE_MB="1")
    client = api_client(settings)
    big = ("files", ("big.txt", b"word " * (400 * 1024), "text/plain"))  # 2 MB
    response = client.post("/v1/documents", files=[big])
    assert response.status_code == 202
    item = wait_done(client, response.json()["job_id"])["files"][0]
    assert item["status"] == "failed"
    assert "big.txt is over the 1 MB limit" in item["error"]
    assert list(settings.uploads_dir.iterdir()) == []
