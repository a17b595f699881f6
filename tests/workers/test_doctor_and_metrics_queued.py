"""`appliance doctor` and /metrics in queued mode, against a real Redis, `chroma run` and worker."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from appliance.cli.main import app
from appliance.egress import guard
from appliance.server.app import create_app
from tests.conftest import CORPUS, free_port
from tests.ops.prometheus import scrape
from tests.workers.conftest import QueuedAppliance

pytestmark = pytest.mark.e2e


@pytest.fixture
def environment(queued: QueuedAppliance, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in queued.env().items():
        if key.startswith("APPLIANCE"):
            monkeypatch.setenv(key, value)
    # The inference service is not part of this test; nothing listens here.
    monkeypatch.setenv("APPLIANCE_LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    yield
    guard.disarm()  # doctor arms the egress guard in this process, as every command does


def doctor() -> dict[str, dict]:
    result = CliRunner().invoke(app, ["doctor", "--json"])
    return {report["check"]: report for report in json.loads(result.stdout)}


def test_doctor_and_metrics_follow_redis_the_workers_and_the_queue(
    queued: QueuedAppliance, environment: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = doctor()
    assert reports["redis"]["state"] == "ok" and "Redis" in reports["redis"]["summary"]
    assert reports["chroma"]["state"] == "ok" and "server" in reports["chroma"]["summary"]
    assert reports["workers"]["state"] == "FAIL"
    assert "systemctl start appliance-worker@1" in reports["workers"]["advice"]

    # Queued with no worker running: the backlog shows on /metrics, then drains.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / "vpn-policy.txt", corpus / "vpn-policy.txt")
    metrics = TestClient(create_app(queued.settings))
    job = queued.jobs().submit_paths([corpus])
    waiting = scrape(metrics.get("/metrics").text)["appliance_ingest_queue_depth"]
    assert waiting >= 1

    worker_port = free_port()
    queued.overrides["APPLIANCE__WORKER__METRICS_PORT"] = str(worker_port)
    queued.start_worker("doctor")
    queued.wait_done(job.job_id)
    after = scrape(metrics.get("/metrics").text)
    assert after["appliance_ingest_queue_depth"] == 0
    assert after['appliance_documents{state="indexed"}'] == 1
    # The worker's own /metrics: its pool process parsed, embedded and wrote the file.
    worker = scrape(httpx.get(f"http://127.0.0.1:{worker_port}/metrics", timeout=10).text)
    for stage in ("parse", "embed", "upsert"):
        assert worker[f'appliance_ingest_stage_seconds_count{{stage="{stage}"}}'] >= 1, stage

    # The worker has done a task, so it is up; it answers Celery's ping within doctor's wait.
    workers = doctor()["workers"]
    assert workers["state"] == "ok" and "doctor@" in workers["summary"]

    # Redis gone: its row fails with what to do, and so does the workers' row.
    monkeypatch.setenv("APPLIANCE_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    reports = doctor()
    assert reports["redis"]["state"] == "FAIL"
    assert "systemctl start redis-server" in reports["redis"]["advice"]
    assert reports["workers"]["state"] == "FAIL"
