"""Checkpoint files, the run index that lists them, and choosing one checkpoint from it.

A checkpoint is a small ``torch.save`` dict: ``state_dict`` (of the trained network), ``network`` (what
rebuilds it), ``step``, ``epoch``, ``val_acc``, ``val_loss``. For the ConvNet, ``network`` holds its
constructor arguments ``{num_classes, channels}``; for a fine-tuned torchvision model it is
``{kind: "torchvision", name, weights, num_classes, input_size}``, and the network is rebuilt with
:func:`rdx.models.registry.load_network` (see :func:`checkpoint_model_spec`). A run directory holds
the checkpoints plus ``index.json`` / ``index.csv`` with one row per checkpoint:
``{step, epoch, val_acc, kind: "dense" | "epoch_end", path}`` (path relative to the run directory).
"""

from __future__ import annotations

import csv
import json
import logging
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rdx.models.convnet import ConvNet

logger = logging.getLogger(__name__)

INDEX_COLUMNS = ("step", "epoch", "val_acc", "kind", "path")
CHECKPOINT_STRATEGIES = ("final", "closest_val_acc", "step", "next")
TRAJECTORY_MODES = ("vs_final", "consecutive")
_HOW_TO_TRAIN = (
    "Train it first with `rdx-train` (it writes the checkpoints and index.json into the run directory)."
)


class CheckpointSelectionError(ValueError):
    """No checkpoint satisfies the selection (strategy or accuracy range)."""


class UnreadableWeightsError(ValueError):
    """A weights or checkpoint file exists but cannot be read safely (truncated, corrupted, not torch)."""


