"""rdx-trajectory: compare every saved checkpoint of a training run with the final (or the next) one, or
every layer of a network with the next one.

Examples:
    rdx-trajectory run                                        # one multirun, a job per saved step
    rdx-trajectory run trajectory.mode=consecutive hydra/launcher=joblib hydra.launcher.n_jobs=2
    rdx-trajectory run --dry-run 'baselines=[kmeans]'        # print the rdx-compare command only
    rdx-trajectory run --experiment mnist_835_layers          # a job per layer pair of the ConvNet
    rdx-trajectory multirun/mnist_835_trajectory/vs_final/2026-11-28_10-00-00

``run [OVERRIDES]`` composes the experiment (default ``mnist_835_trajectory``) with the overrides and
launches one ``rdx-compare -m`` over its points, the overrides passed on. A checkpoint trajectory: the
MNIST 3/5/8 run is trained when missing and ``model_a.select.step`` takes every step of its checkpoint
index but the last. A layer trajectory (an experiment with a ``layers`` section, ``*_layers``):
``layers.depth`` takes every position of ``layers.names`` but the last; a network trained on demand is
trained first.

``FOLDER`` reads every run below the folder (refusing runs of other images; comparing with the final
checkpoint, of another model B; of a layer sweep, of another network) and writes ``FOLDER/trajectory/``:
``trajectory.csv`` (one row per step or layer pair), ``trajectory.png`` (the scores against step or
depth) and ``top_concepts.png`` (each point's top concept per side); and logs them, one history row per
point, to a W&B run named "trajectory" in the runs' group.
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rdx.sinks.wandb_logger import add_folder_run_options

log = logging.getLogger(__name__)

EXPERIMENT = "mnist_835_trajectory"
STEP_KEY = "model_a.select.step"
DEPTH_KEY = "layers.depth"
# What may differ between the two sides of a layer trajectory: everything else is one network.
LAYER_KEYS = ("depth", "layer", "pooling", "label")


# --- run: one multirun over the saved steps, or over the layers -----------------------------------


class LaunchError(ValueError):
    """The composed experiment cannot be launched as a trajectory (the message says why)."""


def build_run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdx-trajectory run",
        description="One rdx-compare multirun over every saved checkpoint of the training run, or over "
        "every layer pair of a *_layers experiment.",
    )
    parser.add_argument("--experiment", default=EXPERIMENT, help=f"experiment config (default: {EXPERIMENT})")
    parser.add_argument("--dry-run", action="store_true", help="print the command; train and run nothing")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed on to rdx-compare")
    return parser


def compose_trajectory(experiment: str, overrides: Sequence[str]) -> Any:
    """The composed config of the trajectory's jobs (Hydra's own section included), before the sweep
    sets their step or depth."""
    from rdx.cli import compose_compare

    return compose_compare([f"experiment={experiment}", *overrides], hydra_section=True)


def sweep_command(
    experiment: str, key: str, values: Sequence[int], overrides: Sequence[str], sweep_dir: str
) -> list[str]:
    """The ``rdx-compare -m`` command line of the trajectory: one job per value of ``key`` (a step or a
    depth)."""
    return [
        sys.executable,
        "-m",
        "rdx.cli.compare",
        "-m",
        f"experiment={experiment}",
        f"{key}={','.join(map(str, values))}",
        *(o for o in overrides if o.split("=", 1)[0] != "hydra.sweep.dir"),
        f"hydra.sweep.dir={sweep_dir}",
    ]


def launch(argv: Sequence[str]) -> int:
    """``rdx-trajectory run``: read the points (saved steps, or layer depths) and launch the multirun."""
    parser = build_run_parser()
    args = parser.parse_args(argv)
    cfg = compose_trajectory(args.experiment, args.overrides)
    layered = "layers" in cfg
    key = DEPTH_KEY if layered else STEP_KEY
    if any(o.lstrip("+~").split("=", 1)[0] == key for o in args.overrides):
        where = "the experiment's layers.names" if layered else "the checkpoint index"
        parser.error(f"{key} is what the trajectory sweeps; it comes from {where}")
    try:
        what, values = _layer_points(cfg, args.dry_run) if layered else _step_points(cfg, args.dry_run)
    except LaunchError as error:
        parser.error(str(error))
    sweep_dir = _sweep_dir(cfg, args.overrides)
    command = sweep_command(args.experiment, key, values, args.overrides, sweep_dir)
    print(what)
    print(shlex.join(command))
    if args.dry_run:
        return 0
    finished = subprocess.run(command, check=False)
    if finished.returncode == 0:
        print(f"draw it: rdx-trajectory {sweep_dir}")
    return finished.returncode


def _step_points(cfg: Any, dry_run: bool) -> tuple[str, list[int]]:
    """A checkpoint trajectory's steps (every saved one but the last) from the training run's index,
    training the run first when it is missing (unless ``dry_run``), and a line saying what they are."""
    from omegaconf import OmegaConf

    from rdx.models.checkpoints import read_index, trajectory_steps
    from rdx.training.train import ensure_trained, trained_run_dir

    training = OmegaConf.to_container(cfg.model_a.training, resolve=True)
    if OmegaConf.to_container(cfg.model_b.training, resolve=True) != training:
        raise LaunchError(
            "model_a.training and model_b.training differ: a trajectory follows one training run"
        )
    checkpoints = Path(cfg.paths.checkpoints)
    if dry_run:
        run_dir = trained_run_dir(training, checkpoints)
        if not (run_dir / "index.json").is_file():
            raise LaunchError(f"{run_dir} holds no finished training run; run without --dry-run to train it")
    else:
        run_dir = ensure_trained(training, checkpoints)
    mode = str(cfg.trajectory.mode)
    steps = trajectory_steps(read_index(run_dir), mode)
    return f"trajectory ({mode}) over {len(steps)} steps of {run_dir}: {steps}", steps


def _layer_points(cfg: Any, dry_run: bool) -> tuple[str, list[int]]:
    """A layer trajectory's depths (every layer of ``layers.names`` but the last), after checking that
    both sides are one network and training it first when it is trained on demand (unless ``dry_run``:
    parallel jobs would otherwise each train it), and a line saying what they are."""
    from omegaconf import OmegaConf

    from rdx.models.loading import display_name, needs_training
    from rdx.training.train import ensure_trained

    names = [str(name) for name in cfg.layers.names]
    if len(names) < 2:
        raise LaunchError(f"layers.names needs at least two layers to compare, got {names}")
    specs = [OmegaConf.to_container(cfg[f"model_{side}"], resolve=True) for side in ("a", "b")]
    network = [{k: v for k, v in spec.items() if k not in LAYER_KEYS} for spec in specs]
    if network[0] != network[1]:
        differ = sorted(
            k for k in network[0].keys() | network[1].keys() if network[0].get(k) != network[1].get(k)
        )
        raise LaunchError(
            f"model_a and model_b differ in {differ}: a layer trajectory compares one network with itself"
        )
    if needs_training(specs[0]) and not dry_run:
        ensure_trained(specs[0]["training"], Path(cfg.paths.checkpoints))
    depths = list(range(len(names) - 1))
    model = specs[0].get("name") or display_name(specs[0])
    return f"layer trajectory over {len(depths)} layer pairs of {model}: {' → '.join(names)}", depths


def _sweep_dir(cfg: Any, overrides: Sequence[str]) -> str:
    """The sweep folder: the one given, else the experiment's (``hydra.sweep.dir``, resolved now)."""
    given = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "hydra.sweep.dir"]
    return given[-1] if given else str(cfg.hydra.sweep.dir)


