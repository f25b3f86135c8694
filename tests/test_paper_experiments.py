"""The paper's large-model experiment configs: they compose with the paper's settings, fail fast with a
clear message where data or weights are missing, and run end to end on stand-in data (generated image
folders and feature files) with randomly initialised models of the real architectures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from rdx.compare import run_compare
from rdx.data.mnist import DataSourceError
from rdx.models.registry import ModelSourceError
from rdx.record import load_run
from tests.conftest import compose_config

# Task name → the overrides that run it: one experiment config per family, the member picked by one value.
TRIPLETS = ("mittens", "buses", "greyhounds", "primates")
IMAGENET = {f"dino_vs_dinov2_{t}": ["experiment=dino_vs_dinov2", f"dataset=imagenet_{t}"] for t in TRIPLETS}
IMAGENET_ALIGNED = {
    f"dino_vs_dinov2_aligned_{t}": [
        "experiment=dino_vs_dinov2",
        f"dataset=imagenet_{t}",
        "method=rdx_aligned",
    ]
    for t in TRIPLETS
}
INAT = {
    f"clip_vs_clip_inat_{s}": ["experiment=clip_vs_clip_inat", f"dataset=inat_{s}"]
    for s in ("corvids", "maples", "gators")
}
CUB = {f"cub_pcbm_minus_{c}": ["experiment=cub_pcbm", f"removed_concept={c}"] for c in (27, 37, 81, 105, 109)}
PAPER_EXPERIMENTS = {**IMAGENET, **IMAGENET_ALIGNED, **INAT, **CUB}
# One of each family in the default suite; the others (same code, other classes) with -m slow.
QUICK = {"dino_vs_dinov2_primates", "dino_vs_dinov2_aligned_mittens", "clip_vs_clip_inat_maples", *CUB}
N_PER_CLASS = 8
N_CONCEPTS = 112  # CUB's concept count in the PCBM projections


def _params(names):
    return [pytest.param(name, marks=() if name in QUICK else pytest.mark.slow, id=name) for name in names]


@pytest.mark.parametrize(
    ("family", "default_task"),
    [
        ("dino_vs_dinov2", "dino_vs_dinov2_mittens"),
        ("clip_vs_clip_inat", "clip_vs_clip_inat_corvids"),
        ("cub_pcbm", "cub_pcbm_minus_27"),
    ],
)
def test_a_family_alone_runs_its_first_member(family, default_task):
    """Each family's one varying value (dataset, removed_concept) defaults to the paper's first."""
    cfg = compose_config("compare", [f"experiment={family}"])
    assert cfg.task_name == default_task
    assert OmegaConf.to_container(cfg, resolve=True) == OmegaConf.to_container(
        compose_config("compare", PAPER_EXPERIMENTS[default_task]), resolve=True
    )


@pytest.fixture(autouse=True)
def _no_hub_caches(tmp_path, monkeypatch):
    """Empty model caches, so that a developer's downloaded weights cannot make a test pass."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def _base_overrides(name: str, tmp_path: Path) -> list[str]:
    return [
        *PAPER_EXPERIMENTS[name],
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.cache={tmp_path / 'cache'}",
        f"paths.runs_index={tmp_path / 'runs'}",
        f"paths.checkpoints={tmp_path / 'checkpoints'}",
        "resume=false",
        "logger=disabled",
        "features.progress=false",
        "++dataset.progress=false",
    ]


