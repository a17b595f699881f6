"""GET /metrics over real parts (Chroma, the embedder, the parsers, the catalog, the audit log)."""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient

from appliance.container import Components
from appliance.egress import arm_from_settings, guard
from appliance.errors import EgressDenied
from appliance.server.app import create_app
from appliance.settings import Settings
from ingest.job_store import JobItem, JobStore
from tests.conftest import CORPUS, api_client
from tests.integration.test_api_documents import wait_done
from tests.ops.prometheus import scrape

TEST_NET = "203.0.113.7"  # RFC 5737 documentation range: routed nowhere


def test_metrics_count_ingestion_documents_retrieval_and_audit(
    settings: Settings, embedder
) -> None:
    components = Components(settings)
    components.embedder = embedder
    client = api_client(settings, components)
    # Prometheus scrapes without a key, as it does /healthz.
    anonymous = TestClient(create_app(settings, components))
    before = scrape(anonymous.get("/metrics").text)
    assert before['appliance_documents{state="indexed"}'] == 0

    files = [
        ("files", (name, (CORPUS / name).read_bytes(), "application/octet-stream"))
        for name in ("onboarding.md", "vpn-policy.txt")
    ] + [("files", ("empty.txt", b"", "text/plain"))]
    job = wait_done(client, client.post("/v1/documents", files=files).json()["job_id"])
    assert sorted(item["status"] for item in job["files"]) == ["failed", "indexed", "indexed"]
    assert client.post("/v1/search", json={"query": "incident bridge"}).status_code == 200

    response = anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    after = scrape(response.text)

    def added(name: str) -> float:
        return after[name] - before.get(name, 0.0)

    assert after['appliance_documents{state="indexed"}'] == 2
    assert after['appliance_documents{state="failed"}'] == 1
    assert after["appliance_ingest_queue_depth"] == 0
    # The empty file is refused before parsing; both others are parsed, then embedded and
    # written (possibly together, in one write).
    assert added('appliance_ingest_stage_seconds_count{stage="parse"}') == 2
    writes = added('appliance_ingest_stage_seconds_count{stage="embed"}')
    assert writes >= 1 and added('appliance_ingest_stage_seconds_count{stage="upsert"}') == writes
    assert added('appliance_ingest_stage_seconds_sum{stage="parse"}') > 0
    assert added('appliance_retrieval_seconds_count{mode="hybrid"}') == 1
    head = components.audit.head()
    assert head is not None and after["appliance_audit_records_total"] == head.seq > 0


def test_queue_depth_counts_files_waiting_for_inline_ingestion(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    store = JobStore.for_settings(settings)
    store.create("ingest", [JobItem(f"/srv/docs/{n}.md") for n in range(3)])
    store.create("ingest", [JobItem("/srv/docs/refused.md", error="refused at upload")])
    assert scrape(client.get("/metrics").text)["appliance_ingest_queue_depth"] == 3


def test_refused_egress_attempts_are_counted(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    before = scrape(client.get("/metrics").text)["appliance_egress_refused_total"]
    arm_from_settings(settings)
    try:
        with pytest.raises(EgressDenied):
            socket.create_connection((TEST_NET, 443), timeout=1)
    finally:
        guard.disarm()
    after = scrape(client.get("/metrics").text)["appliance_egress_refused_total"]
    assert after == before + 1
