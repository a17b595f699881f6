"""`appliance models serve --foreground` (what systemd and the GPU image run): the manifest check,
then the process becomes vLLM. vLLM itself is a stand-in script here, named as such: starting
the real one is tests/e2e's job; this is about what is exec'd, with which arguments and env."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from appliance.cli.main import app
from appliance.egress import guard
from models.manifest import Manifest, ModelEntry, hash_folder
from tests.conftest import ROOT

APPLIANCE = str(ROOT / ".venv" / "bin" / "appliance")
MODEL = "smollm2-135m-instruct"  # the cpu-small profile's model


def _environment(tmp_path: Path) -> dict[str, str]:
    models = tmp_path / "models"
    folder = models / MODEL
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    Manifest(models).put(ModelEntry(MODEL, "hf", "none", "test", hash_folder(folder)))
    # The stand-in for vLLM's Python: records how it was started, then exits 0.
    standin = tmp_path / "vllm-python"
    standin.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"json.dump({{'pid': os.getpid(), 'argv': sys.argv[1:], 'env': dict(os.environ)}},"
        f" open({str(tmp_path / 'started.json')!r}, 'w'))\n"
    )
    standin.chmod(0o755)
    base = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE")}
    return {
        **base,
        "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
        "APPLIANCE__MODELS__DIR": str(models),
        "APPLIANCE_INFERENCE_PYTHON": str(standin),
        "APPLIANCE__INFERENCE__PROFILE": "cpu-small",
    }


def _refused(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Result:
    """A run expected to stop before exec, so it can run in this process."""
    for key, value in env.items():
        if key.startswith("APPLIANCE"):
            monkeypatch.setenv(key, value)
    try:
        return CliRunner().invoke(app, ["models", "serve", "--foreground"])
    finally:
        guard.disarm()  # every command arms the egress guard in its process


def test_the_process_becomes_vllm_after_the_manifest_check(tmp_path: Path) -> None:
    env = _environment(tmp_path)
    process = subprocess.Popen(
        [APPLIANCE, "models", "serve", "--foreground"], env=env, stderr=subprocess.PIPE
    )
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr.decode()
    started = json.loads((tmp_path / "started.json").read_text())
    # exec, not a child: systemd and Docker signal and watch vLLM itself.
    assert started["pid"] == process.pid
    assert started["argv"][:2] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert f"--model={tmp_path / 'models' / MODEL}" in started["argv"]
    assert f"--served-model-name={MODEL}" in started["argv"]
    assert "--enable-log-requests" in started["argv"]
    assert started["env"]["HF_HUB_OFFLINE"] == "1"
    assert started["env"]["VLLM_NO_USAGE_STATS"] == "1"
    assert started["env"]["VLLM_CPU_KVCACHE_SPACE"] == "1"  # from the launch profile


def test_a_changed_model_file_is_never_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _environment(tmp_path)
    (tmp_path / "models" / MODEL / "config.json").write_text("{}")
    result = _refused(env, monkeypatch)
    assert result.exit_code == 2 and "changed config.json" in result.stderr
    assert not (tmp_path / "started.json").exists()


def test_a_missing_inference_python_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**_environment(tmp_path), "APPLIANCE_INFERENCE_PYTHON": str(tmp_path / "nowhere")}
    result = _refused(env, monkeypatch)
    assert result.exit_code == 2 and "is missing" in result.stderr
