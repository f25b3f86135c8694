"""A trajectory from a folder of comparison runs: one row per training step of model A, or per layer.

Two kinds of sweep make a trajectory. A checkpoint trajectory (``experiment=mnist_835_trajectory``,
launched by ``rdx-trajectory run``): model A is the checkpoint saved at one step, model B the final
checkpoint (mode "vs_final") or the next saved one ("consecutive"); its axis is model A's training
step. A layer trajectory (``experiment=*_layers``, conf/layer_trajectory/): one network, model A one of
its layers and model B the next (mode "layers"); its axis is model A's depth, the layer's position in
the experiment's list. The functions up to :func:`top_concept_images` are pure (they read files but
write nothing); :func:`write_trajectory` is the edge that writes ``trajectory.csv``, ``trajectory.png``
and ``top_concepts.png``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rdx.record import SIDES, RunResult
from rdx.report.table import Run, find_runs, load_runs, method_order, shared_wandb_group
from rdx.sinks.files import atomic_file, save_figure
from rdx.viz.trajectory import concept_strip_figure, trajectory_figure

log = logging.getLogger(__name__)

MODES = ("auto", "vs_final", "consecutive", "layers")
OUT_DIR = "trajectory"
IMAGES_INPUT = "dataset.images"  # the record's content digest of the compared images


@dataclass(frozen=True)
class Axis:
    """What a trajectory runs along: ``key`` is model A's field in the record (``models.A``), the CSV's
    first column and the W&B step; ``title`` labels the figure's x axis; ``missing`` says what a run
    without it is not."""

    key: str
    title: str
    missing: str


STEP = Axis("step", "training step of model A", "not a checkpoint trained by rdx-train")
DEPTH = Axis(
    "depth", "depth of model A's layer (model B: the next layer)", "not a run of a *_layers experiment"
)
AXES = {"vs_final": STEP, "consecutive": STEP, "layers": DEPTH}


class TrajectoryError(ValueError):
    """The runs folder cannot be read as one trajectory (mixed image sets, models or kinds of sweep, or a
    run without a position on the axis)."""


def _describe(runs: Sequence[Run], root: Path | None = None) -> str:
    def name(run: Run) -> str:
        path = run.path.parent
        return str(path.relative_to(root)) if root is not None and root in path.parents else str(path)

    return ", ".join(name(run) for run in runs)


def _short(digest: str | None) -> str:
    return "none recorded" if digest is None else digest[:12]


def check_same_images(runs: Sequence[Run], root: Path | None = None) -> None:
    """Refuse runs that did not compare the same images (``inputs["dataset.images"]`` digests differ),
    naming the runs of each image set.

    Raises:
        TrajectoryError: more than one image set, or a run without the digest.
    """
    groups: dict[str | None, list[Run]] = {}
    for run in runs:
        groups.setdefault((run.record.inputs or {}).get(IMAGES_INPUT), []).append(run)
    if len(groups) > 1 or None in groups:
        parts = [f"images {_short(digest)}: {_describe(group, root)}" for digest, group in groups.items()]
        raise TrajectoryError(
            "the runs do not share one image set (inputs['dataset.images'] differ), so their points are not "
            "comparable; " + "; ".join(parts)
        )


def model_identity(info: dict[str, Any]) -> str:
    """What tells two runs' models apart: the training run and step of a trained checkpoint, else its
    weights file, else its name."""
    if info.get("step") is not None and info.get("training_run"):
        return f"{Path(info['training_run']).name} step {info['step']}"
    return str(info.get("checkpoint") or info.get("name"))


def network_identity(info: dict[str, Any]) -> str:
    """What tells two networks apart whatever layer they are read at: :func:`model_identity` for
    trained or file weights; else the kind, the weights and the parameter count (not the name: in a
    layer sweep that is the layer)."""
    if (info.get("step") is not None and info.get("training_run")) or info.get("checkpoint"):
        return model_identity(info)
    return f"{info.get('kind')} {info.get('weights')} ({info.get('num_parameters')} parameters)"


def detect_mode(runs: Sequence[Run], root: Path | None = None) -> str:
    """ "layers" when every run's models carry a layer depth (a layer sweep); else "consecutive" when
    every run's model B was selected as the checkpoint after model A's; else "vs_final".

    Raises:
        TrajectoryError: some runs are of a layer sweep and others not.
    """
    layered = [run for run in runs if _has_depth(run.record)]
    if layered and len(layered) < len(runs):
        others = [run for run in runs if not _has_depth(run.record)]
        raise TrajectoryError(
            "the runs mix a layer sweep with other comparisons; layer runs: "
            f"{_describe(layered, root)}; others: {_describe(others, root)}"
        )
    if layered:
        return "layers"
    consecutive = all(run.record.models.get("B", {}).get("selection") == "next" for run in runs)
    return "consecutive" if consecutive else "vs_final"


def _has_depth(record: RunResult) -> bool:
    return all(record.models.get(side, {}).get("depth") is not None for side in SIDES)


def check_same_model_b(runs: Sequence[Run], root: Path | None = None) -> None:
    """Refuse vs-final runs whose model B differs, naming the runs of each model B.

    Raises:
        TrajectoryError: more than one model B.
    """
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(model_identity(run.record.models.get("B", {})), []).append(run)
    if len(groups) > 1:
        parts = [f"model B {identity}: {_describe(group, root)}" for identity, group in groups.items()]
        raise TrajectoryError("the runs do not share one model B; " + "; ".join(parts))


def check_one_network(runs: Sequence[Run], root: Path | None = None) -> None:
    """Refuse layer-sweep runs that do not all read one network (:func:`network_identity`) on both
    sides, naming the runs of each network (or pair of networks).

    Raises:
        TrajectoryError: a run compares two networks, or the runs read more than one.
    """
    groups: dict[str, list[Run]] = {}
    two_networks = False
    for run in runs:
        a, b = (network_identity(run.record.models.get(side, {})) for side in SIDES)
        two_networks = two_networks or a != b
        groups.setdefault(a if a == b else f"{a} (A) vs {b} (B)", []).append(run)
    if len(groups) > 1 or two_networks:
        parts = [f"model {identity}: {_describe(group, root)}" for identity, group in groups.items()]
        raise TrajectoryError(
            "a layer trajectory follows one model, compared with itself layer by layer, but the runs read "
            + "; ".join(parts)
        )


def position_of(record: RunResult, axis: Axis = STEP) -> int:
    """Model A's position on the axis: its training step, or its layer's depth."""
    value = record.models.get("A", {}).get(axis.key)
    if value is None:
        raise TrajectoryError(f"{record.run_dir}: model A has no {axis.key} ({axis.missing})")
    return int(value)


def position_label(record: RunResult, axis: Axis = STEP) -> str:
    """A point's name in figures: "step 85", or "1: block2 → classifier" (depth: A's layer → B's)."""
    position = position_of(record, axis)
    if axis is DEPTH:
        layers = [record.models.get(side, {}).get("layer") for side in SIDES]
        return f"{position}: {layers[0]} → {layers[1]}"
    return f"{axis.key} {position}"


