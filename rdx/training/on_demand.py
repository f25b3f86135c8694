"""The comparison's training stage: a compared model whose checkpoints do not exist yet is trained first.

A model config with a ``training`` section and no weights file (``conf/model/mnist_strong.yaml``) names
the ``rdx-train`` run that makes its checkpoints; :func:`train_missing_models` trains each such run once
(reusing a finished one, keyed by its settings) and picks the checkpoint its ``select`` section asks for.
:func:`trained_models` makes the same choice from finished runs only, never training (``rdx-report``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rdx.models.loading import needs_training, select_trained_weights
from rdx.training.train import ensure_trained, trained_run_dir

log = logging.getLogger(__name__)


class MissingTrainingRun(FileNotFoundError):
    """A model trained on demand whose finished training run is not in the checkpoint folder."""


def train_missing_models(
    specs: Mapping[str, Mapping[str, Any]], checkpoint_root: Path
) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """For each side's model spec: the spec to load and, for a model trained on demand, its
    checkpoint choice (training run, step, validation accuracy); None for the others."""
    prepared: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    for side, spec in specs.items():
        if not needs_training(spec):
            prepared[side] = (dict(spec), None)
            continue
        started = time.perf_counter()
        run_dir = ensure_trained(spec["training"], Path(checkpoint_root))
        prepared[side] = select_trained_weights(spec, run_dir)
        chosen = prepared[side][1]
        log.info(
            "model %s: checkpoint step %d (val acc %.4f) of %s, ready in %.1f s",
            side,
            chosen["step"],
            chosen["val_acc"],
            run_dir,
            time.perf_counter() - started,
        )
    return prepared


def trained_models(
    specs: Mapping[str, Mapping[str, Any]], checkpoint_root: Path
) -> dict[str, tuple[dict[str, Any], dict[str, Any] | None]]:
    """What :func:`train_missing_models` returns, from finished training runs only: nothing is trained.

    Raises:
        MissingTrainingRun: a model trained on demand has no finished run below ``checkpoint_root``.
    """
    prepared: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    for side, spec in specs.items():
        if not needs_training(spec):
            prepared[side] = (dict(spec), None)
            continue
        run_dir = trained_run_dir(spec["training"], Path(checkpoint_root))
        if not (run_dir / "index.json").is_file():
            raise MissingTrainingRun(
                f"model {side}: its training run {run_dir} is missing or unfinished (no index.json); "
                f"rdx-compare trains it, or point paths.checkpoints at the folder that holds it"
            )
        prepared[side] = select_trained_weights(spec, run_dir)
    return prepared