def _write_images(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` small RGB images of differing sizes and colours."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        height, width = rng.integers(40, 72, size=2)
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        path = folder / f"img_{index:03d}.jpg"
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


def _stand_in_data(cfg, tmp_path: Path) -> None:
    """Files shaped like the experiment's real data, where its config expects them."""
    dataset = cfg.dataset
    if dataset.kind == "image_folder":
        root = Path(dataset.root)
        for position, synset in enumerate(dataset.classes):
            _write_images(root / synset, N_PER_CLASS + 2, position)
        _write_images(root / "n00000001", 3, 99)  # a class that is not asked for
    elif dataset.kind == "inat":
        root = Path(dataset.root)
        for position, species in enumerate(dataset.classes):
            folder = f"{position:05d}_Animalia_Chordata_Aves_Order_Family_{species.replace(' ', '_')}"
            _write_images(root / folder, N_PER_CLASS + 2, position)
    elif dataset.kind == "precomputed":
        rng = np.random.default_rng(0)
        labels = np.repeat(np.arange(1, 5), N_PER_CLASS)  # CUB labels start at 1
        projections = rng.normal(size=(labels.size, N_CONCEPTS)).astype(np.float32)
        projections[:, 27] += 3.0 * (labels % 2)  # one concept carries a class difference
        Path(cfg.model_b.file).parent.mkdir(parents=True, exist_ok=True)
        np.save(cfg.model_b.file, projections)
        np.save(dataset.labels_file, labels)
        paths = _write_images(Path(dataset.image_root) / "birds", labels.size, 5)
        lines = [f"{i + 1} birds/{path.name}" for i, path in enumerate(paths)]
        Path(dataset.image_list).write_text("\n".join(lines) + "\n")
    else:
        raise AssertionError(f"no stand-in data for dataset kind {dataset.kind}")


def _random_init(cfg) -> list[str]:
    """Overrides that build each model with random weights at a small input size."""
    overrides = []
    for side in ("model_a", "model_b"):
        model = cfg[side]
        if model.kind != "timm":
            continue
        size = 28 if "patch14" in model.name else 32
        overrides += [
            f"{side}.pretrained=false",
            f"{side}.checkpoint=null",
            f"++{side}.model_kwargs.img_size={size}",
            f"{side}.input_size={size}",
        ]
    return overrides


@pytest.mark.parametrize("name", PAPER_EXPERIMENTS)
def test_paper_experiment_composes_with_the_papers_settings(name):
    cfg = compose_config("compare", PAPER_EXPERIMENTS[name])
    assert cfg.task_name == name
    assert cfg.method.params.n_concepts == 5
    assert cfg.method.params.gamma == (0.1 if name.startswith("cub") else 0.05)
    assert cfg.method.params.align == ("aligned" in name)
    if name.startswith("dino"):
        assert (cfg.model_a.name, cfg.model_b.name) == (
            "vit_base_patch16_224.dino",
            "vit_base_patch14_reg4_dinov2.lvd142m",
        )
        assert cfg.dataset.kind == "image_folder" and cfg.dataset.n_per_class == 500
        assert len(cfg.dataset.classes) == 3
    elif name.startswith("clip"):
        assert cfg.model_a.name == "vit_large_patch14_clip_336.openai"
        assert cfg.dataset.kind == "inat" and cfg.dataset.n_per_class == 500
    else:
        column = int(name.rsplit("_", 1)[1])
        assert list(cfg.model_a.exclude_columns) == [column]
        assert cfg.model_a.label == f"pcbm_minus_{column}"
        assert list(cfg.model_b.exclude_columns) == []
        assert cfg.model_a.file == cfg.model_b.file
    for side in ("model_a", "model_b"):  # weights are never fetched unless asked for
        assert cfg[side].get("allow_download", False) is False


@pytest.mark.parametrize("name", ["dino_vs_dinov2_primates", "clip_vs_clip_inat_maples", "cub_pcbm_minus_27"])
def test_missing_data_fails_at_once_naming_the_path_and_the_override(name, tmp_path):
    cfg = compose_config("compare", _base_overrides(name, tmp_path))
    started = time.perf_counter()
    with pytest.raises(DataSourceError) as raised:
        run_compare(cfg, tmp_path / "run")
    assert time.perf_counter() - started < 5
    message = str(raised.value)
    assert str(tmp_path / "data") in message
    assert "dataset." in message or "paths." in message
    assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.parametrize(
    ("name", "side", "override"),
    [
        ("dino_vs_dinov2_primates", "model_a", "model_a.checkpoint="),
        ("clip_vs_clip_inat_maples", "model_a", "model_a.checkpoint="),
    ],
)
def test_missing_weights_fail_at_once_naming_the_file_and_the_override(name, side, override, tmp_path):
    """With the data in place, the first model without local weights stops the run within seconds
    (a hub load would retry for ~45 s), naming where it looked and the override to use."""
    overrides = [*_base_overrides(name, tmp_path), f"dataset.n_per_class={N_PER_CLASS}"]
    cfg = compose_config("compare", overrides)
    _stand_in_data(cfg, tmp_path)
    started = time.perf_counter()
    with pytest.raises(ModelSourceError) as raised:
        run_compare(cfg, tmp_path / "run")
    assert time.perf_counter() - started < 15
    message = str(raised.value)
    assert override in message
    assert cfg[side].name in message
    assert not (tmp_path / "run" / "results.json").exists()


def test_clip_inat_without_its_weights_file_names_the_file(tmp_path):
    overrides = [
        *_base_overrides("clip_vs_clip_inat_maples", tmp_path),
        *_random_init_side("model_a"),
        f"dataset.n_per_class={N_PER_CLASS}",
    ]
    cfg = compose_config("compare", overrides)
    _stand_in_data(cfg, tmp_path)
    started = time.perf_counter()
    with pytest.raises(
        ModelSourceError, match=r"clip_vitl14_336_inat21\.safetensors does not exist.*model_b"
    ):
        run_compare(cfg, tmp_path / "run")
    assert time.perf_counter() - started < 5  # checked before model A (ViT-L) is built


def _random_init_side(side: str) -> list[str]:
    return [f"{side}.pretrained=false", f"{side}.checkpoint=null", f"++{side}.model_kwargs.img_size=28"]


@pytest.mark.parametrize("name", _params(PAPER_EXPERIMENTS))
def test_paper_experiment_runs_end_to_end_on_stand_in_data(name, tmp_path):
    composed = compose_config("compare", _base_overrides(name, tmp_path))
    _stand_in_data(composed, tmp_path)
    overrides = [*_base_overrides(name, tmp_path), *_random_init(composed)]
    if composed.dataset.kind in ("image_folder", "inat"):
        overrides.append(f"dataset.n_per_class={N_PER_CLASS}")
    cfg = compose_config("compare", overrides)
    results = run_compare(cfg, tmp_path / "run").to_json()

    n_images = 3 * N_PER_CLASS if cfg.dataset.kind != "precomputed" else 4 * N_PER_CLASS
    assert results["complete"] is True
    assert results["dataset"]["n_images"] == n_images
    main = results["methods"][cfg.method.label]
    shown = {side: sum(c["side"] == side for c in main["concepts"]) for side in "AB"}
    assert set(shown) == {"A", "B"} and all(0 < count <= 5 for count in shown.values())
    assert 0.0 <= main["metrics"]["silb"]["bsr"]["mean"] <= 1.0
    grids = sorted((tmp_path / "run" / "grids" / cfg.method.label).glob("*.png"))
    assert len(grids) == sum(shown.values())
    assert (tmp_path / "run" / "summary.png").is_file()
    if cfg.dataset.kind == "precomputed":
        column = int(name.rsplit("_", 1)[1])
        assert results["features"]["A"]["dim"] == N_CONCEPTS - 1
        assert results["features"]["B"]["dim"] == N_CONCEPTS
        assert results["models"]["A"]["exclude_columns"] == [column]
    else:
        for side, model_cfg in (("A", cfg.model_a), ("B", cfg.model_b)):
            info = results["models"][side]
            assert info["kind"] == "timm" and info["weights"] == "random init"
            assert info["pooling"] == "cls"
            assert info["layer"] == f"blocks.{23 if 'large' in model_cfg.name else 11}"
            width = 1024 if "large" in model_cfg.name else 768
            assert results["features"][side]["dim"] == width
        # the grids show the dataset's own files: every shown image is one of the generated ones
        labels = OmegaConf.to_container(cfg.dataset.class_names)
        assert set(results["dataset"]["label_names"].values()) == set(labels)
    if "aligned" in name:
        assert set(main["info"]["alignment"]) == {"01", "10"}


def test_cub_family_runs_as_one_multirun_over_the_removed_concept(tmp_path):
    """The documented sweep: one job per removed concept, each with its own task name and model A, in
    the family's sweep folder (multirun/cub_pcbm/<date>/<job>)."""
    base = [o for o in _base_overrides("cub_pcbm_minus_27", tmp_path) if "removed_concept" not in o]
    _stand_in_data(compose_config("compare", base), tmp_path)
    command = [str(Path(sys.executable).with_name("rdx-compare")), "-m", *base, "removed_concept=27,37"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sweep,) = (tmp_path / "multirun" / "cub_pcbm").iterdir()
    records = [load_run(sweep / job) for job in ("0", "1")]
    assert [r.task_name for r in records] == ["cub_pcbm_minus_27", "cub_pcbm_minus_37"]
    assert [r.models["A"]["exclude_columns"] for r in records] == [[27], [37]]
    assert [r.features["A"]["dim"] for r in records] == [N_CONCEPTS - 1] * 2
