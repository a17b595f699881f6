"""The GPU profile's preflight and its inventory placeholders.

No NVIDIA GPU exists here: nvidia-smi's output is a stand-in text in the format its
`--query-gpu ... --format=csv,noheader,nounits` prints; the missing-driver case is this host's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.inference_server import InferenceServer, InferenceStartFailed
from models.manifest import Manifest, ModelEntry, hash_folder
from models.preflight import (
    PreflightFailed,
    check,
    cpu_flags,
    cpu_problem,
    parse_nvidia_smi,
    preflight,
)
from models.profiles import expand, load_profile

A100_AND_T4 = """0, NVIDIA A100-SXM4-80GB, 8.0, 80500, 81920
1, Tesla T4, 7.5, 15000, 15360
"""


def test_nvidia_smi_rows_become_gpus() -> None:
    a100, t4 = parse_nvidia_smi(A100_AND_T4 + "\n")
    assert (a100.index, a100.name, a100.compute_capability) == (0, "NVIDIA A100-SXM4-80GB", 8.0)
    assert a100.free_gib == pytest.approx(78.6, abs=0.1)
    assert (t4.compute_capability, t4.total_gib) == (7.5, 15.0)


def test_the_gpu_profile_takes_an_ampere_gpu_and_refuses_a_turing_one() -> None:
    profile = load_profile("gpu-mistral-gptq", {})
    a100, t4 = parse_nvidia_smi(A100_AND_T4)
    assert check(profile, [a100]) == []
    (problem,) = check(profile, [t4])
    assert "GPU 1 (Tesla T4) has compute capability 7.5" in problem
    assert "asks for 8.0 or more" in problem


def test_too_little_free_memory_and_too_few_gpus_are_named() -> None:
    busy = parse_nvidia_smi("0, NVIDIA L4, 8.9, 3000, 23034")
    (problem,) = check(load_profile("gpu-mistral-gptq", {}), busy)
    assert "2.9 GiB free of 22.5" in problem and "needs 8.0 GiB free" in problem

    sharded = load_profile("gpu-mistral-gptq", {"VLLM_TENSOR_PARALLEL_SIZE": "2"})
    assert check(sharded, busy) == [
        "profile gpu-mistral-gptq shards the model over 2 GPUs (--tensor-parallel-size) "
        "but this host has 1"
    ]
    # Sharded, each GPU holds half the model: two 4 GiB-free L4s are enough.
    two = parse_nvidia_smi("0, NVIDIA L4, 8.9, 4200, 23034\n1, NVIDIA L4, 8.9, 4200, 23034")
    assert check(sharded, two) == []


def test_inventory_values_replace_the_profile_defaults() -> None:
    assert expand("--x=${A:1}", {}) == "--x=1"
    assert expand("--x=${A:1}", {"A": "4"}) == "--x=4"
    profile = load_profile(
        "gpu-mistral-gptq",
        {"VLLM_MAX_MODEL_LEN": "16384", "VLLM_GPU_MEMORY_UTILIZATION": "0.8"},
    )
    assert "--max-model-len=16384" in profile.args
    assert "--gpu-memory-utilization=0.8" in profile.args
    assert "--tensor-parallel-size=1" in profile.args
    assert not any("${" in arg for arg in profile.args)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this host has a driver")
def test_without_a_driver_the_gpu_profile_is_refused_before_vllm_starts(tmp_path: Path) -> None:
    profile = load_profile("gpu-mistral-gptq", {})
    assert preflight(load_profile("cpu-small", {})) == []
    with pytest.raises(PreflightFailed, match="no NVIDIA driver here"):
        preflight(profile)

    folder = tmp_path / "models" / profile.model
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    manifest = Manifest(tmp_path / "models")
    manifest.put(ModelEntry(profile.model, "hf", "gptq", "test", hash_folder(folder)))
    server = InferenceServer(
        Path(shutil.which("python3") or "/usr/bin/python3"),
        "127.0.0.1",
        1,
        tmp_path / "run",
        tmp_path / "logs",
    )
    # The CLI shows InferenceStartFailed as one sentence; nothing was started.
    with pytest.raises(InferenceStartFailed, match=r"use inference\.profile: cpu-small"):
        server.start(profile, manifest, timeout_s=5)
    assert server.pid() is None and not server.log_file.exists()


def test_vllm_cpu_serves_gptq_only_where_the_cpu_has_avx512(tmp_path: Path) -> None:
    cpu = load_profile("cpu-small", {})
    gpu = load_profile("gpu-mistral-gptq", {})
    avx2 = {"sse4_2", "avx", "avx2", "fma"}
    problem = cpu_problem(cpu, "gptq", avx2)
    assert problem and "no AVX-512" in problem and "keep the bf16 version" in problem
    assert cpu_problem(cpu, "gptq", avx2 | {"avx512f", "avx512bw"}) is None
    assert cpu_problem(cpu, "none", avx2) is None  # bf16 runs on either build
    assert cpu_problem(gpu, "gptq", avx2) is None  # a GPU profile's kernels are the GPU's
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse", "avx2"}
    assert cpu_flags(tmp_path / "absent") == set()
