#!/usr/bin/env bash
# Tune one model on validation, then measure the chosen configuration with 3 seeds (paper protocol).
#
#   bench/search_then_measure.sh SPLITS MODEL RESULTS_DIR SAMPLE SEARCH_SECONDS MEASURE_SECONDS [DEVICE]
#
# 1. bench/grid.py runs a seeded random subset of SAMPLE trials of configs/grids/MODEL.yaml (one seed
#    each, validation only), stopped after SEARCH_SECONDS; finished trials stay in the .jsonl.
# 2. The trial with the best validation Recall@20 becomes RESULTS_DIR/<dataset>-MODEL.yaml (when no trial
#    finished in time, the shipped configs/<dataset>/MODEL.yaml is measured instead, and the log says so).
# 3. bench/accuracy.py measures it with seeds s, s+1, s+2 as three parallel processes, merged by
#    bench/merge_seeds.py into RESULTS_DIR/<dataset>-MODEL.json (+ .md).
set -u
splits=$1 model=$2 results=$3 sample=$4 search_s=$5 measure_s=$6 device=${7:-auto}
py=${PYTHON:-python3}
dataset=$(basename "$(cd "$splits" && pwd)")
mkdir -p "$results"
grid_out="$results/grid-$dataset-$model.jsonl"
timeout "$search_s" "$py" bench/grid.py --splits "$splits" --grid "configs/grids/$model.yaml" --out "$grid_out" \
    --sample "$sample" --workers 2 --threads 1 --device "$device"
touch "$grid_out"
"$py" - "$grid_out" "$results/$dataset-$model.yaml" "configs/$dataset/$model.yaml" <<'PY' || exit 1
import json, sys, yaml
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if not rows:
    import shutil
    shutil.copy(sys.argv[3], sys.argv[2])
    print(f"no trial finished in {sys.argv[1]}: measuring the shipped {sys.argv[3]}")
    sys.exit(0)
best = max(rows, key=lambda r: r["valid"]["recall@20"])
header = f"# best of {len(rows)} trials by validation Recall@20 = {best['valid']['recall@20']:.4f} (trial {best['key']})\n"
open(sys.argv[2], "w").write(header + yaml.safe_dump(best["config"], sort_keys=False))
print(header.strip())
PY
seed=$("$py" -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['training']['seed'])" "$results/$dataset-$model.yaml")
pids=()
for i in 0 1 2; do
    sed "s/^  seed: $seed\$/  seed: $((seed + i))/" "$results/$dataset-$model.yaml" > "$results/.seed$i-$model.yaml"
    timeout "$measure_s" "$py" bench/accuracy.py --splits "$splits" --model "$model" --config "$results/.seed$i-$model.yaml" \
        --seeds 1 --threads 1 --device "$device" --out "$results/.seed$i-$dataset-$model.json" > "$results/.seed$i-$model.log" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
"$py" bench/merge_seeds.py --out "$results/$dataset-$model.json" "$results"/.seed{0,1,2}-"$dataset-$model".json