# --- FOLDER: the trajectory of a finished sweep ---------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdx-trajectory",
        description="The trajectory of a checkpoint or layer sweep (every results.json below FOLDER), by "
        "model A's step or layer depth; or `rdx-trajectory run [OVERRIDES]` to launch the sweep.",
    )
    parser.add_argument("folder", type=Path, help="runs folder: the sweep dir of `rdx-trajectory run`")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="output folder (default: <folder>/trajectory)"
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "vs_final", "consecutive", "layers"),
        default="auto",
        help="what model B is (default: auto, read from the records): the final or the next checkpoint, "
        "or the next layer; vs_final refuses runs with different model B, layers runs of different models",
    )
    add_folder_run_options(parser)
    return parser


def _number(value: Any) -> float | None:
    """A CSV cell as a W&B number: None for text, missing values and NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else value


def _cell(value: Any) -> Any:
    """A CSV cell as a W&B table cell: a number as it is, a missing value (None, NaN: a method a run
    skipped) as None, which W&B accepts in a column of numbers, anything else as text."""
    if _number(value) is not None:
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _layer_pairs(table: Any) -> list[str]:
    """A layer trajectory's pairs, "block1 → block2", in depth order."""
    return [f"{a} → {b}" for a, b in zip(table["layer_A"], table["layer_B"], strict=True)]


