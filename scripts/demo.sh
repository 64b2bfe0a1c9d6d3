#!/usr/bin/env bash
# Set up, explain a synthetic lesion inserted into the MNI152 template (no download needed), then serve
# the web viewer on it (Ctrl+C stops it; XAIMED_NO_VIEW=1 skips the viewer).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${XAIMED_NO_VIEW:-0}" = 1 ]; then
  .venv/bin/xaimed demo --out "${1:-demo-output}" --force
else
  .venv/bin/xaimed demo --out "${1:-demo-output}" --force --view --port "${XAIMED_PORT:-8080}"
fi
