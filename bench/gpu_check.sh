#!/usr/bin/env bash
# One GPU session: install the missing wheels, check CPU/CUDA equivalence, time the accuracy
# benchmark on CUDA, then spend the remaining time on a validation-only grid search.
# Usage (on the GPU machine, repository root): bash bench/gpu_check.sh SPLITS_DIR OUT_DIR GRID_SECONDS
set -uo pipefail
splits=$1; out=$2; grid_seconds=${3:-300}
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
fi
nvidia-smi --query-gpu=name,memory.total --format=csv
timeout 100 python3 bench/device_equivalence.py --splits "$splits" --out "$out/equivalence.json" --epochs 2
timeout 200 python3 bench/accuracy.py --splits "$splits" --model diffrec --seeds 1 --device cuda --out "$out/accuracy-cuda.json"
timeout "$grid_seconds" python3 bench/grid.py --splits "$splits" --grid configs/grids/diffrec.yaml --out "$out/grid.jsonl" \
  --sample 120 --seed 0 --workers 8 --threads 2 --device cuda
exit 0
