"""GPTQ quantization with GPTQModel, run by `models.quantize` in the inference environment.

It runs there (`python -m models.gptq_job`), beside the vLLM that serves its output, because
GPTQModel pins numpy and pulls datasets, pyarrow and torchao, none of which the appliance's own
environment should carry. It reads the calibration texts from a JSON file and writes an HF
folder with `quantize_config.json`; the caller hashes it into the manifest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

# The last line it prints starts with this, followed by a JSON summary for the caller.
RESULT_PREFIX = "GPTQ_JOB_RESULT "


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m models.gptq_job")
    parser.add_argument("--source", type=Path, required=True, help="HF folder to quantize")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (must not exist)")
    parser.add_argument("--calibration", type=Path, required=True, help="JSON list of texts")
    parser.add_argument("--bits", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def _seed_everything(seed: int) -> None:
    import numpy
    import torch

    random.seed(seed)
    numpy.random.seed(seed)
    torch.manual_seed(seed)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # GPTQModel sizes its CPU worker pool from the core count and will not start with one
    # worker on a 2-core machine; two work there (measured), more where there are more cores.
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(max(2, ((os.cpu_count() or 2) + 1) // 2)))
    texts = json.loads(args.calibration.read_text())
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        print("the calibration file must hold a JSON list of texts", file=sys.stderr)
        return 2

    import gptqmodel
    from gptqmodel import GPTQModel, QuantizeConfig

    _seed_everything(args.seed)
    started = time.perf_counter()
    config = QuantizeConfig(bits=args.bits, group_size=args.group_size)
    model = GPTQModel.load(str(args.source), config)
    # One text per batch: peak memory stays that of one sequence, which a small host can afford.
    model.quantize(texts, batch_size=1)
    model.save(str(args.out))
    summary = {
        "seconds": round(time.perf_counter() - started, 1),
        "gptqmodel": gptqmodel.__version__,
        "bits": args.bits,
        "group_size": args.group_size,
        "texts": len(texts),
    }
    print(RESULT_PREFIX + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
