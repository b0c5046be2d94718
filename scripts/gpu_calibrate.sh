#!/usr/bin/env bash
# Calibrate and validate tokenfab on this machine's GPU in one run (under 9 minutes on an H100/H200);
# every JSON output goes to OUTDIR. See benchmarks/gpu_calibrate.py for what it measures and writes (about a
# minute on an H100), then benchmarks/gpu_moe_layers.py: MoE/MLA layer steps with NVML power, in OUTDIR/moe.
#
#   scripts/gpu_calibrate.sh OUTDIR [--device cuda|cpu] [--hardware ID] [--model ID]
#
# Needs python3 (3.10+) with torch (a CUDA build), numpy, scipy, pydantic and pyyaml. On a machine
# without network, wheels for whichever of the last four are missing can be put in ./wheels first.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: scripts/gpu_calibrate.sh OUTDIR [--device cuda|cpu] [--hardware ID] [--model ID]}"
shift
PY="${PYTHON:-python3}"
if ! "$PY" -c "import numpy, scipy, pydantic, yaml" 2>/dev/null && [ -d wheels ]; then
  "$PY" -m pip install --quiet --no-index --find-links wheels numpy scipy pydantic pyyaml
fi
"$PY" -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'python', sys.version.split()[0])"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
timeout 240 "$PY" benchmarks/gpu_calibrate.py "$OUT" "$@"
DEVICE=cuda
for ((i = 1; i <= $#; i++)); do [ "${!i}" = "--device" ] && j=$((i + 1)) && DEVICE="${!j}"; done
exec timeout 290 "$PY" benchmarks/gpu_moe_layers.py "$OUT/moe" --device "$DEVICE" --budget-s 270
