#!/usr/bin/env bash
# Set up, then run the linters and the whole test suite (reads the real data in ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check .
ruff format --check .
python -m pytest -q -p no:cacheprovider Testing "$@"
