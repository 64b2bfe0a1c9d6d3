#!/usr/bin/env bash
# Create .venv with the pinned working set (CPU PyTorch 2.13.0) and install XAIMedSlicerLib.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first, pinned: a bare "torch" would pull a multi-GB CUDA build
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
# torchxrayvision's architectures, without its torchvision requirement (PyPI's torchvision pulls a CUDA
# torch and cannot run beside the CPU 2.13.0 build; XAIMedSlicerLib.model.xrv imports it without)
python -m pip install -q --no-deps "torchxrayvision==1.5.7"
# the browser tests drive Debian's Chromium (Playwright's own browser download cannot work offline)
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    (sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive sudo apt-get install -y -qq chromium) >/dev/null
  fi
fi
python -c "import XAIMedSlicerLib, torch, monai, captum, slicer; print('XAIMedSlicerLib', XAIMedSlicerLib.__version__, '| torch', torch.__version__, '| monai', monai.__version__)"