def log_trajectory_to_wandb(
    report: dict[str, Any], folder: Path, out_dir: Path, mode: str, project: str, group: str | None
) -> Path | None:
    """One W&B run named "trajectory": a history row per point (the W&B step is model A's training
    step, or its layer's depth, so W&B draws lines against it), the table and both figures; returns its
    dir."""
    from rdx.sinks.wandb_logger import folder_run

    table, axis = report["table"], report["axis"]
    positions = [int(position) for position in table[axis]]
    config = {"mode": report["mode"], f"{axis}s": positions, "methods": report["methods"]}
    if axis == "depth":
        config["layer_pairs"] = _layer_pairs(table)
    runs_group = report.get("wandb_group")
    with folder_run("trajectory", folder, out_dir, mode, project, group, runs_group, config) as run:
        for row in table.to_dict(orient="records"):
            metrics = {key: _number(value) for key, value in row.items() if key != axis}
            run.log_metrics({k: v for k, v in metrics.items() if v is not None}, step=int(row[axis]))
        cells = [[_cell(value) for value in row] for row in table.values]
        # at the last point: W&B would put a row without a step one after it
        run.log_table("trajectory", [str(c) for c in table.columns], cells, step=positions[-1])
        run.log_images(report["figures"], step=positions[-1])
        return run.run_dir


def report(argv: Sequence[str]) -> int:
    """``rdx-trajectory FOLDER``: write the trajectory files and the W&B run."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from rdx.report.table import RunsError
    from rdx.report.trajectory import TrajectoryError, write_trajectory

    out_dir = args.folder / "trajectory" if args.out_dir is None else args.out_dir
    try:
        result = write_trajectory(args.folder, out_dir, mode=args.mode)
    except (RunsError, TrajectoryError) as error:
        parser.error(str(error))
    wandb_dir = log_trajectory_to_wandb(result, args.folder, out_dir, args.wandb, args.project, args.group)
    sweep_report = args.folder / "table" / "report.html"
    if sweep_report.is_file():  # the sweep report exists (rdx-table FOLDER): rewrite it with the trajectory
        from rdx.report.table import write_report

        write_report(args.folder)
        print(f"sweep report: {sweep_report} (with the trajectory section)")
    table, axis = result["table"], result["axis"]
    positions = table[axis].tolist()
    print(f"{axis + 's:':<14}{len(positions)} ({positions[0]} .. {positions[-1]})")
    if axis == "depth":
        print(f"layer pairs:  {', '.join(_layer_pairs(table))}")
    print(f"csv:          {result['files']['csv']}")
    print(f"figure:       {result['files']['figure']}")
    print(f"top concepts: {result['files']['concepts']}")
    if wandb_dir is not None:
        print(f"W&B run:      {wandb_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s")
    code = launch(argv[1:]) if argv[:1] == ["run"] else report(argv)
    if code:
        raise SystemExit(code)


if __name__ == "__main__":
    main()
