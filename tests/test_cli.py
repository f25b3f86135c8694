"""The Hydra configs and entry points: every config composes; train + compare run end to end, tiny."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from rdx.cli import CONFIG_DIR, check_method_configs
from rdx.compare import run_compare
from rdx.models.checkpoints import read_index
from rdx.models.registry import ModelSourceError
from rdx.record import load_run
from rdx.training.train import ensure_trained
from tests.conftest import TINY_TRAINING, compose_config, tiny_compare_overrides

CONF = Path(CONFIG_DIR)


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["paths", "pair", "dataset", "method", "baselines", "logger", "experiment"])
def test_every_compare_config_composes(group):
    options = group_options(group)
    assert options, f"conf/{group} is empty"
    for option in options:
        cfg = compose_config("compare", [f"{group}={option}"])
        resolved = OmegaConf.to_container(cfg, resolve=True)
        assert resolved["model_a"]["kind"] and resolved["method"]["name"]
        check_method_configs(cfg)  # every key a parameter of its estimator


@pytest.mark.parametrize("option", group_options("training"))
def test_every_training_config_composes(option):
    cfg = compose_config("train", [f"training={option}"])
    training = OmegaConf.to_container(cfg.training, resolve=True)
    assert training["trainer"]["max_epochs"] >= 1


def test_model_configs_compose_in_both_slots():
    for model in group_options("model"):
        cfg = compose_config("compare", [f"model@model_a={model}", f"model@model_b={model}"])
        assert cfg.model_a.name == cfg.model_b.name


def test_paper_defaults_in_the_main_experiment():
    cfg = compose_config("compare", ["experiment=mnist_835"])
    params = cfg.method.params
    assert (params.n_concepts, params.gamma, params.beta, params.null_cluster) == (3, 0.05, 5.0, True)
    assert params.grid_size == 9 and params.grid_strategy == "maximize_total_neighborhood_affinity"
    assert list(cfg.dataset.classes) == [3, 5, 8] and cfg.dataset.n_per_class == 500
    assert cfg.model_a.select.target == 0.94 and cfg.model_b.select.strategy == "final"
    assert cfg.logger.mode == "offline"


def test_unknown_key_is_rejected_clearly():
    """A key outside every config group fails at compose; a method parameter the estimator lacks fails
    the check the CLI runs first (tests/test_method_params.py), naming the valid ones."""
    with pytest.raises(Exception, match="not_a_key"):
        compose_config("compare", ["method.not_a_key=1"])
    with pytest.raises(ValueError, match=r"'not_a_key'.*Valid parameters of rdx: n_concepts, similarity"):
        check_method_configs(compose_config("compare", ["method.params.not_a_key=1"]))


def test_train_then_compare_smoke(tmp_path, checkpoint_root):
    train_cfg = compose_config("train", [f"paths.checkpoints={checkpoint_root}", *TINY_TRAINING])
    run_dir = ensure_trained(OmegaConf.to_container(train_cfg.training, resolve=True), Path(checkpoint_root))
    rows = read_index(run_dir)
    assert [r["step"] for r in rows if r["kind"] == "dense"] == [2, 4, 6]

    cfg = compose_config("compare", tiny_compare_overrides(checkpoint_root))
    record = run_compare(cfg, tmp_path)
    # both models come from the run trained above, not a second training
    assert {record.models[s]["training_run"] for s in "AB"} == {str(run_dir)}
    assert record.dataset["n_images"] == 90
    assert {side: f["dim"] for side, f in record.features.items()} == {"A": 64, "B": 64}
    assert {f["cache"] for f in record.features.values()} <= {"hit", "miss"}  # session-wide cache
    assert record.main_method == "rdx" and list(record.methods) == ["rdx"]
    rdx = record.methods["rdx"]
    assert [len(rdx.side(side)) for side in "AB"] == [3, 3]
    composition = rdx.grid_composition()
    assert composition["A"]["grids"] == composition["B"]["grids"] == 3
    for concept in rdx.concepts:
        assert sum(concept.grid_label_counts.values()) == min(concept.size, 9)
        assert set(concept.grid_label_counts) <= {"3", "5", "8"}
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["methods"]["rdx"]["concepts"] == [c.to_json() for c in rdx.concepts]
    assert load_run(tmp_path) == record  # the file holds exactly the returned record
    for name in record.figures:
        path = record.figure_path(name)
        assert path.is_file() and path.stat().st_size > 0
    assert len(list((tmp_path / "grids" / "rdx").glob("*.png"))) == 6
    assert "comparison" not in record.figures  # one method: no comparison figure
    assert not (tmp_path / "wandb").exists()  # logger=disabled writes nothing


def test_missing_checkpoint_is_a_clear_error_and_writes_no_results(tmp_path, checkpoint_root):
    missing = tmp_path / "nope.ckpt"
    cfg = compose_config(
        "compare", [*tiny_compare_overrides(checkpoint_root), f"model_a.checkpoint={missing}"]
    )
    with pytest.raises(ModelSourceError, match=r"nope\.ckpt does not exist.*model_a\.checkpoint="):
        run_compare(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "results.json").exists()


def test_too_few_images_for_the_clusters_is_a_clear_error(tmp_path, checkpoint_root):
    cfg = compose_config("compare", [*tiny_compare_overrides(checkpoint_root), "dataset.n_per_class=1"])
    with pytest.raises(ValueError, match="at least 5 images"):
        run_compare(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "results.json").exists()


def test_rdx_compare_command_with_wandb_offline(tmp_path, checkpoint_root):
    """The installed console script, as a user runs it, with the offline W&B logger."""
    overrides = [o for o in tiny_compare_overrides(checkpoint_root) if not o.startswith("logger=")]
    command = [
        str(Path(sys.executable).with_name("rdx-compare")),
        *overrides,
        "logger=wandb_offline",
        f"hydra.run.dir={tmp_path}",
    ]
    env = {**os.environ, "WANDB_MODE": "offline"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "results:" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    wandb_dir = Path(results["wandb_run_dir"])
    assert wandb_dir.is_dir() and tmp_path in wandb_dir.parents
    media = [path for path in wandb_dir.rglob("*.png") if "images" in path.parts]
    tables = list(wandb_dir.rglob("media/table/*.json")) + list(wandb_dir.rglob("*concepts*.table.json"))
    assert len(media) >= 6 and tables


@pytest.mark.parametrize("method", group_options("method"))
def test_every_method_preset_runs_through_compare(tmp_path, checkpoint_root, method):
    cfg = compose_config("compare", [*tiny_compare_overrides(checkpoint_root), f"method={method}"])
    record = run_compare(cfg, tmp_path)
    assert record.main_method == method and record.methods[method].name == "rdx"
    result = record.methods[method]
    assert result.info["no_difference"] is False
    # the fit ran with the preset's variant (tests/test_presets.py checks every parameter unfitted)
    for key in ("similarity", "difference", "clustering", "guidance"):
        assert result.info[key] == cfg.method.params[key], key
    assert ("alignment" in result.info) == cfg.method.params.align
    for side in "AB":
        concepts = result.side(side)
        assert len(concepts) == 3 and all(1 <= len(c.grid) <= 9 for c in concepts)
    for distance in ("silb", "mned", "lsed"):
        assert 0.0 <= result.score(distance, "bsr", "mean") <= 1.0
    if cfg.method.params.align:
        for alignment in result.info["alignment"].values():
            assert alignment["heldout_cka"] >= alignment["initial_heldout_cka"]


def test_all_baselines_run_beside_rdx_through_compare(tmp_path, checkpoint_root):
    overrides = [o for o in tiny_compare_overrides(checkpoint_root) if not o.startswith("baselines=")]
    cfg = compose_config("compare", overrides)  # the experiment's default: RDX + every baseline
    expected = ["rdx", "kmeans", "pca", "nmf", "cnmf", "sae", "topk_sae", "usae", "nlmcd", "spec"]
    assert ["rdx", *cfg.baselines] == expected
    record = run_compare(cfg, tmp_path)
    assert list(record.methods) == expected
    reread = load_run(tmp_path, members=True)
    for label, method in record.methods.items():
        assert method.fit_s > 0 and f"{label}_s" in record.timings
        for side in "AB":
            concepts = method.side(side)
            assert 1 <= len(concepts) <= 3, (label, side)
            assert all(1 <= len(c.grid) <= 9 for c in concepts)
            # the members file rebuilds every concept of every method
            for concept in concepts:
                members = reread.methods[label].concept_members(side, concept.index)
                assert np.array_equal(members, method.concept_members(side, concept.index))
                assert len(members) == concept.size
        assert 0.0 <= method.mbsr <= 1.0
        assert len(list((tmp_path / "grids" / label).glob("*.png"))) == len(method.concepts)
    assert record.figure_path("comparison").is_file()


def test_every_registered_method_has_a_config():
    from rdx.methods import METHODS, method_class

    configured = {"rdx"} | {
        compose_config("compare", [f"baselines=[{b}]"]).baselines[b].name for b in group_options("baselines")
    }
    assert configured == set(METHODS)
    for name in METHODS:
        assert method_class(name).__name__
