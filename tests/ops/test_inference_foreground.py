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


@pytest.mark.skipif(
    subprocess.run(["which", "nvidia-smi"], capture_output=True).returncode == 0,
    reason="this host has an NVIDIA driver",
)
def test_the_gpu_profile_is_refused_in_the_foreground_before_vllm_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the unit and the GPU image run checks the GPUs too: here there is no driver."""
    env = _environment(tmp_path)
    models = tmp_path / "models"
    folder = models / "mistral-7b-instruct-gptq"
    folder.mkdir()
    (folder / "config.json").write_text('{"architectures": ["MistralForCausalLM"]}')
    Manifest(models).put(
        ModelEntry("mistral-7b-instruct-gptq", "hf", "gptq", "test", hash_folder(folder))
    )
    env["APPLIANCE__INFERENCE__PROFILE"] = "gpu-mistral-gptq"
    result = _refused(env, monkeypatch)
    assert result.exit_code == 2 and "no NVIDIA driver here" in result.stderr
    assert not (tmp_path / "started.json").exists()


VLLM_PARSES = """
import json, sys
from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
from vllm.utils.argparse_utils import FlexibleArgumentParser
args = make_arg_parser(FlexibleArgumentParser()).parse_args(sys.argv[1:])
validate_parsed_serve_args(args)
names = ("model", "served_model_name", "quantization", "dtype", "max_model_len",
         "gpu_memory_utilization", "tensor_parallel_size", "host", "port")
print(json.dumps({name: getattr(args, name) for name in names}))
"""


def test_the_gpu_profiles_command_line_is_one_vllm_parses(tmp_path: Path) -> None:
    """`--print-command` with a host's inventory values, read by vLLM's own argument parser
    (vllm-cpu's is the same code as the CUDA build's)."""
    env = {
        **_environment(tmp_path),
        "APPLIANCE__INFERENCE__PROFILE": "gpu-mistral-gptq",
        "VLLM_TENSOR_PARALLEL_SIZE": "2",
        "VLLM_GPU_MEMORY_UTILIZATION": "0.85",
    }
    printed = subprocess.run(
        [APPLIANCE, "models", "serve", "--print-command"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert printed.returncode == 0, printed.stderr
    command = printed.stdout.splitlines()
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert not (tmp_path / "started.json").exists()  # nothing was started
    inference_python = ROOT / ".venv-inference" / "bin" / "python"
    parsed = subprocess.run(
        [str(inference_python), "-c", VLLM_PARSES, *command[3:]],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"},
    )
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    args = json.loads(parsed.stdout.strip().splitlines()[-1])
    assert args["model"] == str(tmp_path / "models" / "mistral-7b-instruct-gptq")
    assert args["served_model_name"] == ["mistral-7b-instruct-gptq"]
    assert args["quantization"] is None  # vLLM picks GPTQ Marlin from the checkpoint
    assert (args["dtype"], args["max_model_len"]) == ("float16", 8192)
    assert (args["tensor_parallel_size"], args["gpu_memory_utilization"]) == (2, 0.85)
