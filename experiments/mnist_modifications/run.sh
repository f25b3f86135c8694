#!/usr/bin/env bash
# The paper's known-difference study (RDX_METHOD.md section 4) from one command:
#   1. trains every model that is missing (mnist, m35, m49, hflip, hflip_nl, vflip, vflip_nl),
#   2. runs the five comparisons, RDX and all eight baselines each, as one Hydra multirun,
#   3. writes the benchmark tables and the BSR box plot (rdx-table) into <sweep dir>/table/.
# Usage (from anywhere; `make study-mnist-modifications` installs first):
#   experiments/mnist_modifications/run.sh [extra Hydra overrides for every comparison]
# SWEEP_DIR=... picks the output folder (default outputs/mnist_modifications/<date_time>).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
COMPARISONS=m35_vs_mnist,m49_vs_mnist,m35_vs_m49,hflip_vs_hflip_nl,vflip_vs_vflip_nl
SWEEP_DIR=${SWEEP_DIR:-outputs/mnist_modifications/$(date +%Y-%m-%d_%H-%M-%S)}
started=$(date +%s)
"$BIN/rdx-compare" --multirun "experiment=$COMPARISONS" \
  "hydra.sweep.dir=$SWEEP_DIR" 'hydra.sweep.subdir=${task_name}' \
  features.progress=false model_a.training.trainer.enable_progress_bar=false \
  model_b.training.trainer.enable_progress_bar=false "$@"
"$BIN/rdx-table" "$SWEEP_DIR" --columns "$COMPARISONS"
elapsed=$(( $(date +%s) - started ))
echo "mnist_modifications: $elapsed s in total; tables in $SWEEP_DIR/table/" | tee "$SWEEP_DIR/table/elapsed.txt"
