"""The GPU profile's preflight and its inventory placeholders.

No NVIDIA GPU exists here: nvidia-smi's output is a stand-in text in the format its
`--query-gpu ... --format=csv,noheader,nounits` prints; the missing-driver case is this host's.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from models.inference_server import InferenceServer, InferenceStartFailed
from models.manifest import Manifest, ModelEntry, hash_folder
from models.preflight import (
    PreflightFailed,
    check,
    compiler_problem,
    cpu_flags,
    cpu_problem,
    parse_nvidia_smi,
    preflight,
    visible,
)
from models.profiles import expand, load_profile

A100_AND_T4 = """0, GPU-5d0f3c1a-aaaa, NVIDIA A100-SXM4-80GB, 8.0, 80500, 81920, 580.95.05
1, GPU-91b2e7c4-bbbb, Tesla T4, 7.5, 15000, 15360, 580.95.05
"""


def _l4(index: int, free_mib: int, driver: str = "580.95.05") -> str:
    return f"{index}, GPU-l4-{index}, NVIDIA L4, 8.9, {free_mib}, 23034, {driver}"


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
    busy = parse_nvidia_smi(_l4(0, 3000))
    vllm_rule, model = check(load_profile("gpu-mistral-gptq", {}), busy)
    # vLLM's own rule: --gpu-memory-utilization (0.90) of the total must be free.
    assert "2.9 GiB free of 22.5" in vllm_rule and "20.2 GiB, is free" in vllm_rule
    assert "needs 8.0 GiB free" in model

    sharded = load_profile("gpu-mistral-gptq", {"VLLM_TENSOR_PARALLEL_SIZE": "2"})
    assert check(sharded, busy) == [
        "profile gpu-mistral-gptq shards the model over 2 GPUs (--tensor-parallel-size) "
        "but this host has 1 that CUDA may use (CUDA_VISIBLE_DEVICES limits them)"
    ]
    two = parse_nvidia_smi(f"{_l4(0, 21000)}\n{_l4(1, 21000)}")
    assert check(sharded, two) == []
    # A lower memory share is what IT sets on a GPU that something else also uses.
    shared = load_profile("gpu-mistral-gptq", {"VLLM_GPU_MEMORY_UTILIZATION": "0.5"})
    assert check(shared, parse_nvidia_smi(_l4(0, 12000))) == []


def test_an_old_driver_is_named_and_mig_values_are_left_to_vllm() -> None:
    profile = load_profile("gpu-mistral-gptq", {})
    (old,) = check(profile, parse_nvidia_smi(_l4(0, 22000, driver="470.239.06")))
    assert "NVIDIA driver 470.239.06" in old and "needs 580 or newer" in old
    mig = parse_nvidia_smi("0, GPU-mig, NVIDIA A100-SXM4-40GB, 8.0, [N/A], [N/A], 580.95.05")
    assert mig[0].free_gib is None and check(profile, mig) == []


def test_only_the_gpus_cuda_visible_devices_names_are_checked() -> None:
    a100, t4 = parse_nvidia_smi(A100_AND_T4)
    assert visible([a100, t4], None) == [a100, t4]
    assert visible([a100, t4], "1") == [t4]
    assert visible([a100, t4], "GPU-5d0f") == [a100]
    assert visible([a100, t4], "1,0") == [t4, a100]
    assert visible([a100, t4], "") == []
    assert visible([a100, t4], "0,7,1") == [a100]  # CUDA stops at the first unknown entry


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


def test_start_up_compilation_needs_a_c_compiler_and_python_headers(tmp_path: Path) -> None:
    gpu = load_profile("gpu-mistral-gptq", {})
    headers = tmp_path / "include"
    headers.mkdir()
    (headers / "Python.h").write_text("")
    compiler = tmp_path / "bin" / "cc"
    compiler.parent.mkdir()
    compiler.write_text("#!/bin/sh\n")
    compiler.chmod(0o755)
    with_both = {"PATH": str(compiler.parent)}
    assert compiler_problem(gpu, with_both, headers) is None
    bare = compiler_problem(gpu, {"PATH": str(tmp_path / "empty")}, tmp_path / "none")
    assert bare and "a C compiler (cc" in bare and "Python's headers" in bare
    assert "install gcc and python3.11-dev" in bare and "--enforce-eager" in bare
    eager = dataclasses.replace(gpu, args=[*gpu.args, "--enforce-eager"])
    assert compiler_problem(eager, {"PATH": ""}, tmp_path / "none") is None
    assert compiler_problem(load_profile("cpu-small", {}), {"PATH": ""}, tmp_path) is None
