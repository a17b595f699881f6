"""`appliance models` as a user meets its refusals: one sentence and exit 2, nothing started.

The commands run as subprocesses over a models folder holding a small stand-in version (no vLLM
is needed to be refused); the real switches run in tests/e2e/test_models_lifecycle.py.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from appliance.audit import AuditLog
from models.manifest import Manifest, ModelEntry, hash_folder
from models.prepare import SMOLLM2_NAME
from tests.conftest import ROOT, free_port, settings_for

APPLIANCE = str(ROOT / ".venv" / "bin" / "appliance")
# Its own port: a developer's running vLLM on the default one must not answer for the stand-in.
PORT = str(free_port())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models-cli")
    manifest = Manifest(root / "models")
    for name, parent in ((SMOLLM2_NAME, None), ("candidate", SMOLLM2_NAME)):
        folder = manifest.folder(name)
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"name": name}))
        manifest.put(ModelEntry(name, "hf", "none", "test", hash_folder(folder), parent=parent))
    return root


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE")}
    environ |= {
        "APPLIANCE_DATA_DIR": str(home / "data"),
        "APPLIANCE_PROFILES": "embedded,test",
        "APPLIANCE__MODELS__DIR": str(home / "models"),
        "APPLIANCE__INFERENCE__PORT": PORT,
    }
    return subprocess.run(
        [APPLIANCE, "models", *args], capture_output=True, text=True, env=environ, timeout=120
    )


def _said(result: subprocess.CompletedProcess[str]) -> str:
    """Rich wraps at the terminal's width; the test reads a message as one line."""
    return " ".join(result.stderr.split())


def test_versions_are_listed_with_their_parent_and_the_active_one(home: Path) -> None:
    result = _cli(home, "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert listed["active"] == SMOLLM2_NAME
    parents = {row["name"]: row["parent"] for row in listed["versions"]}
    assert parents == {SMOLLM2_NAME: None, "candidate": SMOLLM2_NAME}
    assert listed["switches"] == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["rollback"], "has no earlier version to roll back to"),
        (["activate", "nope"], "model 'nope' is not in"),
        (["activate", "candidate"], "no gold set to gate the switch with: pass --gold FILE"),
        (["quantize", SMOLLM2_NAME], "ingest the documents the model will answer about first"),
    ],
)
def test_a_refusal_is_one_sentence_and_exit_2(home: Path, args: list[str], says: str) -> None:
    result = _cli(home, *args)
    assert result.returncode == 2, result.stderr
    assert says in _said(result)
    assert "Traceback" not in result.stderr
    assert not (home / "data" / "run" / "vllm.pid").exists()


def test_the_active_version_is_not_activated_again(home: Path) -> None:
    result = _cli(home, "activate", SMOLLM2_NAME)
    assert result.returncode == 0
    assert "already the active version" in " ".join(result.stdout.split())
    assert not (home / "models" / "registry.json").exists()


def test_a_forced_switch_to_a_version_vllm_cannot_load_fails_on_record(home: Path) -> None:
    """vLLM really starts on the stand-in candidate (a config.json and nothing else) and exits;
    the forced switch fails with vLLM's reason, nothing is left running, and the attempt is
    audited with who made it."""
    result = _cli(home, "activate", "candidate", "--force")
    assert result.returncode != 0, result.stdout
    assert "did not start" in _said(result) and "Traceback" not in result.stderr
    settings = settings_for(
        home / "data",
        APPLIANCE_PROFILES="embedded,test",
        APPLIANCE__MODELS__DIR=str(home / "models"),
        APPLIANCE__INFERENCE__PORT=PORT,
    )
    (record,) = AuditLog.for_settings(settings).records(kind="model_activation_failed")
    assert record.payload["version"] == "candidate" and record.payload["forced"] is True
    assert "did not start" in record.payload["error"] and record.actor.startswith("local:")
    assert not (home / "models" / "registry.json").exists()  # the active version is unchanged
    assert not (home / "data" / "run" / "vllm.pid").exists()
