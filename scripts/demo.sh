#!/usr/bin/env bash
# The main job (README.md): install what is missing, build certfleet, bring up
# a local CA (pebble) and the sample customers' DNS (knot, unbound) on
# loopback, and run `certfleet run` over the sample fleet on the embedded
# defaults: the validation zone is served by the run itself. Prints the
# summary, the fleet's status, the leftover report and the metrics.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/deps.sh >/dev/null
bash scripts/build.sh "$top/build" >/dev/null
cf="$top/build/cli/certfleet"
state=${CERTFLEET_STATE:-$top/demo-state}

"$cf" version
python3 scripts/demo.py "$cf" "$state"
