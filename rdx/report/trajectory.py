"""A checkpoint trajectory from a folder of comparison runs: one row per training step of model A.

The runs are the jobs of ``experiment=mnist_835_trajectory`` (launched by ``rdx-trajectory run``): model
A is the checkpoint saved at one step, model B the final checkpoint (mode "vs_final") or the next saved
one ("consecutive"). The functions up to :func:`concept_strip_images` are pure (they read files but
write nothing); :func:`write_trajectory` is the edge that writes ``trajectory.csv``, ``trajectory.png``
and ``top_concepts.png``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rdx.record import SIDES, RunResult
from rdx.report.table import Run, find_runs, load_runs, method_order, shared_wandb_group
from rdx.sinks.files import atomic_file, save_figure
from rdx.viz.trajectory import concept_strip_figure, trajectory_figure

log = logging.getLogger(__name__)

MODES = ("auto", "vs_final", "consecutive")
OUT_DIR = "trajectory"
IMAGES_INPUT = "dataset.images"  # the record's content digest of the compared images


class TrajectoryError(ValueError):
    """The runs folder cannot be read as one trajectory (mixed image sets or model B, no step)."""


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
            "the runs do not share one image set (inputs['dataset.images'] differ), so their steps are not "
            "comparable; " + "; ".join(parts)
        )


def model_identity(info: dict[str, Any]) -> str:
    """What tells two runs' models apart: the training run and step of a trained checkpoint, else its
    weights file, else its name."""
    if info.get("step") is not None and info.get("training_run"):
        return f"{Path(info['training_run']).name} step {info['step']}"
    return str(info.get("checkpoint") or info.get("name"))


def detect_mode(runs: Sequence[Run]) -> str:
    """ "consecutive" when every run's model B was selected as the checkpoint after model A's, else
    "vs_final"."""
    consecutive = all(run.record.models.get("B", {}).get("selection") == "next" for run in runs)
    return "consecutive" if consecutive else "vs_final"


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


def step_of(record: RunResult) -> int:
    """Model A's training step."""
    step = record.models.get("A", {}).get("step")
    if step is None:
        raise TrajectoryError(
            f"{record.run_dir}: model A has no training step (not a checkpoint trained by rdx-train)"
        )
    return int(step)


def order_by_step(runs: Sequence[Run]) -> list[Run]:
    """The runs in order of model A's step; of two runs at the same step the newer results.json is
    kept (a warning names both)."""
    kept: dict[int, Run] = {}
    for run in runs:
        step = step_of(run.record)
        previous = kept.get(step)
        if previous is not None:
            newer, older = (run, previous) if run.modified >= previous.modified else (previous, run)
            log.warning("step %d occurs twice: using the newer %s, not %s", step, newer.path, older.path)
            run = newer
        kept[step] = run
    return [kept[step] for step in sorted(kept)]


def read_trajectory(folder: str | Path, mode: str = "auto", exclude: str | Path | None = None) -> list[Run]:
    """Every run below ``folder`` (outside ``exclude``), checked to form one trajectory, in step order.

    Raises:
        RunsError: no run, or a file that is not a run record.
        TrajectoryError: mixed image sets, mixed model B (vs_final), or a run without a step.
    """
    if mode not in MODES:
        raise TrajectoryError(f"unknown mode {mode!r}; choose one of {MODES}")
    root = Path(folder).resolve()
    runs = load_runs(find_runs(folder, exclude=exclude))
    for run in runs:
        run.path = run.path.resolve()
    check_same_images(runs, root)
    if (detect_mode(runs) if mode == "auto" else mode) == "vs_final":
        check_same_model_b(runs, root)
    return order_by_step(runs)


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def trajectory_row(record: RunResult) -> dict[str, Any]:
    """One step of the trajectory: both models, representation scores, every method's mBSR (SILB) and,
    when computed, share of significant concepts, and the main method's concepts per side."""
    models = record.models
    representations = record.representations or {}
    probe = representations.get("probe") or {}
    row: dict[str, Any] = {
        "step": step_of(record),
        "epoch": models["A"].get("epoch"),
        "val_acc_A": _float(models["A"].get("val_acc")),
        "step_B": models.get("B", {}).get("step"),
        "epoch_B": models.get("B", {}).get("epoch"),
        "val_acc_B": _float(models.get("B", {}).get("val_acc")),
        "cka": _float(representations.get("cka")),
        "probe_acc_A": _float(probe.get("A")),
        "probe_acc_B": _float(probe.get("B")),
    }
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
    row["task_name"] = record.task_name
    return row


def trajectory_table(runs: Sequence[Run], root: str | Path | None = None) -> pd.DataFrame:
    """One row per run (in the given order, :func:`order_by_step`) and a ``path`` column: the run dir,
    relative to ``root`` when inside it."""
    root = None if root is None else Path(root).resolve()
    rows = []
    for run in runs:
        row = trajectory_row(run.record)
        path = Path(run.path).resolve().parent
        row["path"] = str(path.relative_to(root)) if root is not None and root in path.parents else str(path)
        rows.append(row)
    return pd.DataFrame(rows)  # a column only some runs have (a method, significance) is NaN elsewhere


def top_concept_images(runs: Sequence[Run]) -> list[tuple[int, dict[str, np.ndarray | None]]]:
    """Per step, each side's top concept grid of the main method, read from the run's grid PNG
    (``grids/<label>/side<A|B>_concept1.png``); None where the run has no such grid."""
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
        strip.append((step_of(record), images))
    return strip


def write_trajectory(
    folder: str | Path, out_dir: str | Path | None = None, mode: str = "auto"
) -> dict[str, Any]:
    """Read the runs below ``folder`` as one trajectory and write ``trajectory.csv``, ``trajectory.png``
    and ``top_concepts.png`` into ``out_dir`` (default ``<folder>/trajectory``; runs inside it are
    skipped). Nothing else in ``folder`` is touched.

    Returns:
        {"table": DataFrame, "runs": [Run], "methods": [label], "mode": "vs_final" | "consecutive",
        "files": {"csv" | "figure" | "concepts": Path}, "figures": {name: Figure}, "wandb_group": the W&B
        group all runs share, or None}
    """
    folder = Path(folder)
    out_dir = folder / OUT_DIR if out_dir is None else Path(out_dir)
    runs = read_trajectory(folder, mode, exclude=out_dir)
    mode = detect_mode(runs) if mode == "auto" else mode
    table = trajectory_table(runs, root=folder)
    methods = method_order(runs)
    main = runs[0].record.main_method
    files: dict[str, Path] = {}
    with atomic_file(out_dir / "trajectory.csv", "w") as handle:
        table.to_csv(handle, index=False, na_rep="")
    files["csv"] = out_dir / "trajectory.csv"
    figures = {
        "trajectory": trajectory_figure(
            table, methods, main, title=f"Trajectory ({mode}): {folder.resolve().name}"
        ),
        "top_concepts": concept_strip_figure(top_concept_images(runs), main),
    }
    files["figure"] = save_figure(figures["trajectory"], out_dir / "trajectory.png")
    files["concepts"] = save_figure(figures["top_concepts"], out_dir / "top_concepts.png")
    log.info("trajectory of %d steps written to %s", len(runs), out_dir)
    return {
        "table": table,
        "runs": runs,
        "methods": methods,
        "mode": mode,
        "files": files,
        "figures": figures,
        "wandb_group": shared_wandb_group(runs),
    }