def read_torch_file(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load`` of tensors and plain containers only (``weights_only``), on the CPU.

    Raises:
        UnreadableWeightsError: the file is truncated, corrupted or holds other objects; the message
            names the file (torch's own message would advise loading unsafely, which we never do).
    """
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise UnreadableWeightsError(
            f"{what} {path} cannot be read safely: it is not a torch file of tensors (corrupted, or it "
            "holds other objects). Point at a checkpoint written by torch.save of a state dict"
        ) from error
    except Exception as error:  # torch's safe unpickler fails on garbage with any error type
        raise UnreadableWeightsError(
            f"{what} {path} cannot be read: it is truncated or corrupted ({type(error).__name__}). Write or "
            "download it again"
        ) from error


def save_checkpoint(
    path: Path,
    net: nn.Module,
    network: Mapping[str, Any],
    step: int,
    epoch: int,
    val_acc: float,
    val_loss: float,
) -> None:
    """Write one checkpoint of ``net`` (tensors copied to CPU, contiguous); ``network`` rebuilds it."""
    state_dict = {
        name: tensor.detach().cpu().contiguous().clone() for name, tensor in net.state_dict().items()
    }
    payload = {
        "state_dict": state_dict,
        "network": dict(network),
        "step": int(step),
        "epoch": int(epoch),
        "val_acc": float(val_acc),
        "val_loss": float(val_loss),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def _read_network_spec(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The payload of an ``rdx-train`` checkpoint and its ``network`` entry."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist. {_HOW_TO_TRAIN}")
    payload = read_torch_file(path)
    if not isinstance(payload, Mapping) or not isinstance(payload.get("network"), Mapping):
        raise ValueError(f"{path} is not a checkpoint written by rdx-train (no 'network' entry)")
    return payload, dict(payload["network"])


def checkpoint_model_spec(path: str | Path) -> dict[str, Any]:
    """The :func:`rdx.models.registry.load_network` spec that rebuilds a checkpoint's network.

    ConvNet: ``{kind: "convnet", checkpoint: path}``; fine-tuned torchvision model: ``{kind:
    "torchvision", name, weights, weights_file: path, input_size}`` (the registry reads the file's
    ``state_dict`` and builds the head size it finds there).
    """
    path = Path(path)
    _, network = _read_network_spec(path)
    kind = network.get("kind", "convnet")
    if kind == "convnet":
        return {"kind": "convnet", "checkpoint": str(path)}
    if kind == "torchvision":
        return {
            "kind": "torchvision",
            "name": network["name"],
            "weights": network.get("weights"),
            "weights_file": str(path),
            "input_size": network.get("input_size"),
        }
    raise ValueError(f"{path}: unknown network kind {kind!r} in the checkpoint")


def load_convnet_checkpoint(path: str | Path) -> ConvNet:
    """Rebuild the :class:`ConvNet` stored in a checkpoint written by ``rdx-train``; on CPU, in eval mode.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the checkpoint holds another kind of network (a fine-tuned torchvision model).
    """
    path = Path(path)
    payload, network = _read_network_spec(path)
    kind = network.get("kind", "convnet")
    if kind != "convnet":
        raise ValueError(
            f"{path} holds a fine-tuned {kind} network ({network.get('name')}), not a ConvNet; load it "
            f"with rdx.models.registry.load_network({checkpoint_model_spec(path)!r}) "
            f"(a model config with kind: {kind}, name: {network.get('name')}, "
            f"weights: {network.get('weights')}, weights_file: <this checkpoint>, "
            f"input_size: {network.get('input_size')})"
        )
    net = ConvNet(num_classes=int(network["num_classes"]), channels=tuple(network["channels"]))
    net.load_state_dict(payload["state_dict"])
    return net.eval()


def write_index(run_dir: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write ``index.csv`` then ``index.json`` (the latter marks the run as complete)."""
    run_dir = Path(run_dir)
    with open(run_dir / "index.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=INDEX_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row[column] for column in INDEX_COLUMNS})
    with open(run_dir / "index.json", "w") as handle:
        json.dump([{column: row[column] for column in INDEX_COLUMNS} for row in rows], handle, indent=2)


def read_index(run_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of a run's ``index.json``, with ``path`` made absolute."""
    run_dir = Path(run_dir)
    index_path = run_dir / "index.json"
    if not index_path.is_file():
        raise FileNotFoundError(
            f"{index_path} does not exist (training missing or unfinished). {_HOW_TO_TRAIN}"
        )
    with open(index_path) as handle:
        rows = json.load(handle)
    return [{**row, "path": str((run_dir / row["path"]).resolve())} for row in rows]


def _describe(rows: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"step {row['step']} ({row['kind']}): {row['val_acc']:.4f}" for row in rows)


def select_checkpoint(
    rows: Sequence[Mapping[str, Any]],
    strategy: str,
    target: float | None = None,
    min_acc: float | None = None,
    max_acc: float | None = None,
    step: int | None = None,
) -> dict[str, Any]:
    """Choose one checkpoint row of a run index.

    Args:
        rows: rows from :func:`read_index`; ``val_acc`` is a fraction in [0, 1].
        strategy: "final" (the last epoch-end checkpoint), "closest_val_acc" (val_acc closest to
            ``target``; ties go to the earliest step), "step" (the checkpoint saved at training step
            ``step``) or "next" (the first checkpoint saved after step ``step``: a trajectory's
            consecutive pairs).
        target: wanted validation accuracy (fraction), required by "closest_val_acc".
        min_acc, max_acc: accepted validation-accuracy range for the chosen row (inclusive).
        step: a training step (optimizer steps since the start), required by "step" and "next".

    Returns:
        The chosen row (a copy).

    Raises:
        CheckpointSelectionError: no rows, or the chosen val_acc lies outside [min_acc, max_acc].
    """
    if not rows:
        raise CheckpointSelectionError("the run index holds no checkpoints")
    if strategy == "final":
        candidates = [row for row in rows if row["kind"] == "epoch_end"]
        if not candidates:
            raise CheckpointSelectionError(f"no epoch_end checkpoint among: {_describe(rows)}")
        chosen = max(candidates, key=lambda row: row["step"])
    elif strategy == "closest_val_acc":
        if target is None:
            raise CheckpointSelectionError("strategy 'closest_val_acc' needs a target accuracy")
        chosen = min(rows, key=lambda row: (abs(row["val_acc"] - target), row["step"]))
    elif strategy in ("step", "next"):
        chosen = _row_by_step(rows, strategy, step)
    else:
        raise CheckpointSelectionError(
            f"unknown strategy {strategy!r}; choose one of {CHECKPOINT_STRATEGIES}"
        )
    accuracy = chosen["val_acc"]
    too_low = min_acc is not None and accuracy < min_acc
    too_high = max_acc is not None and accuracy > max_acc
    if too_low or too_high:
        raise CheckpointSelectionError(
            f"strategy {strategy!r} chose step {chosen['step']} with val_acc {accuracy:.4f}, outside the "
            f"accepted range [{min_acc}, {max_acc}]. Available checkpoints: {_describe(rows)}"
        )
    logger.info("Selected checkpoint step %s (%s, val_acc %.4f)", chosen["step"], chosen["kind"], accuracy)
    return dict(chosen)


def _row_by_step(rows: Sequence[Mapping[str, Any]], strategy: str, step: int | None) -> Mapping[str, Any]:
    """The row saved at ``step`` ("step") or the first one after it ("next"); an epoch-end row wins over
    a dense row of the same step."""
    if step is None:
        raise CheckpointSelectionError(f"strategy {strategy!r} needs a step (select.step)")
    step = int(step)
    steps = sorted({int(row["step"]) for row in rows})
    if strategy == "step":
        candidates = [row for row in rows if int(row["step"]) == step]
        missing = f"no checkpoint at step {step}"
    else:
        later = [value for value in steps if value > step]
        candidates = [row for row in rows if later and int(row["step"]) == later[0]]
        missing = f"no checkpoint after step {step}"
    if not candidates:
        raise CheckpointSelectionError(f"{missing}; the run saved steps {steps}")
    return max(candidates, key=lambda row: row["kind"] == "epoch_end")


def trajectory_steps(rows: Sequence[Mapping[str, Any]], mode: str = "vs_final") -> list[int]:
    """The steps of a checkpoint trajectory, in order: every saved step but the last one.

    ``mode`` "vs_final" compares each step with the final checkpoint, "consecutive" each step with the
    next saved one; either way the last step has no partner (the final checkpoint against itself has
    no difference to explain).

    Raises:
        CheckpointSelectionError: an unknown mode, or fewer than two checkpoints.
    """
    if mode not in TRAJECTORY_MODES:
        raise CheckpointSelectionError(f"unknown trajectory mode {mode!r}; choose one of {TRAJECTORY_MODES}")
    steps = sorted({int(row["step"]) for row in rows})
    if len(steps) < 2:
        raise CheckpointSelectionError(f"a trajectory needs at least two checkpoints; the run saved {steps}")
    final = select_checkpoint(rows, "final")["step"] if mode == "vs_final" else steps[-1]
    return [value for value in steps if value < final]
