"""The preflight role fails early with a sentence that says what to do.

There is no NVIDIA GPU here: a stand-in `nvidia-smi` on PATH prints what the real one prints for
`--query-gpu=name,driver_version,compute_cap,memory.free --format=csv,noheader,nounits`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Each case is one ansible-playbook run: 10 to 40 s here.
pytestmark = pytest.mark.e2e

OPS_BIN = ROOT / ".venv-ops" / "bin"
PLAYBOOKS = ROOT / "ansible"


def preflight(tmp_path: Path, gpu_rows: list[str] | None, *extra: str) -> tuple[int, str]:
    """Runs only the preflight play of site.yml on this machine; (exit code, output)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpu_rows is not None:
        stand_in = bin_dir / "nvidia-smi"
        stand_in.write_text("#!/bin/sh\ncat <<'ROWS'\n" + "\n".join(gpu_rows) + "\nROWS\n")
        stand_in.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith("APPLIANCE")}
    env |= {
        "PATH": f"{bin_dir}:{env['PATH']}",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
    }
    command = [
        str(OPS_BIN / "ansible-playbook"),
        "-i",
        "inventories/single/hosts.yml",
        "site.yml",
        "--tags",
        "preflight",
        "-e",
        f"appliance_prefix={tmp_path / 'opt'}",
        "-e",
        "preflight_min_free_gib=1",
        "-e",
        "preflight_inference_profile=gpu-mistral-gptq",
        *extra,
    ]
    result = subprocess.run(command, cwd=PLAYBOOKS, env=env, capture_output=True, text=True)
    return result.returncode, result.stdout + result.stderr


GPU = ["-e", "preflight_gpu=true"]


def test_a_gpu_below_compute_capability_8_is_refused(tmp_path: Path) -> None:
    code, output = preflight(tmp_path, ["Tesla T4, 580.95.05, 7.5, 15000"], *GPU)
    assert code != 0
    assert "GPU Tesla T4 has compute capability 7.5" in output
    assert "asks for 8.0 or more" in output


def test_a_driver_older_than_cuda_13s_floor_is_refused(tmp_path: Path) -> None:
    code, output = preflight(tmp_path, ["NVIDIA L4, 550.54.15, 8.9, 22000"], *GPU)
    assert code != 0
    assert "GPU NVIDIA L4 runs NVIDIA driver 550.54.15" in output
    assert "needs 580 or newer" in output


def test_too_little_free_vram_for_the_model_is_refused(tmp_path: Path) -> None:
    rows = ["NVIDIA H100 80GB HBM3, 580.95.05, 9.0, 81000", "NVIDIA L40S, 580.95.05, 8.9, 2048"]
    code, output = preflight(tmp_path, rows, *GPU)
    assert code != 0
    assert "GPU NVIDIA L40S has 2.0 GiB free" in output
    assert "needs 8 GiB" in output


def test_a_missing_driver_is_refused(tmp_path: Path) -> None:
    if any((Path(folder) / "nvidia-smi").exists() for folder in os.environ["PATH"].split(":")):
        pytest.fail("this machine has an nvidia-smi; the test needs a host without one")
    code, output = preflight(tmp_path, None, *GPU)
    assert code != 0
    assert "nvidia-smi is missing: install the NVIDIA driver" in output


def test_a_capable_gpu_and_python_pass(tmp_path: Path) -> None:
    code, output = preflight(tmp_path, ["NVIDIA H200, 580.105.08, 9.0, 143000"], *GPU)
    assert code == 0, output[-4000:]
    assert "failed=0" in output
