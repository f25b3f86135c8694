"""Seed twins, the null model for per-concept significance: two models trained with the same recipe and
different seeds. Their configs must differ from seed 0's only in the seed and the name, land in their
own checkpoint folder, and the two comparisons must be their seed-0 counterparts with another model B."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rdx.training.train import resolve_train_config, trained_run_dir
from tests.conftest import compose_config

# seed-1 training config -> the seed-0 one it repeats
TWIN_TRAININGS = {"mnist_835_seed1": "mnist_835", "mnist_all_seed1": "mnist_all"}
# twin comparison -> (the comparison whose images and settings it shares, and whose model B is the twins'
# seed-0 model A; the twins' labels A and B)
TWIN_COMPARISONS = {
    "mnist_835_seed_twins": ("mnist_835", "expert", "expert_seed1"),
    "mnist_seed_twins": ("m35_vs_mnist", "mnist", "mnist_seed1"),
}


def training(option: str) -> dict:
    return resolve_train_config(
        OmegaConf.to_container(compose_config("train", [f"training={option}"]).training)
    )


@pytest.mark.parametrize("twin", sorted(TWIN_TRAININGS))
def test_a_twin_training_differs_only_in_seed_and_name(twin):
    seed1, seed0 = training(twin), training(TWIN_TRAININGS[twin])
    assert (seed0["seed"], seed1["seed"]) == (0, 1)
    assert seed1["name"] == twin and seed0["name"] == TWIN_TRAININGS[twin]
    strip = ("seed", "name")
    assert {k: v for k, v in seed1.items() if k not in strip} == {
        k: v for k, v in seed0.items() if k not in strip
    }
    # its own checkpoint folder, so the seed-0 checkpoints are reused, never overwritten
    root = Path("/checkpoints")
    assert trained_run_dir(seed1, root) != trained_run_dir(seed0, root)
    assert trained_run_dir(seed1, root).name.startswith(f"{twin}-")


@pytest.mark.parametrize("twin", sorted(TWIN_TRAININGS))
def test_the_seed_alone_changes_the_training_folder(twin):
    seed0 = training(TWIN_TRAININGS[twin])
    reseeded = {**seed0, "seed": 1}
    key = trained_run_dir(seed0, Path("/c")).name.rsplit("-", 1)[1]
    assert trained_run_dir(reseeded, Path("/c")).name.rsplit("-", 1)[1] != key


@pytest.mark.parametrize("name", sorted(TWIN_COMPARISONS))
def test_a_twin_comparison_is_its_seed0_counterpart_with_another_model_b(name):
    counterpart, label_a, label_b = TWIN_COMPARISONS[name]
    cfg = OmegaConf.to_container(compose_config("compare", [f"experiment={name}"]), resolve=False)
    reference = OmegaConf.to_container(
        compose_config("compare", [f"experiment={counterpart}"]), resolve=False
    )
    assert cfg["task_name"] == name
    assert (cfg["model_a"]["name"], cfg["model_b"]["name"]) == (label_a, label_b)
    assert cfg["planted"] is None  # no designed difference
    assert cfg["model_a"] == reference["model_b"]
    # model A is seed 0's model; model B is the same model config with the seed-1 training run
    seed0_model = cfg["model_a"]
    twin_model = cfg["model_b"]
    assert twin_model["training"]["seed"] == 1 and seed0_model["training"]["seed"] == 0
    assert {k: v for k, v in twin_model.items() if k not in ("name", "training")} == {
        k: v for k, v in seed0_model.items() if k not in ("name", "training")
    }
    assert twin_model["select"]["strategy"] == "final"
    # the same images, method and baselines as the counterpart
    for key in ("dataset", "method", "baselines", "features", "metrics", "seed"):
        assert cfg[key] == reference[key], key
    assert sorted(cfg["baselines"]) == [
        "cnmf",
        "kmeans",
        "nlmcd",
        "nmf",
        "pca",
        "sae",
        "spec",
        "topk_sae",
        "usae",
    ]
