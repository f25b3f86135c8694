#!/usr/bin/env bash
# The calibration study of the per-concept significance test (docs/significance.md) from one command:
#   1. runs eight comparisons as one Hydra multirun, RDX and all eight baselines each, significance on
#      (conf/significance/default.yaml): the two seed-twin pairs (no designed difference), strong vs
#      expert on MNIST 3/5/8, and the five planted comparisons; missing models are trained on demand,
#   2. writes the tables (rdx-table: significant.csv, stability.csv, ...) into <sweep dir>/table/,
#   3. writes experiments/significance/results.md from those tables and each run's results.json.
# Usage (from anywhere; `make study-significance` installs first):
#   experiments/significance/run.sh [extra Hydra overrides for every comparison]
# SWEEP_DIR=... picks the output folder (default outputs/significance/<date_time>); RESULTS=... the
# markdown file written at the end (default experiments/significance/results.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
COMPARISONS=mnist_835_seed_twins,mnist_seed_twins,mnist_835,m35_vs_mnist,m49_vs_mnist,m35_vs_m49,hflip_vs_hflip_nl,vflip_vs_vflip_nl
SWEEP_DIR=${SWEEP_DIR:-outputs/significance/$(date +%Y-%m-%d_%H-%M-%S)}
RESULTS=${RESULTS:-experiments/significance/results.md}
started=$(date +%s)
"$BIN/rdx-compare" --multirun "experiment=$COMPARISONS" \
  "hydra.sweep.dir=$SWEEP_DIR" 'hydra.sweep.subdir=${task_name}' \
  features.progress=false model_a.training.trainer.enable_progress_bar=false \
  model_b.training.trainer.enable_progress_bar=false "$@"
"$BIN/rdx-table" "$SWEEP_DIR" --columns "$COMPARISONS"
elapsed=$(( $(date +%s) - started ))
"$BIN/python" experiments/significance/summarise.py "$SWEEP_DIR" --columns "$COMPARISONS" \
  --elapsed "$elapsed" --output "$RESULTS"
echo "significance: $elapsed s in total; tables in $SWEEP_DIR/table/, summary in $RESULTS" \
  | tee "$SWEEP_DIR/table/elapsed.txt"
