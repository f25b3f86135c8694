"""The compared models of a comparison: checking their sources, choosing a trained checkpoint, loading.

A model config (``conf/model/*.yaml``) names a network for the registry (:mod:`rdx.models.registry`), or
(``kind: precomputed``) a feature file. A network with a ``training`` section and no weights file is
trained on demand by the comparison's training stage first (:mod:`rdx.training.on_demand`); its
``select`` section then picks the checkpoint (:func:`select_trained_weights`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rdx.models.checkpoints import read_index, select_checkpoint
from rdx.models.registry import LoadedNetwork, ModelSourceError, check_weights, load_network

# The key under which each kind keeps its weights file in a model config.
WEIGHTS_KEY = {
    "convnet": "checkpoint",
    "torchvision": "weights_file",
    "timm": "checkpoint",
    "open_clip": "checkpoint",
}


@dataclass
class LoadedModel:
    """One compared model: a network ready for extraction, or (``kind`` "precomputed") a feature file.

    ``info`` is the model's part of the run record (name, kind, layer, pooling, weights, training).
    """

    name: str
    kind: str
    info: dict[str, Any]
    loaded: LoadedNetwork | None = None

    def describe(self) -> str:
        """The model's name, with its validation accuracy when it has one (figure titles)."""
        accuracy = self.info.get("val_acc")
        return self.name if accuracy is None else f"{self.name} ({100 * accuracy:.1f} % val)"


def display_name(spec: Mapping[str, Any]) -> str:
    """What figures call a model: its ``label``, else its ``name``, else its kind."""
    return spec.get("label") or spec.get("name") or spec.get("kind")


def weights_key(spec: Mapping[str, Any]) -> str:
    return WEIGHTS_KEY.get(spec.get("kind"), "checkpoint")


def needs_training(spec: Mapping[str, Any]) -> bool:
    """A network with a ``training`` section and no weights file: trained by ``rdx-train`` first."""
    return (
        spec.get("kind") != "precomputed"
        and spec.get("training") is not None
        and not spec.get(weights_key(spec))
    )


def check_model_source(spec: Mapping[str, Any], config_key: str) -> None:
    """Fail at once, before any model is built, when a model's weights or feature file are missing
    (:class:`ModelSourceError` naming the file and the override). Models trained on demand pass."""
    if spec.get("kind") == "precomputed":
        if not Path(spec["file"]).expanduser().is_file():
            raise ModelSourceError(
                f"precomputed features {spec.get('name')!r}: file {spec['file']} does not exist. Point at a "
                f"local copy with {config_key}.file=/path/to/features.npy"
            )
    elif not needs_training(spec):
        check_weights(spec, config_key)


def select_trained_weights(spec: Mapping[str, Any], run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The spec with the checkpoint its ``select`` section picks from a training run, and the choice.

    Returns:
        (spec with its weights key set, {training_run, selection, step, epoch, val_acc}).
    """
    select = spec["select"]
    row = select_checkpoint(
        read_index(run_dir),
        select["strategy"],
        select.get("target"),
        select.get("min_acc"),
        select.get("max_acc"),
        step=select.get("step"),
    )
    chosen = {**spec, weights_key(spec): row["path"]}
    info = {
        "training_run": str(run_dir),
        "selection": select["strategy"],
        "step": int(row["step"]),
        "epoch": int(row["epoch"]),
        "val_acc": float(row["val_acc"]),
    }
    return chosen, info


def load_model(
    spec: Mapping[str, Any], config_key: str, seed: int = 0, trained: Mapping[str, Any] | None = None
) -> LoadedModel:
    """Load one compared model through the model registry (:func:`rdx.models.registry.load_network`).

    ``kind: precomputed`` models are feature files (``file``, optional ``exclude_columns``, ``key``),
    read when features are needed. Random-init networks are seeded with ``seed``. ``trained`` is the
    checkpoint choice of :func:`select_trained_weights` for a model trained on demand. A spec's ``depth``
    (the position of its layer in a layer trajectory's list, conf/layer_trajectory/) is kept in ``info``.
    """
    name = display_name(spec)
    kind = spec.get("kind")
    if kind == "precomputed":
        info = {
            "name": name,
            "kind": kind,
            "file": spec["file"],
            "exclude_columns": list(spec.get("exclude_columns") or []),
            "key": spec.get("key"),
        }
        return LoadedModel(name, kind, info)
    if trained is not None:
        extra: dict[str, Any] = dict(trained)
    else:
        extra = {"selection": f"explicit {weights_key(spec)}"} if spec.get(weights_key(spec)) else {}
    torch.manual_seed(seed)  # random-init networks are the same in every run
    loaded = load_network(spec, config_key)
    info = {
        **loaded.info,
        **extra,
        "name": name,
        "layer": loaded.default_layer,
        "pooling": loaded.default_pooling,
        "checkpoint": loaded.info.get("weights_file"),
    }
    if spec.get("depth") is not None:
        info["depth"] = int(spec["depth"])
    return LoadedModel(name, kind, info, loaded)
