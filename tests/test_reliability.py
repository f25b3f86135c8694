"""Bad inputs and faults, each with the outcome a researcher should get: a clear error before any work,
or a run that finishes and says what failed. Listed in docs/reliability.md."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import rdx.data.registry
import rdx.pipeline
from rdx.compare import run_compare
from rdx.data.imageset import ImageSet
from rdx.data.mnist import DataSourceError
from rdx.data.precomputed import load_feature_file
from rdx.methods import build_method
from rdx.models.checkpoints import UnreadableWeightsError, load_convnet_checkpoint, read_torch_file
from rdx.models.extraction import compute_features
from rdx.models.loading import LoadedModel
from rdx.record import load_run
from rdx.sinks.files import safe_component
from rdx.sinks.run_dir import commit_run, figure_file
from rdx.sinks.wandb_check import WandbUnavailableError, check_logger
from rdx.training.train import remove_abandoned_folders
from rdx.viz.comparison import grid_key
from tests.conftest import compose_config, tiny_compare_overrides
from tests.test_record import record


def no_data(*args, **kwargs):
    raise AssertionError("the data was loaded: the check came too late")


# -- parameters and settings fail before any work --------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["method.params.gamma=nan"], "gamma must be a finite number > 0"),
        (["method.params.gamma=-0.1"], "gamma must be a finite number > 0"),
        (["method.params.beta=inf"], "beta must be a finite number > 0"),
        (["method.params.n_concepts=0"], "n_concepts must be a positive integer"),
        (["method.params.alignment_train_fraction=1.5"], "alignment_train_fraction"),
        (["method.params.grid_strategy=best"], "unknown grid_strategy 'best'"),
        (["baselines=[kmeans]", "baselines.kmeans.params.n_init=0"], "n_init must be a positive integer"),
        (["baselines=[nmf]", "baselines.nmf.params.tol=0"], "tol must be a finite number > 0"),
        (["baselines=[kmeans]"], None),  # valid settings pass the checks and reach the data
    ],
)
def test_bad_parameter_values_fail_before_the_data(
    tmp_path, monkeypatch, checkpoint_root, overrides, message
):
    cfg = compose_config("compare", [*tiny_compare_overrides(checkpoint_root), *overrides])
    monkeypatch.setattr(rdx.data.registry, "load_image_set", no_data)
    started = time.perf_counter()
    if message is None:
        with pytest.raises(AssertionError, match="the data was loaded"):
            run_compare(cfg, tmp_path / "run")
        return
    with pytest.raises(ValueError, match=message):
        run_compare(cfg, tmp_path / "run")
    assert time.perf_counter() - started < 5
    assert not (tmp_path / "run" / "results.json").exists()


def test_online_wandb_without_a_key_fails_before_the_data(tmp_path, monkeypatch, checkpoint_root):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    cfg = compose_config("compare", [*tiny_compare_overrides(checkpoint_root), "logger=wandb_online"])
    monkeypatch.setattr(rdx.data.registry, "load_image_set", no_data)
    with pytest.raises(WandbUnavailableError, match="no API key.*logger=wandb_offline"):
        run_compare(cfg, tmp_path / "run")


def test_online_wandb_without_the_server_fails_or_falls_back(monkeypatch, caplog):
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    settings = {"mode": "online", "project": "rdx"}
    with pytest.raises(WandbUnavailableError, match="cannot be reached"):
        check_logger(settings)
    with caplog.at_level(logging.WARNING):
        assert check_logger({**settings, "fallback_offline": True})["mode"] == "offline"
    assert "logging offline instead" in caplog.text
    assert check_logger({"mode": "offline"}) == {"mode": "offline"}


# -- unreadable inputs are named -------------------------------------------------------------------


def precomputed_model(path: Path) -> LoadedModel:
    info = {"name": "m", "kind": "precomputed", "file": str(path), "exclude_columns": [], "key": None}
    return LoadedModel("m", "precomputed", info)


def rows(n_rows: int, n_source_rows: int) -> ImageSet:
    indices = np.arange(n_rows)
    return ImageSet(np.zeros((n_rows, 4, 4), np.uint8), indices % 2, indices, n_source_rows=n_source_rows)


@pytest.mark.parametrize(("stored_rows", "label_rows"), [(12, 10), (8, 10)])
def test_feature_rows_must_match_the_labels(tmp_path, stored_rows, label_rows):
    path = tmp_path / "features.npy"
    np.save(path, np.random.default_rng(0).normal(size=(stored_rows, 3)).astype(np.float32))
    with pytest.raises(DataSourceError, match=f"has {stored_rows} rows.*labels file has {label_rows}"):
        compute_features(precomputed_model(path), rows(5, label_rows), {}, torch.device("cpu"))


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: p.write_bytes(b""), "cannot be read"),  # a 0-byte .npy
        (lambda p: np.save(p, np.zeros((0, 3), np.float32)), "empty array"),  # 0 rows
        (lambda p: p.write_bytes(np.lib.format.MAGIC_PREFIX + b"\x01\x00"), "cannot be read"),  # truncated
    ],
)
def test_empty_or_truncated_feature_files_are_named(tmp_path, write, message):
    path = tmp_path / "features.npy"
    write(path)
    with pytest.raises(DataSourceError, match=message) as raised:
        load_feature_file(path)
    assert str(path) in str(raised.value)


def test_a_feature_file_of_random_bytes_never_advises_unsafe_loading(tmp_path):
    path = tmp_path / "features.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(DataSourceError) as raised:
        load_feature_file(path)
    assert str(path) in str(raised.value) and "weights_only" not in str(raised.value)


def a_checkpoint(tmp_path: Path) -> Path:
    from rdx.models.checkpoints import save_checkpoint
    from rdx.models.convnet import ConvNet

    path = tmp_path / "model.pt"
    network = {"num_classes": 3, "channels": [32, 64]}
    save_checkpoint(path, ConvNet(num_classes=3), network, step=1, epoch=0, val_acc=0.5, val_loss=1.0)
    return path


def test_truncated_and_random_checkpoints_are_named_and_never_advise_unsafe_loading(tmp_path):
    good = a_checkpoint(tmp_path)
    load_convnet_checkpoint(good)  # the intact file loads
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    random_bytes = tmp_path / "random.pt"
    random_bytes.write_bytes(os.urandom(20000))
    for path in (truncated, random_bytes):
        with pytest.raises(UnreadableWeightsError) as raised:
            load_convnet_checkpoint(path)
        assert str(path) in str(raised.value)
        assert "weights_only" not in str(raised.value) and "unsafe" not in str(raised.value).lower()
    with pytest.raises(UnreadableWeightsError, match="weights file"):
        read_torch_file(random_bytes, "weights file")


# -- degenerate data -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rdx", "kmeans", "pca", "nlmcd"])
def test_a_constant_representation_is_refused(name):
    X = np.random.default_rng(0).normal(size=(40, 5))
    constant = np.ones((40, 5))
    with pytest.raises(ValueError, match="X_B gives every one of the 40 images the same features"):
        build_method(name, n_concepts=2).fit(X, constant)


def test_a_failing_metric_is_recorded_and_the_results_kept(tmp_path, monkeypatch, checkpoint_root):
    def broken(*args, **kwargs):
        raise FloatingPointError("degenerate kernel")

    monkeypatch.setattr(rdx.pipeline, "representation_scores", broken)
    monkeypatch.setattr(rdx.pipeline, "explanation_scores", broken)
    result = run_compare(compose_config("compare", tiny_compare_overrides(checkpoint_root)), tmp_path)
    saved = load_run(tmp_path, members=True)
    assert saved.complete and saved.representations == {"failed": "FloatingPointError: degenerate kernel"}
    assert saved.main.metrics["silb"]["failed"] == "FloatingPointError: degenerate kernel"
    assert np.isnan(saved.main.mbsr) and len(saved.main.concepts) == len(result.main.concepts) > 0


# -- names used as paths, unwritable folders, abandoned training folders ---------------------------


@pytest.mark.parametrize(
    ("name", "safe"),
    [("../../x", "_.._x"), ("/etc/passwd", "_etc_passwd"), (".hidden", "hidden"), ("", "_"), ("rdx", "rdx")],
)
def test_names_become_one_safe_path_component(name, safe):
    assert safe_component(name) == safe
    assert "/" not in safe_component(name) and safe_component(name) not in (".", "..")


def test_method_labels_and_task_names_stay_inside_their_folders():
    assert figure_file(grid_key("../../x", "A", 1)) == "grids/_.._x/sideA_concept1.png"
    cfg = compose_config("compare", ["task_name=../../escape"])
    from hydra import compose, initialize_config_dir

    from rdx.cli import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        hydra_cfg = compose(
            config_name="compare", overrides=["task_name=../../escape"], return_hydra_config=True
        )
    run_dir = Path(hydra_cfg.hydra.run.dir)
    assert cfg.task_name == "../../escape" and run_dir.parts[:2] == ("outputs", "_.._escape")


def test_an_unwritable_runs_index_keeps_the_finished_results(tmp_path, caplog):
    blocked = tmp_path / "index"
    blocked.write_text("a file where the index folder should be")  # unwritable even for root
    run = record()
    run.members_file = None
    with caplog.at_level(logging.WARNING):
        path = commit_run(run, tmp_path / "run", blocked)
    assert json.loads(path.read_text())["complete"] is True
    assert "runs index" in caplog.text


def test_folders_a_killed_training_left_behind_are_removed(tmp_path):
    dead = tmp_path / ".mnist_835-0123456789.tmp-999999999-deadbeef"
    old = tmp_path / ".mnist_835-0123456789.old-cafe0123"
    alive = tmp_path / f".mnist_835-0123456789.tmp-{os.getpid()}-0badf00d"
    finished = tmp_path / "mnist_835-0123456789"
    for folder in (dead, old, alive, finished):
        (folder / "checkpoints").mkdir(parents=True)
    assert sorted(remove_abandoned_folders(tmp_path)) == sorted([dead, old])
    assert alive.is_dir() and finished.is_dir() and not dead.exists() and not old.exists()


def test_an_unwritable_run_dir_fails_before_the_data(tmp_path, monkeypatch, checkpoint_root):
    blocked = tmp_path / "run"
    blocked.write_text("a file where the run dir should be")
    monkeypatch.setattr(rdx.data.registry, "load_image_set", no_data)
    cfg = compose_config("compare", tiny_compare_overrides(checkpoint_root))
    with pytest.raises(OSError, match="cannot be written.*hydra.run.dir"):
        run_compare(cfg, blocked)
