"""`appliance doctor` on one node (embedded Chroma, inline ingestion): every check, and advice
for each failure. Queued mode (Redis, workers, Chroma server) is in tests/workers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appliance.audit.log import AuditLog
from appliance.cli.main import app
from appliance.egress import guard
from tests.conftest import free_port, settings_for


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data dir whose inference service is down (nothing listens on its port)."""
    data = tmp_path / "data"
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(data))
    monkeypatch.setenv("APPLIANCE_LLM_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")
    yield data
    guard.disarm()  # doctor arms the egress guard in this process, as every command does


def doctor(*args: str) -> tuple[int, dict[str, dict]]:
    result = CliRunner().invoke(app, ["doctor", "--json", *args])
    return result.exit_code, {report["check"]: report for report in json.loads(result.stdout)}


def test_every_component_is_checked_and_a_dead_inference_gets_advice(node: Path) -> None:
    code, reports = doctor()
    assert list(reports) == [
        "settings", "redis", "workers", "chroma", "inference", "audit", "egress", "disk",
    ]  # fmt: skip
    assert code == 1
    states = {name: report["state"] for name, report in reports.items()}
    assert states == {
        "settings": "ok", "redis": "skipped", "workers": "skipped", "chroma": "ok",
        "inference": "FAIL", "audit": "ok", "egress": "ok", "disk": "ok",
    }  # fmt: skip
    inference = reports["inference"]
    assert "not answering" in inference["summary"]
    assert "systemctl start appliance-inference" in inference["advice"]
    assert "appliance models serve" in inference["advice"]
    assert all(report["advice"] == "" for report in reports.values() if report["ok"])

    table = CliRunner().invoke(app, ["doctor"], terminal_width=200)
    assert table.exit_code == 1
    assert "what to do" in table.stdout and "FAIL" in table.stdout


def test_a_tampered_audit_log_fails_its_check(node: Path) -> None:
    log = AuditLog.for_settings(settings_for(node))
    for n in range(3):
        log.append("query", "alice", ["everyone"], {"question": f"q{n}"})
    with sqlite3.connect(node / "audit.sqlite3") as raw:
        raw.execute("""UPDATE audit_records SET payload = '{"question":"x"}' WHERE seq = 2""")
    _, reports = doctor()
    audit = reports["audit"]
    assert audit["state"] == "FAIL" and "seq 2" in audit["summary"]
    assert "appliance audit verify" in audit["advice"]


@pytest.mark.parametrize(
    ("limit", "value", "named"),
    [("MIN_FREE_GIB", "1000000", "at least 1e+06 GiB"), ("MIN_FREE_SHARE", "1", "and 100%")],
)
def test_a_data_folder_short_of_either_disk_limit_fails_with_advice(
    node: Path, monkeypatch: pytest.MonkeyPatch, limit: str, value: str, named: str
) -> None:
    # The test profile sets both limits to 0 (a shared CI disk's free space is not the subject
    # of the other doctor tests); here one limit is raised past what any real disk has free.
    monkeypatch.setenv(f"APPLIANCE__DOCTOR__{limit}", value)
    _, reports = doctor()
    disk = reports["disk"]
    assert disk["state"] == "FAIL" and "GiB free" in disk["summary"]
    assert named in disk["advice"] and "data_dir to a larger volume" in disk["advice"]


def test_settings_that_do_not_load_are_one_failed_row(
    node: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPLIANCE__RETRIEVAL__TOP_K", "many")
    code, reports = doctor()
    assert code == 1 and list(reports) == ["settings"]
    assert "retrieval.top_k" in reports["settings"]["summary"]
    assert "fix the setting" in reports["settings"]["advice"]
