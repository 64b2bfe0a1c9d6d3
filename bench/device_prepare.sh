#!/usr/bin/env bash
# Run HERE, before lending a GPU: what the device machine lacks, in two ignored folders.
#   .whl/  MONAI and Captum wheels (the device has torch, numpy and psutil, and no network)
#   .gpu/  the benchmark inputs as tensors (the device has neither ../shared nor SimpleITK)
# Then: the `run` tool with carry [".whl", ".gpu"] and command `bash bench/device_run.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p .whl .gpu
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --platform manylinux_2_28_x86_64 -d .whl monai==1.6.1 captum==0.9.0
PYTHONPATH=bench:XAIMedSlicer/Logic "$PY" - <<'PY'
import torch
from bench_setup import make_input
for n in (64, 96, 128):
    torch.save(make_input(n), f".gpu/ct_{n}.pt")
print("saved .gpu/ct_{64,96,128}.pt")
PY
du -sh .whl .gpu
