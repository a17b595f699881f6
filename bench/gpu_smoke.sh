#!/usr/bin/env bash
# The GPU smoke check, on a lent NVIDIA machine with PyTorch but no vLLM and no network
# (bench/gpu_smoke.py says what each check shows). First, on a machine with a GPTQ version:
#   .venv/bin/python bench/gpu_smoke.py prepare --gptq MODELS/VERSION --parent MODELS/PARENT
# then carry .gpu-smoke with the repository and run this there. Under 8 minutes; exit 1 if a
# check fails. Rows also go to $OUT/gpu_smoke.json when OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .gpu-smoke/layers.safetensors ]; then
    echo "no .gpu-smoke/layers.safetensors: run bench/gpu_smoke.py prepare first" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.free,memory.total --format=csv
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
timeout 420 python3 bench/gpu_smoke.py run ${OUT:+--json "$OUT/gpu_smoke.json"}
