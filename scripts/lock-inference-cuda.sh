#!/usr/bin/env bash
# Resolves requirements/inference-cuda.in into requirements/inference-cuda.lock: the GPU host's
# inference environment, every package pinned with its hashes, wheels only.
#   bash scripts/lock-inference-cuda.sh      (needs the package index; no GPU)
# The platform is the oldest the wheels allow: glibc 2.31 (llguidance's wheels need it; Ubuntu
# 20.04, Debian 11, RHEL 9 and newer), x86_64, CPython 3.11 (the appliance's Python).
# tests/ops/test_inference_cuda_lock.py checks the lock against the index the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv-ops/bin/uv
[ -x "$uv" ] || { echo "run scripts/setup.sh first (it installs uv into .venv-ops)" >&2; exit 2; }
{
    sed -n '1,/^$/p' requirements/inference-cuda.lock.header
    "$uv" pip compile requirements/inference-cuda.in --no-config --no-header --no-build \
        --python-version 3.11 --python-platform x86_64-manylinux_2_31 \
        --generate-hashes --annotation-style line
} > requirements/inference-cuda.lock.new
mv requirements/inference-cuda.lock.new requirements/inference-cuda.lock
echo "requirements/inference-cuda.lock: $(grep -c '==' requirements/inference-cuda.lock) packages"
