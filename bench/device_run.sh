#!/usr/bin/env bash
# Run ON THE DEVICE MACHINE (the `run` tool, carry [".whl", ".gpu"]; prepare with device_prepare.sh).
# One call of about 6 minutes: the GPU rows of bench/README.md, warm and cold times, results to $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/XAIMedSlicer/Logic XAIMED_BENCH_INPUTS=$PWD/.gpu
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, monai, captum; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'monai', monai.__version__, 'captum', captum.__version__)"
B="python3 bench/bench_methods.py --device cuda --no-ig-curve --threads 4"
# Grad-CAM <= 50 ms and IG-32 <= 1 s at 128^3; SmoothGrad against MONAI (fp32 and bf16)
timeout 200 $B --sizes 128 --methods gradcam ig smoothgrad saliency
# MONAI's OcclusionSensitivity defaults (class targets now run batched full passes on a GPU)
timeout 90 $B --sizes 96 --methods occlusion_monai
# occlusion at equal windows against Captum
timeout 90 $B --sizes 128 --methods occlusion
# 512 x 512 x 300 CT, IG-16 through sliding windows (< 60 s)
timeout 60 python3 bench/bench_fullsize.py --device cuda --steps 16
mkdir -p "${OUT:-/tmp/out}" && cp bench/results/*.json "${OUT:-/tmp/out}/"
for f in bench/results/bench_methods_*.json; do python3 bench/bench_report.py "$f"; done