def order_by_position(runs: Sequence[Run], axis: Axis = STEP) -> list[Run]:
    """The runs in order of model A's position on the axis; of two runs at the same position the newer
    results.json is kept (a warning names both)."""
    kept: dict[int, Run] = {}
    for run in runs:
        position = position_of(run.record, axis)
        previous = kept.get(position)
        if previous is not None:
            newer, older = (run, previous) if run.modified >= previous.modified else (previous, run)
            log.warning(
                "%s %d occurs twice: using the newer %s, not %s", axis.key, position, newer.path, older.path
            )
            run = newer
        kept[position] = run
    return [kept[position] for position in sorted(kept)]


def read_trajectory(
    folder: str | Path, mode: str = "auto", exclude: str | Path | None = None
) -> tuple[list[Run], str]:
    """Every run below ``folder`` (outside ``exclude``), checked to form one trajectory, in axis order,
    and the mode ("auto" is read from the records, :func:`detect_mode`).

    Raises:
        RunsError: no run, or a file that is not a run record.
        TrajectoryError: mixed image sets, mixed model B (vs_final), mixed networks (layers), layer and
            other runs mixed, or a run without a position on the axis.
    """
    if mode not in MODES:
        raise TrajectoryError(f"unknown mode {mode!r}; choose one of {MODES}")
    root = Path(folder).resolve()
    runs = load_runs(find_runs(folder, exclude=exclude))
    for run in runs:
        run.path = run.path.resolve()
    check_same_images(runs, root)
    detected = detect_mode(runs, root)
    if mode != "auto" and (mode == "layers") != (detected == "layers"):
        kind = "a layer sweep" if detected == "layers" else "a checkpoint sweep"
        raise TrajectoryError(f"mode {mode!r} does not fit these runs: they are {kind} (mode {detected!r})")
    mode = detected if mode == "auto" else mode
    if mode == "vs_final":
        check_same_model_b(runs, root)
    if mode == "layers":
        check_one_network(runs, root)
    return order_by_position(runs, AXES[mode]), mode


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def trajectory_row(record: RunResult, axis: Axis = STEP) -> dict[str, Any]:
    """One point of the trajectory: both models (step and epoch, or depth, layer and feature width),
    representation scores, every method's mBSR (SILB) and, when computed, share of significant
    concepts, the main method's concepts per side, and the baselines the run skipped."""
    models = record.models
    model_a, model_b = models["A"], models.get("B", {})
    if axis is DEPTH:
        row: dict[str, Any] = {
            "depth": position_of(record, axis),
            "layer_A": model_a.get("layer"),
            "dim_A": record.features.get("A", {}).get("dim"),
            "val_acc_A": _float(model_a.get("val_acc")),
            "depth_B": model_b.get("depth"),
            "layer_B": model_b.get("layer"),
            "dim_B": record.features.get("B", {}).get("dim"),
            "val_acc_B": _float(model_b.get("val_acc")),
        }
    else:
        row = {
            "step": position_of(record, axis),
            "epoch": model_a.get("epoch"),
            "val_acc_A": _float(model_a.get("val_acc")),
            "step_B": model_b.get("step"),
            "epoch_B": model_b.get("epoch"),
            "val_acc_B": _float(model_b.get("val_acc")),
        }
    representations = record.representations or {}
    probe = representations.get("probe") or {}
    row["cka"] = _float(representations.get("cka"))
    row["probe_acc_A"] = _float(probe.get("A"))
    row["probe_acc_B"] = _float(probe.get("B"))
    for label, method in record.methods.items():
        row[f"mbsr_silb/{label}"] = method.mbsr
    for label, method in record.methods.items():
        share = method.significant_share()
        if not math.isnan(share):
            row[f"significant_share/{label}"] = share
    main = record.main
    for side in SIDES:
        sizes = [concept.size for concept in main.side(side)]
        row[f"concepts_{side}"] = len(sizes)
        row[f"concept_sizes_{side}"] = " ".join(map(str, sizes))
        row[f"concept_members_{side}"] = sum(sizes)
    row["methods_skipped"] = " ".join(record.methods_skipped)  # baselines these layers do not allow
    row["task_name"] = record.task_name
    return row


