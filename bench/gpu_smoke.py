"""What a lent NVIDIA GPU without vLLM or network can tell about the Mistral GPTQ path.

Two steps. Here (any machine with the repository and a GPTQ version, e.g. after the model
lifecycle tests or `appliance models quantize`):

    .venv/bin/python bench/gpu_smoke.py prepare --gptq MODELS/VERSION --parent MODELS/PARENT

writes `.gpu-smoke/` (a few MB: three layers' packed GPTQ tensors and their unquantized weights).
On the GPU machine, from the repository root, with `.gpu-smoke` carried (bench/gpu_smoke.sh):

    python3 bench/gpu_smoke.py run

prints one row per check and exits 1 if any fails:
- the preflight (models/preflight.py) against the real `nvidia-smi`, for the GPU profile;
- vLLM's memory rule (free memory >= gpu_memory_utilization x total) from torch.cuda.mem_get_info,
  and how far nvidia-smi's free memory agrees with it;
- GPTQ numerics of the carried layers on the GPU: dequantized on the GPU exactly as on the CPU,
  close to the unquantized weights (a misread packing is off by ~100%), and a half-precision
  matrix product on the GPU within 0.5% of the CPU's float32 one;
- whether GPTQModel (its kernels) imports there.
`--device cpu` runs the numerics on the CPU, for this script's own test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LAYERS = (
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.self_attn.k_proj",
    "model.layers.0.mlp.down_proj",
)
PACKED = ("qweight", "qzeros", "scales", "g_idx")


def prepare(gptq: Path, parent: Path, out: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import save_file

    config = json.loads((gptq / "quantize_config.json").read_text())
    tensors: dict[str, Any] = {}
    for folder, names in ((gptq, PACKED), (parent, ("weight",))):
        for path in sorted(folder.glob("*.safetensors")):
            with safe_open(str(path), "pt") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                    layer, _, kind = key.rpartition(".")
                    if layer in LAYERS and kind in names:
                        tensors[key] = handle.get_tensor(key).contiguous()
    missing = [f"{layer}.{kind}" for layer in LAYERS for kind in (*PACKED, "weight")]
    missing = [name for name in missing if name not in tensors]
    if missing:
        raise SystemExit(f"not found in {gptq} / {parent}: {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "layers.safetensors"))
    meta = {key: config.get(key) for key in ("bits", "group_size", "sym", "checkpoint_format")}
    meta["source"] = str(gptq)
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    size = (out / "layers.safetensors").stat().st_size / 2**20
    print(f"{out}: {len(tensors)} tensors of {len(LAYERS)} layers, {size:.1f} MiB")


def dequantize(qweight: Any, qzeros: Any, scales: Any, g_idx: Any, bits: int, v1: bool) -> Any:
    """The [in, out] weight of a GPTQ-packed linear layer (int32 packing along the input for
    weights, along the output for zeros; checkpoint format `gptq` stores zeros less one)."""
    import torch

    per_word = 32 // bits
    mask = (1 << bits) - 1
    shifts = torch.arange(0, 32, bits, device=qweight.device, dtype=torch.int32)
    weights = (qweight.unsqueeze(1) >> shifts.view(1, -1, 1)) & mask  # [in/8, 8, out]
    weights = weights.reshape(-1, qweight.shape[1])
    zeros = (qzeros.unsqueeze(2) >> shifts.view(1, 1, -1)) & mask  # [groups, out/8, 8]
    zeros = zeros.reshape(qzeros.shape[0], -1) + (1 if v1 else 0)
    assert weights.shape[0] == g_idx.shape[0] and per_word * qzeros.shape[1] == scales.shape[1]
    group = g_idx.long()
    return (weights - zeros[group]).float() * scales[group].float()


def _row(checks: list[dict[str, Any]], name: str, ok: bool, detail: str) -> None:
    checks.append({"check": name, "ok": ok, "detail": detail})


def check_preflight(checks: list[dict[str, Any]]) -> None:
    from models.preflight import PreflightFailed, check, memory_utilization, read_gpus, visible
    from models.profiles import load_profile

    profile = load_profile("gpu-mistral-gptq", {})
    try:
        gpus = visible(read_gpus(), os.environ.get("CUDA_VISIBLE_DEVICES"))
    except PreflightFailed as error:
        _row(checks, "preflight: nvidia-smi", False, str(error))
        return
    names = ", ".join(
        f"{gpu.name} (cc {gpu.compute_capability}, driver {gpu.driver})" for gpu in gpus
    )
    problems = check(profile, gpus)
    _row(checks, "preflight: gpu-mistral-gptq", not problems, "; ".join(problems) or names)
    utilization = memory_utilization(profile) or 0.9
    try:
        import torch

        free, total = torch.cuda.mem_get_info()
    except Exception as error:  # reported, not raised
        _row(checks, "vLLM memory rule", False, f"torch.cuda.mem_get_info failed: {error}")
        return
    needed = utilization * total
    smi_free = gpus[0].free_gib if gpus else None
    agree = "" if smi_free is None else f"; nvidia-smi says {smi_free:.1f} GiB free"
    _row(
        checks,
        "vLLM memory rule",
        free >= needed,
        f"free {free / 2**30:.1f} GiB of {total / 2**30:.1f}, needs {utilization} x total = "
        f"{needed / 2**30:.1f} GiB{agree}",
    )


def check_numerics(checks: list[dict[str, Any]], data: Path, device: str) -> None:
    import torch
    from safetensors.torch import load_file

    meta = json.loads((data / "meta.json").read_text())
    tensors = load_file(str(data / "layers.safetensors"))
    bits, v1 = int(meta["bits"]), meta.get("checkpoint_format", "gptq") == "gptq"
    torch.manual_seed(0)
    for layer in LAYERS:
        packed = [tensors[f"{layer}.{kind}"] for kind in PACKED]
        on_cpu = dequantize(*packed, bits=bits, v1=v1)
        started = time.perf_counter()
        on_device = dequantize(*(t.to(device) for t in packed), bits=bits, v1=v1)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        same = torch.equal(on_device.cpu(), on_cpu)
        _row(checks, f"{layer}: dequantized on {device} = on cpu", same,
             f"shape {tuple(on_cpu.shape)}, {seconds * 1e3:.1f} ms")  # fmt: skip
        parent = tensors[f"{layer}.weight"].float().t()  # [in, out], as dequantized
        error = ((on_cpu - parent).norm() / parent.norm()).item()
        _row(checks, f"{layer}: 4-bit vs unquantized", error < 0.25,
             f"relative error {error:.3f} (a misread packing gives about 1)")  # fmt: skip
        inputs = torch.randn(16, on_cpu.shape[0])
        reference = inputs @ on_cpu
        half = torch.float16 if device == "cuda" else torch.float32
        product = (inputs.to(device, half) @ on_device.to(half)).float().cpu()
        error = ((product - reference).norm() / reference.norm()).item()
        _row(checks, f"{layer}: x @ W on {device} ({half})", error < 5e-3,
             f"relative error {error:.2e} against float32 on cpu")  # fmt: skip


def check_gptqmodel(checks: list[dict[str, Any]]) -> None:
    try:
        import gptqmodel
    except Exception as error:  # reported, not raised
        _row(checks, "GPTQModel imports", True, f"not here ({type(error).__name__}); optional")
        return
    _row(checks, "GPTQModel imports", True, f"version {gptqmodel.__version__}")


def run(data: Path, device: str, out: Path | None) -> int:
    checks: list[dict[str, Any]] = []
    if device == "cuda":
        check_preflight(checks)
    check_numerics(checks, data, device)
    check_gptqmodel(checks)
    width = max(len(row["check"]) for row in checks)
    for row in checks:
        print(f"{'ok  ' if row['ok'] else 'FAIL'}  {row['check']:<{width}}  {row['detail']}")
    if out:
        out.write_text(json.dumps(checks, indent=2))
    return 0 if all(row["ok"] for row in checks) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("prepare")
    made.add_argument("--gptq", type=Path, required=True)
    made.add_argument("--parent", type=Path, required=True)
    made.add_argument("--out", type=Path, default=ROOT / ".gpu-smoke")
    running = commands.add_parser("run")
    running.add_argument("--data", type=Path, default=ROOT / ".gpu-smoke")
    running.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    running.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.gptq, args.parent, args.out)
        return 0
    return run(args.data, args.device, args.json)


if __name__ == "__main__":
    sys.exit(main())
