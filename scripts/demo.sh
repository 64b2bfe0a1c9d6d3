#!/usr/bin/env bash
# Set up, then explain a synthetic lesion inserted into the MNI152 template (no download needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/xaimed demo --out "${1:-demo-output}" --force