def trajectory_table(runs: Sequence[Run], root: str | Path | None = None, axis: Axis = STEP) -> pd.DataFrame:
    """One row per run (in the given order, :func:`order_by_position`) and a ``path`` column: the run
    dir, relative to ``root`` when inside it."""
    root = None if root is None else Path(root).resolve()
    rows = []
    for run in runs:
        row = trajectory_row(run.record, axis)
        path = Path(run.path).resolve().parent
        row["path"] = str(path.relative_to(root)) if root is not None and root in path.parents else str(path)
        rows.append(row)
    return pd.DataFrame(rows)  # a column only some runs have (a method, significance) is NaN elsewhere


def top_concept_images(
    runs: Sequence[Run], axis: Axis = STEP
) -> list[tuple[str, dict[str, np.ndarray | None]]]:
    """Per point (named by :func:`position_label`), each side's top concept grid of the main method,
    read from the run's grid PNG (``grids/<label>/side<A|B>_concept1.png``); None where the run has no
    such grid."""
    from PIL import Image

    from rdx.viz.comparison import grid_key

    strip = []
    for run in runs:
        record = run.record
        images: dict[str, np.ndarray | None] = {}
        for side in SIDES:
            key = grid_key(record.main_method, side, 1)
            path = record.figure_path(key) if key in record.figures else None
            if path is None or not path.is_file():
                images[side] = None
                continue
            with Image.open(path) as image:
                images[side] = np.asarray(image.convert("RGB"))
        strip.append((position_label(record, axis), images))
    return strip


def write_trajectory(
    folder: str | Path, out_dir: str | Path | None = None, mode: str = "auto"
) -> dict[str, Any]:
    """Read the runs below ``folder`` as one trajectory and write ``trajectory.csv``, ``trajectory.png``
    and ``top_concepts.png`` into ``out_dir`` (default ``<folder>/trajectory``; runs inside it are
    skipped). Nothing else in ``folder`` is touched.

    Returns:
        {"table": DataFrame, "runs": [Run], "methods": [label], "mode": "vs_final" | "consecutive" |
        "layers", "axis": "step" | "depth", "files": {"csv" | "figure" | "concepts": Path}, "figures":
        {name: Figure}, "wandb_group": the W&B group all runs share, or None}
    """
    folder = Path(folder)
    out_dir = folder / OUT_DIR if out_dir is None else Path(out_dir)
    runs, mode = read_trajectory(folder, mode, exclude=out_dir)
    axis = AXES[mode]
    table = trajectory_table(runs, root=folder, axis=axis)
    methods = method_order(runs)
    main = runs[0].record.main_method
    files: dict[str, Path] = {}
    with atomic_file(out_dir / "trajectory.csv", "w") as handle:
        table.to_csv(handle, index=False, na_rep="")
    files["csv"] = out_dir / "trajectory.csv"
    labels = [position_label(run.record, axis) for run in runs] if axis is DEPTH else None
    figures = {
        "trajectory": trajectory_figure(
            table,
            methods,
            main,
            title=f"Trajectory ({mode}): {folder.resolve().name}",
            x=axis.key,
            x_title=axis.title,
            tick_labels=labels,
        ),
        "top_concepts": concept_strip_figure(top_concept_images(runs, axis), main, along=axis.key),
    }
    files["figure"] = save_figure(figures["trajectory"], out_dir / "trajectory.png")
    files["concepts"] = save_figure(figures["top_concepts"], out_dir / "top_concepts.png")
    log.info("trajectory of %d %ss written to %s", len(runs), axis.key, out_dir)
    return {
        "table": table,
        "runs": runs,
        "methods": methods,
        "mode": mode,
        "axis": axis.key,
        "files": files,
        "figures": figures,
        "wandb_group": shared_wandb_group(runs),
    }
