#!/usr/bin/env bash
# One command on a fresh machine: set up, lint, and run every test (CI runs exactly this).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not e2e"` to skip the slow ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# The import rules in pyproject.toml ([tool.importlinter]): who may import whom.
.venv-ops/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
