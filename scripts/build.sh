#!/usr/bin/env bash
# Configure and build one flavour of certfleet.
#   scripts/build.sh [BUILD_DIR] [extra cmake options...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$top/build}
shift || true
cmake -S "$top" -B "$dir" -DCF_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
