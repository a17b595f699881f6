#!/usr/bin/env bash
# One command on a fresh machine: set up, prepare and start the model, ingest the sample
# corpus, and answer a question with numbered citations. vLLM keeps running afterwards so you
# can go on asking; stop it with `.venv/bin/appliance models stop`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
appliance=.venv/bin/appliance
$appliance models prepare
$appliance models serve
$appliance ingest samples/corpus
$appliance ask "${1:-What telephone extension is the incident bridge on?}"
echo
echo "Ask more with: $appliance ask \"...\"   Stop the model with: $appliance models stop"
