#!/usr/bin/env bash
# The MNIST 3/5/8 checkpoint trajectory (docs/sweeps.md#trajectories-over-training) from one command:
#   1. `rdx-trajectory run`: every saved checkpoint of the MNIST 3/5/8 training run but the last (31 of
#      32) compared with the final one, RDX and all eight baselines, one Hydra multirun (joblib, two jobs
#      at a time); the training run is trained first when it is missing; finished jobs are skipped
#      (resume), features come from the cache,
#   2. `rdx-trajectory FOLDER`: trajectory.csv, trajectory.png, top_concepts.png (+ a W&B run),
#   3. `rdx-table FOLDER`: the tables and the sweep report with its Trajectory section,
#   4. summarise.py: results.md here (the reading's numbers) and a copy of the two figures.
# Usage (from anywhere; `make study-trajectory` installs first):
#   experiments/mnist_835_trajectory/run.sh [extra Hydra overrides for every job]
# SWEEP_DIR=... picks the output folder (default outputs/mnist_835_trajectory/<date_time>); N_JOBS=...
# the jobs at a time (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
SWEEP_DIR=${SWEEP_DIR:-outputs/mnist_835_trajectory/$(date +%Y-%m-%d_%H-%M-%S)}
N_JOBS=${N_JOBS:-2}
started=$(date +%s)
"$BIN/rdx-trajectory" run "hydra.sweep.dir=$SWEEP_DIR" hydra/launcher=joblib "hydra.launcher.n_jobs=$N_JOBS" \
  features.progress=false "$@"
swept=$(( $(date +%s) - started ))
"$BIN/rdx-table" "$SWEEP_DIR"
"$BIN/rdx-trajectory" "$SWEEP_DIR"
elapsed=$(( $(date +%s) - started ))
"$BIN/python" experiments/mnist_835_trajectory/summarise.py "$SWEEP_DIR" --swept "$swept" --elapsed "$elapsed"
echo "trajectory: sweep $swept s, $elapsed s in total; files in $SWEEP_DIR/trajectory/" \
  | tee "$SWEEP_DIR/trajectory/elapsed.txt"
