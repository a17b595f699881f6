"""GPTQ 4-bit matmul kernels (GPTQModel) against fp16 on an NVIDIA GPU, for Mistral-7B's layers.

What an NVIDIA host can tell without vLLM: how fast each GPTQModel kernel multiplies by a
4-bit weight compared with a plain fp16 matmul, at Mistral-7B's linear-layer shapes and a few
batch sizes (1 token: one user decoding; 1024: a prompt being read), and how far its output
is from fp16's. Run it with the inference environment, where GPTQModel is installed:

    .venv-inference/bin/python bench/gptq_kernels.py            # CUDA; exits 0 without one
    .venv-inference/bin/python bench/gptq_kernels.py --device cpu --kernels torch --tokens 1,16

Weights are random and quantized round-to-nearest (sym, group 128), enough for speed. The error
column is the largest difference from fp16's output over fp16's largest value: RTN 4-bit on
these weights gives about 0.12 with the torch kernel (measured on CPU); a kernel far above that
computes something else. Prints one table.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable

# Mistral-7B-Instruct's linear layers as (in_features, out_features).
MISTRAL_SHAPES = {
    "q_proj/o_proj": (4096, 4096),
    "k_proj/v_proj": (4096, 1024),
    "gate/up_proj": (4096, 14336),
    "down_proj": (14336, 4096),
}
# GPTQModel's kernel classes by the names this script takes.
KERNELS = {
    "torch": ("gptqmodel.nn_modules.qlinear.torch", "TorchLinear"),
    "marlin": ("gptqmodel.nn_modules.qlinear.marlin", "MarlinLinear"),
    "exllamav2": ("gptqmodel.nn_modules.qlinear.exllamav2", "ExllamaV2Linear"),
    "machete": ("gptqmodel.nn_modules.qlinear.machete", "MacheteLinear"),
}
BITS, GROUP = 4, 128


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--kernels", default="torch,marlin,exllamav2,machete")
    parser.add_argument("--tokens", default="1,16,128,1024", help="rows of the activation")
    parser.add_argument("--shapes", default=",".join(MISTRAL_SHAPES))
    parser.add_argument("--repeat", type=int, default=50)
    return parser.parse_args()


def _timer(device: str) -> Callable[[Callable[[], object], int], float]:
    import torch

    def seconds(step: Callable[[], object], repeat: int) -> float:
        for _ in range(3):  # warm-up: kernel selection, workspace allocation, caches
            step()
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(repeat):
            step()
        if device == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - started) / repeat

    return seconds


def _kernel(kind: str) -> type:
    module, name = KERNELS[kind]
    return getattr(importlib.import_module(module), name)


def _layer(cls: type, in_features: int, out_features: int):
    return cls(
        bits=BITS,
        group_size=GROUP,
        sym=True,
        desc_act=False,
        in_features=in_features,
        out_features=out_features,
        bias=False,
        register_buffers=True,
    )


def _quantized(kind: str, linear, device: str):
    """`linear` as GPTQModel kernel `kind`: RTN sym 4-bit weights in GPTQ's checkpoint format
    (packed by GPTQModel's torch kernel), which the other kernels convert in post_init() as
    they do when loading a saved GPTQ model."""
    import torch

    weight = linear.weight.detach().float().cpu()
    out_features, in_features = weight.shape
    groups = weight.view(out_features, in_features // GROUP, GROUP)
    maxq = 2**BITS - 1
    scales = (groups.abs().amax(-1) / (maxq // 2)).clamp(min=1e-8)  # [out, groups]
    zeros = torch.full_like(scales, (maxq + 1) // 2)
    g_idx = torch.arange(in_features, dtype=torch.int32) // GROUP
    packed = _layer(_kernel("torch"), in_features, out_features)
    packed.pack(linear.cpu(), scales, zeros, g_idx)
    layer = packed if kind == "torch" else _layer(_kernel(kind), in_features, out_features)
    if layer is not packed:
        layer.load_state_dict(packed.state_dict(), strict=False)
    layer = layer.to(device)
    layer.post_init()
    linear.to(device)
    return layer.eval()


def main() -> int:
    args = _arguments()
    try:
        import torch
    except ImportError:
        print("torch is not installed in this environment: run it with .venv-inference/bin/python")
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "no CUDA device here (torch.cuda.is_available() is False): this bench measures "
            "GPTQ kernels on an NVIDIA GPU; nothing measured. --device cpu runs the torch kernel."
        )
        return 0
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")
    try:
        import gptqmodel  # noqa: F401
    except ImportError:
        print("GPTQModel is not installed here: run it with .venv-inference/bin/python")
        return 0

    device = args.device
    where = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    capability = ".".join(map(str, torch.cuda.get_device_capability())) if device == "cuda" else "-"
    seconds = _timer(device)
    tokens = [int(n) for n in args.tokens.split(",")]
    print(f"device: {where} (compute capability {capability}), torch {torch.__version__}")
    print(f"GPTQ {BITS}-bit, group {GROUP}, sym; times are the mean of {args.repeat} calls")
    header = f"{'layer':<14} {'in x out':>12} {'tokens':>6} {'kernel':<10} {'ms':>8}"
    print(header + f" {'vs fp16':>8} {'max rel err':>11}")
    torch.manual_seed(0)
    dtype = torch.float16 if device == "cuda" else torch.bfloat16
    for shape_name in args.shapes.split(","):
        in_features, out_features = MISTRAL_SHAPES[shape_name]
        linear = torch.nn.Linear(in_features, out_features, bias=False, dtype=dtype)
        torch.nn.init.normal_(linear.weight, std=0.02)
        layers = {}
        for kind in args.kernels.split(","):
            try:
                layers[kind] = _quantized(kind, linear, device)
            except Exception as error:  # a kernel this GPU or build lacks: say so, go on
                print(f"{shape_name:<14} {'':>12} {'':>6} {kind:<10} unavailable: {error}")
        linear.to(device)
        for rows in tokens:
            x = torch.randn(rows, in_features, dtype=dtype, device=device)
            with torch.inference_mode():
                reference = linear(x).float()
                base = seconds(lambda x=x, linear=linear: linear(x), args.repeat)
                size = f"{in_features}x{out_features}"
                dims = f"{shape_name:<14} {size:>12} {rows:>6}"
                print(f"{dims} {dtype_name(dtype):<10} {base * 1e3:8.3f} {'1.00x':>8} {'-':>11}")
                for kind, layer in layers.items():
                    x_kernel = x.to(torch.float16) if device == "cuda" else x
                    output = layer(x_kernel).float()
                    error = ((output - reference).abs().max() / reference.abs().max()).item()
                    took = seconds(lambda x=x_kernel, layer=layer: layer(x), args.repeat)
                    ratio = f"{base / took:.2f}x"
                    print(f"{dims} {kind:<10} {took * 1e3:8.3f} {ratio:>8} {error:11.4f}")
    print("vs fp16 above 1.00x: the 4-bit kernel is faster (memory-bound decoding favours it).")
    return 0


def dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


if __name__ == "__main__":
    sys.exit(main())
