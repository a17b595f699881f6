"""`appliance doctor` on a healthy node: the real vLLM serves the configured model, whose files
match their manifest; every check passes and the command exits 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from appliance.cli.main import app
from appliance.egress import guard
from models.manifest import Manifest
from tests.e2e.conftest import Inference

pytestmark = pytest.mark.e2e


def test_doctor_passes_with_the_model_served_and_its_hash(
    inference: Inference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in inference.cli_env(tmp_path / "data").items():
        if key.startswith("APPLIANCE"):
            monkeypatch.setenv(key, value)
    try:
        result = CliRunner().invoke(app, ["doctor", "--json"])
    finally:
        guard.disarm()  # doctor arms the egress guard in this process, as every command does
    assert result.exit_code == 0, result.output
    reports = {report["check"]: report for report in json.loads(result.stdout)}
    assert all(report["ok"] for report in reports.values())
    served = reports["inference"]
    assert served["state"] == "ok" and served["rows"]["served"] == "smollm2-135m-instruct"
    settings = inference.settings(tmp_path / "data")
    digest = Manifest(settings.models_dir).get("smollm2-135m-instruct").digest()
    assert f"hash {digest[:16]}" in served["rows"]["model files"]
