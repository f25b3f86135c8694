"""rdx-trajectory: compare every saved checkpoint of a training run with the final (or the next) one.

Examples:
    rdx-trajectory run                                        # one multirun, a job per saved step
    rdx-trajectory run trajectory.mode=consecutive hydra/launcher=joblib hydra.launcher.n_jobs=2
    rdx-trajectory run --dry-run 'baselines=[kmeans]'        # print the rdx-compare command only
    rdx-trajectory multirun/mnist_835_trajectory/vs_final/2026-11-28_10-00-00

``run [OVERRIDES]`` composes ``experiment=mnist_835_trajectory`` with the overrides, trains the MNIST
3/5/8 run when it is missing, reads the saved steps from its checkpoint index and launches one
``rdx-compare -m`` with ``model_a.select.step=<every step but the last>`` (the overrides passed on).

``FOLDER`` reads every run below the folder (refusing runs of other images, or, comparing with the
final checkpoint, of another model B) and writes ``FOLDER/trajectory/``: ``trajectory.csv`` (one row
per step), ``trajectory.png`` (the scores against step) and ``top_concepts.png`` (each step's top
concept per side); and logs them, one history row per step, to a W&B run named "trajectory" in the
runs' group.
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


# --- run: one multirun over the saved steps ------------------------------------------------------


def build_run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdx-trajectory run",
        description="One rdx-compare multirun over every saved checkpoint of the training run.",
    )
    parser.add_argument("--experiment", default=EXPERIMENT, help=f"experiment config (default: {EXPERIMENT})")
    parser.add_argument("--dry-run", action="store_true", help="print the command; train and run nothing")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed on to rdx-compare")
    return parser


def compose_trajectory(experiment: str, overrides: Sequence[str]) -> Any:
    """The composed config of the trajectory's jobs (Hydra's own section included), without a step."""
    from hydra import compose, initialize_config_dir

    from rdx.cli import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(
            config_name="compare",
            overrides=[f"experiment={experiment}", *overrides],
            return_hydra_config=True,
        )


def sweep_command(
    experiment: str, steps: Sequence[int], overrides: Sequence[str], sweep_dir: str
) -> list[str]:
    """The ``rdx-compare -m`` command line of the trajectory: one job per step."""
    return [
        sys.executable,
        "-m",
        "rdx.cli.compare",
        "-m",
        f"experiment={experiment}",
        f"{STEP_KEY}={','.join(map(str, steps))}",
        *(o for o in overrides if o.split("=", 1)[0] != "hydra.sweep.dir"),
        f"hydra.sweep.dir={sweep_dir}",
    ]


def launch(argv: Sequence[str]) -> int:
    """``rdx-trajectory run``: read the steps from the checkpoint index and launch the multirun."""
    parser = build_run_parser()
    args = parser.parse_args(argv)
    from omegaconf import OmegaConf

    from rdx.models.checkpoints import read_index, trajectory_steps
    from rdx.training.train import ensure_trained, trained_run_dir

    if any(o.lstrip("+~").split("=", 1)[0] == STEP_KEY for o in args.overrides):
        parser.error(f"{STEP_KEY} is what the trajectory sweeps; it comes from the checkpoint index")
    cfg = compose_trajectory(args.experiment, args.overrides)
    training = OmegaConf.to_container(cfg.model_a.training, resolve=True)
    if OmegaConf.to_container(cfg.model_b.training, resolve=True) != training:
        parser.error("model_a.training and model_b.training differ: a trajectory follows one training run")
    checkpoints = Path(cfg.paths.checkpoints)
    if args.dry_run:
        run_dir = trained_run_dir(training, checkpoints)
        if not (run_dir / "index.json").is_file():
            parser.error(f"{run_dir} holds no finished training run; run without --dry-run to train it")
    else:
        run_dir = ensure_trained(training, checkpoints)
    mode = str(cfg.trajectory.mode)
    steps = trajectory_steps(read_index(run_dir), mode)
    sweep_dir = _sweep_dir(cfg, args.overrides)
    command = sweep_command(args.experiment, steps, args.overrides, sweep_dir)
    print(f"trajectory ({mode}) over {len(steps)} steps of {run_dir}: {steps}")
    print(shlex.join(command))
    if args.dry_run:
        return 0
    finished = subprocess.run(command, check=False)
    if finished.returncode == 0:
        print(f"draw it: rdx-trajectory {sweep_dir}")
    return finished.returncode


def _sweep_dir(cfg: Any, overrides: Sequence[str]) -> str:
    """The sweep folder: the one given, else the experiment's (``hydra.sweep.dir``, resolved now)."""
    given = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "hydra.sweep.dir"]
    return given[-1] if given else str(cfg.hydra.sweep.dir)


# --- FOLDER: the trajectory of a finished sweep ---------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdx-trajectory",
        description="The trajectory of a checkpoint sweep (every results.json below FOLDER), by model A's "
        "step; or `rdx-trajectory run [OVERRIDES]` to launch the sweep.",
    )
    parser.add_argument("folder", type=Path, help="runs folder: the sweep dir of `rdx-trajectory run`")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="output folder (default: <folder>/trajectory)"
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "vs_final", "consecutive"),
        default="auto",
        help="what model B is (default: auto, read from the records); vs_final refuses runs with "
        "different model B",
    )
    add_folder_run_options(parser)
    return parser


def _number(value: Any) -> float | None:
    """A CSV cell as a W&B number: None for text, missing values and NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else value


def log_trajectory_to_wandb(
    report: dict[str, Any], folder: Path, out_dir: Path, mode: str, project: str, group: str | None
) -> Path | None:
    """One W&B run named "trajectory": a history row per step (``step`` = model A's step, so W&B
    draws lines), the table and both figures; returns its dir."""
    from rdx.sinks.wandb_logger import folder_run

    table = report["table"]
    steps = [int(step) for step in table["step"]]
    config = {"mode": report["mode"], "steps": steps, "methods": report["methods"]}
    runs_group = report.get("wandb_group")
    with folder_run("trajectory", folder, out_dir, mode, project, group, runs_group, config) as run:
        for row in table.to_dict(orient="records"):
            metrics = {key: _number(value) for key, value in row.items() if key != "step"}
            run.log_metrics({k: v for k, v in metrics.items() if v is not None}, step=int(row["step"]))
        cells = [
            [value if _number(value) is not None else str(value) for value in row] for row in table.values
        ]
        # at the last step: W&B would put a row without a step one after it
        run.log_table("trajectory", [str(c) for c in table.columns], cells, step=steps[-1])
        run.log_images(report["figures"], step=steps[-1])
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
    steps = result["table"]["step"].tolist()
    print(f"steps:        {len(steps)} ({steps[0]} .. {steps[-1]})")
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
