#!/usr/bin/env bash
# The GPU image's entrypoint: vLLM (after its model's manifest check) and the appliance's API in
# one container. When either stops, the other is stopped and the container exits with the
# first one's status, so Docker's restart policy (or the orchestrator) starts both again.
# With arguments it runs them instead, e.g. `docker run IMAGE appliance doctor`.
set -euo pipefail

if [ "$#" -gt 0 ]; then
    exec "$@"
fi

appliance=/opt/appliance/current/.venv/bin/appliance
"$appliance" models serve --foreground &
inference=$!
# The API answers at once; until vLLM has loaded the model, /healthz says so and questions get
# the retrieved passages (answering.when_inference_fails).
"$appliance" serve &
api=$!

stop() {
    kill -TERM "$inference" "$api" 2>/dev/null || true
}
trap stop TERM INT

set +e
wait -n "$inference" "$api"
status=$?
stop
wait
exit "$status"
