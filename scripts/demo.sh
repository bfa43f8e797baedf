#!/usr/bin/env bash
# The main job (README.md): build certfleet and run it on the embedded
# defaults with a sample fleet.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/deps.sh >/dev/null
bash scripts/build.sh "$top/build" >/dev/null
cf="$top/build/cli/certfleet"
state=${CERTFLEET_STATE:-$top/demo-state}
export CERTFLEET_STATE=$state

"$cf" version
"$cf" init --validation-zone acme.cdn.example.test --directory https://127.0.0.1:14000/dir \
    --cdn-target cdn.example.test --email certs@cdn.example.test
# The sample has a few bad lines on purpose: each is reported with its line number.
"$cf" import examples/fleet.csv || true
echo "-- the CNAMEs customers must create:"
"$cf" instructions --format csv
echo "-- fleet status:"
"$cf" status
"$cf" status --json
