"""Tests for rdx.models.registry: loading timm / torchvision / open_clip / ConvNet models with their own
transforms and default layers, token poolings, and failing fast when weights are not available locally.

All models are randomly initialised and small (timm ViTs at 28-32 px); nothing is downloaded.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torchvision
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

from rdx.data.mnist import images_to_tensor
from rdx.models.checkpoints import save_checkpoint
from rdx.models.convnet import ConvNet
from rdx.models.features import extract_features
from rdx.models.registry import (
    LoadedNetwork,
    ModelSourceError,
    check_weights,
    default_layer_for,
    load_network,
)

TOKEN_POOLINGS = ("cls", "mean_tokens", "flatten")


@pytest.fixture(autouse=True)
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the torch hub and Hugging Face caches at empty folders, so no test sees real weights."""
    import huggingface_hub.constants

    previous_hub_dir = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "torch_hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf_hub"))
    yield tmp_path
    torch.hub.set_dir(previous_hub_dir)


def pil_images(count: int, size: tuple[int, int] = (45, 37), mode: str = "RGB") -> list[Image.Image]:
    generator = np.random.default_rng(0)
    channels = {"RGB": 3, "L": 1}[mode]
    arrays = generator.integers(0, 256, size=(count, size[1], size[0], channels), dtype=np.uint8)
    return [Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode) for array in arrays]


def hooked_output(network: nn.Module, layer: str, inputs: torch.Tensor) -> torch.Tensor:
    """The full output of ``layer``, captured by a forward hook written independently of rdx."""
    captured = []
    handle = network.get_submodule(layer).register_forward_hook(
        lambda module, args, output: captured.append(output.detach())
    )
    try:
        with torch.no_grad():
            network.eval()(inputs)
    finally:
        handle.remove()
    return captured[0]


def state_dicts_equal(first: nn.Module, second: nn.Module) -> bool:
    first_state, second_state = first.state_dict(), second.state_dict()
    return first_state.keys() == second_state.keys() and all(
        torch.equal(first_state[name], second_state[name]) for name in first_state
    )


# --------------------------------------------------------------------------------------------------
# timm vision transformers
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "img_size", "prefix_tokens", "width"),
    [("vit_tiny_patch16_224", 32, 1, 192), ("vit_small_patch14_reg4_dinov2", 28, 5, 384)],
)
def test_timm_vit_default_is_last_block_cls_token(
    name: str, img_size: int, prefix_tokens: int, width: int
) -> None:
    torch.manual_seed(0)
    loaded = load_network({"kind": "timm", "name": name, "model_kwargs": {"img_size": img_size}})
    assert isinstance(loaded, LoadedNetwork)
    assert (loaded.default_layer, loaded.default_pooling) == ("blocks.11", "cls")
    assert loaded.num_prefix_tokens == prefix_tokens == loaded.network.num_prefix_tokens
    assert not loaded.network.training
    assert loaded.info["kind"] == "timm" and loaded.info["weights"] == "random init"
    assert loaded.info["input_size"] == [3, img_size, img_size]
    assert loaded.info["num_parameters"] == sum(p.numel() for p in loaded.network.parameters())

    inputs = loaded.preprocess(pil_images(3) + pil_images(2, mode="L"))
    assert inputs.shape == (5, 3, img_size, img_size)
    tokens = hooked_output(loaded.network, "blocks.11", inputs)
    patches = (img_size // loaded.network.patch_embed.patch_size[0]) ** 2
    assert tokens.shape == (5, prefix_tokens + patches, width)

    features = {
        pooling: loaded.extract(inputs, pooling=pooling, progress=False) for pooling in TOKEN_POOLINGS
    }
    assert features["cls"].shape == features["mean_tokens"].shape == (5, width)
    assert features["flatten"].shape == (5, (prefix_tokens + patches) * width)
    np.testing.assert_allclose(features["cls"], tokens[:, 0].numpy(), rtol=1e-5, atol=1e-5)
    # mean_tokens averages the patch tokens only: CLS and register tokens are skipped.
    np.testing.assert_allclose(
        features["mean_tokens"], tokens[:, prefix_tokens:].mean(dim=1).numpy(), rtol=1e-5, atol=1e-5
    )
    assert not np.allclose(features["mean_tokens"], tokens.mean(dim=1).numpy(), atol=1e-4)
    # The same through extract_features on the bare network: the prefix count is read from the model.
    bare = extract_features(loaded.network, inputs, "blocks.11", "mean_tokens", batch_size=2, progress=False)
    np.testing.assert_allclose(bare, features["mean_tokens"], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="'gap' needs a \\(N, C, H, W\\)"):
        loaded.extract(inputs, pooling="gap", progress=False)


def test_timm_vit_without_class_token_defaults_to_mean_tokens() -> None:
    loaded = load_network(
        {
            "kind": "timm",
            "name": "vit_tiny_patch16_224",
            "model_kwargs": {"img_size": 32, "class_token": False, "global_pool": "avg"},
        }
    )
    assert (loaded.default_layer, loaded.default_pooling, loaded.num_prefix_tokens) == (
        "blocks.11",
        "mean_tokens",
        0,
    )
    inputs = loaded.preprocess(pil_images(2))
    assert loaded.extract(inputs, progress=False).shape == (2, 192)
    with pytest.raises(ValueError, match="no CLS token|has none"):
        loaded.extract(inputs, pooling="cls", progress=False)


def test_spec_layer_and_pooling_replace_the_defaults() -> None:
    spec = {
        "kind": "timm",
        "name": "vit_tiny_patch16_224",
        "model_kwargs": {"img_size": 32},
        "layer": "blocks.5",
        "pooling": "mean_tokens",
    }
    loaded = load_network(spec)
    assert (loaded.default_layer, loaded.default_pooling) == ("blocks.5", "mean_tokens")
    assert loaded.info["default_layer"] == "blocks.5"


def test_wrong_layer_name_lists_available_names() -> None:
    spec = {"kind": "timm", "name": "vit_tiny_patch16_224", "model_kwargs": {"img_size": 32}}
    loaded = load_network(spec)
    inputs = loaded.preprocess(pil_images(2))
    with pytest.raises(ValueError, match=r"no layer 'blocks\.12'.*did you mean.*'blocks\.1.*patch_embed"):
        loaded.extract(inputs, layer="blocks.12", progress=False)
    # A config naming a missing layer fails when the model loads, before any images are read.
    with pytest.raises(ValueError, match=r"no layer 'block\.11'.*blocks\.11"):
        load_network({**spec, "layer": "block.11"})
    with pytest.raises(ValueError, match="unknown pooling"):
        load_network({**spec, "pooling": "max"})


def test_timm_checkpoint_file_saved_as_is_loads_exactly(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = timm.create_model("vit_tiny_patch16_224", img_size=32, num_classes=7)
    path = tmp_path / "fine_tuned.pth"
    torch.save(source.state_dict(), path)
    spec = {
        "kind": "timm",
        "name": "vit_tiny_patch16_224",
        "checkpoint": str(path),
        "model_kwargs": {"img_size": 32, "num_classes": 7},
    }
    loaded = load_network(spec)
    assert state_dicts_equal(loaded.network, source)  # the fine-tuned head included
    assert loaded.info["weights_file"] == str(path)


def test_timm_checkpoint_for_another_input_size_goes_through_timms_loader(tmp_path: Path) -> None:
    """A 224-px checkpoint in a 32-px model: timm's pretrained loader resamples the position embedding."""
    torch.manual_seed(8)
    source = timm.create_model("vit_tiny_patch16_224")
    path = tmp_path / "vit_tiny_224.pth"
    torch.save(source.state_dict(), path)
    loaded = load_network(
        {
            "kind": "timm",
            "name": "vit_tiny_patch16_224",
            "checkpoint": str(path),
            "model_kwargs": {"img_size": 32},
        }
    )
    assert loaded.network.pos_embed.shape == (1, 1 + 4, 192)
    torch.testing.assert_close(loaded.network.blocks[3].mlp.fc1.weight, source.blocks[3].mlp.fc1.weight)
    torch.testing.assert_close(loaded.network.cls_token, source.cls_token)


def test_timm_pretrained_weights_come_from_the_local_hub_cache(empty_caches: Path) -> None:
    """pretrained=true without a checkpoint reads the Hugging Face cache, with no network call."""
    from safetensors.torch import save_file

    name = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    torch.manual_seed(2)
    source = timm.create_model(name, img_size=32)
    snapshot = empty_caches / "hf_hub" / f"models--timm--{name}" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    save_file(
        {key: value.contiguous() for key, value in source.state_dict().items()},
        snapshot / "model.safetensors",
    )
    loaded = load_network(
        {"kind": "timm", "name": name, "pretrained": True, "model_kwargs": {"img_size": 32}}
    )
    assert state_dicts_equal(loaded.network, source)
    assert loaded.info["weights_file"] == str(snapshot / "model.safetensors")


def test_timm_hub_weights_without_local_file_fail_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("timm.create_model must not run (it would try the hub)")

    monkeypatch.setattr(timm, "create_model", no_build)
    start = time.perf_counter()
    with pytest.raises(ModelSourceError) as raised:
        load_network(
            {"kind": "timm", "name": "vit_base_patch14_reg4_dinov2.lvd142m", "pretrained": True}, "model_b"
        )
    assert time.perf_counter() - start < 5
    message = str(raised.value)
    assert "vit_base_patch14_reg4_dinov2.lvd142m" in message
    assert "model_b.checkpoint=/path/to/weights" in message
    assert "model.safetensors" in message and "dinov2_vitb14_reg4_pretrain.pth" in message

    with pytest.raises(ModelSourceError, match=r"does not exist.*model_a\.checkpoint="):
        load_network(
            {"kind": "timm", "name": "vit_base_patch16_224.dino", "checkpoint": "/missing/dino.pth"},
            "model_a",
        )


# --------------------------------------------------------------------------------------------------
# torchvision
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "layer", "channels"), [("mobilenet_v2", "features.18", 1280), ("resnet18", "layer4", 512)]
)
def test_torchvision_cnn_default_is_last_feature_block_gap(name: str, layer: str, channels: int) -> None:
    torch.manual_seed(0)
    loaded = load_network({"kind": "torchvision", "name": name, "weights": None, "input_size": 64})
    assert (loaded.default_layer, loaded.default_pooling) == (layer, "gap")
    assert loaded.info["weights"] == "random init" and loaded.info["input_size"] == [3, 64, 64]
    inputs = loaded.preprocess(pil_images(3, size=(80, 70)) + pil_images(1, mode="L"))
    assert inputs.shape == (4, 3, 64, 64)
    feature_map = hooked_output(loaded.network, layer, inputs)
    assert feature_map.shape == (4, channels, 2, 2)
    gap = loaded.extract(inputs, progress=False)
    np.testing.assert_allclose(gap, feature_map.mean(dim=(2, 3)).numpy(), rtol=1e-5, atol=1e-5)
    assert loaded.extract(inputs, pooling="flatten", progress=False).shape == (4, channels * 4)
    with pytest.raises(ValueError, match="'cls' needs a \\(N, T, D\\)"):
        loaded.extract(inputs, pooling="cls", progress=False)


def test_torchvision_vit_default_is_last_encoder_layer_cls() -> None:
    torch.manual_seed(0)
    loaded = load_network({"kind": "torchvision", "name": "vit_b_16", "model_kwargs": {"image_size": 32}})
    assert (loaded.default_layer, loaded.default_pooling) == ("encoder.layers.encoder_layer_11", "cls")
    assert loaded.num_prefix_tokens == 1 and loaded.info["input_size"] == [3, 32, 32]
    inputs = loaded.preprocess(pil_images(2))
    tokens = hooked_output(loaded.network, loaded.default_layer, inputs)
    assert tokens.shape == (2, 5, 768)
    np.testing.assert_allclose(loaded.extract(inputs, progress=False), tokens[:, 0].numpy(), atol=1e-5)
    mean = loaded.extract(inputs, pooling="mean_tokens", progress=False)
    np.testing.assert_allclose(mean, tokens[:, 1:].mean(dim=1).numpy(), atol=1e-5)


def test_torchvision_weights_file_with_fine_tuned_head(tmp_path: Path) -> None:
    torch.manual_seed(3)
    source = torchvision.models.resnet18(num_classes=4)
    path = tmp_path / "fine_tuned.pth"
    # A wrapped training checkpoint: the state dict under "state_dict", every key prefixed "net.".
    torch.save({"state_dict": {f"net.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = load_network({"kind": "torchvision", "name": "resnet18", "weights_file": str(path)})
    assert loaded.network.fc.out_features == 4  # head size read from the file
    assert state_dicts_equal(loaded.network, source)
    assert loaded.info["weights_file"] == str(path) and loaded.info["input_size"] == [3, 224, 224]


def test_torchvision_weights_enum_from_local_hub_cache(empty_caches: Path) -> None:
    weights = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
    torch.manual_seed(4)
    source = torchvision.models.mobilenet_v2()
    cached = empty_caches / "torch_hub" / "checkpoints" / Path(weights.url).name
    cached.parent.mkdir(parents=True)
    torch.save(source.state_dict(), cached)
    loaded = load_network(
        {"kind": "torchvision", "name": "mobilenet_v2", "weights": "IMAGENET1K_V1", "input_size": 96}
    )
    assert state_dicts_equal(loaded.network, source)
    assert loaded.info["weights_file"] == str(cached)
    # The enum's own preset at the smaller size: resize 96 * 256 / 224 ≈ 110, crop 96.
    assert loaded.preprocess(pil_images(1, size=(200, 150))).shape == (1, 3, 96, 96)


def test_torchvision_weights_enum_not_cached_fails_fast(empty_caches: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(ModelSourceError) as raised:
        load_network({"kind": "torchvision", "name": "mobilenet_v2", "weights": "IMAGENET1K_V1"}, "model_a")
    assert time.perf_counter() - start < 5
    message = str(raised.value)
    expected = empty_caches / "torch_hub" / "checkpoints" / "mobilenet_v2-b0353104.pth"
    assert str(expected) in message
    assert "model_a.weights_file=/path/to/file.pth" in message
    with pytest.raises(ValueError, match="no weights 'IMAGENET9K'.*IMAGENET1K_V1"):
        load_network({"kind": "torchvision", "name": "mobilenet_v2", "weights": "IMAGENET9K"})


# --------------------------------------------------------------------------------------------------
# The project's ConvNet
# --------------------------------------------------------------------------------------------------


def test_convnet_from_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(5)
    source = ConvNet(num_classes=3)
    path = tmp_path / "step_10.pt"
    network_args = {"num_classes": 3, "channels": [32, 64]}
    save_checkpoint(path, source, network_args, step=10, epoch=0, val_acc=0.9, val_loss=0.3)
    # A Hydra model config works as well as a dict.
    loaded = load_network(OmegaConf.create({"kind": "convnet", "name": "strong", "checkpoint": str(path)}))
    assert (loaded.default_layer, loaded.default_pooling) == ("block2", "gap")
    assert state_dicts_equal(loaded.network, source)
    assert loaded.info["input_size"] == [1, 28, 28]

    digits = pil_images(4, size=(28, 28), mode="L")
    inputs = loaded.preprocess(digits)
    expected = images_to_tensor(np.stack([np.asarray(image) for image in digits]))
    torch.testing.assert_close(inputs, expected)
    features = loaded.extract(inputs, progress=False)
    assert features.shape == (4, 64)
    np.testing.assert_allclose(features, extract_features(source, expected, "block2", progress=False))

    with pytest.raises(ModelSourceError, match=r"missing\.pt does not exist.*model_a\.checkpoint="):
        load_network({"kind": "convnet", "checkpoint": str(tmp_path / "missing.pt")}, "model_a")


# --------------------------------------------------------------------------------------------------
# open_clip (optional package) and the rules themselves
# --------------------------------------------------------------------------------------------------


def test_open_clip_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(ImportError, match="pip install open_clip_torch"):
        load_network({"kind": "open_clip", "name": "ViT-L-14-336", "checkpoint": "/x.pt"})


def test_open_clip_visual_tower_from_checkpoint(tmp_path: Path) -> None:
    open_clip = pytest.importorskip("open_clip")
    torch.manual_seed(6)
    model = open_clip.create_model("ViT-S-16-alt", force_image_size=32, pretrained_text=False)
    path = tmp_path / "clip.pt"
    torch.save(model.state_dict(), path)
    spec = {"kind": "open_clip", "name": "ViT-S-16-alt", "model_kwargs": {"force_image_size": 32}}
    loaded = load_network({**spec, "checkpoint": str(path)})
    assert (loaded.default_layer, loaded.default_pooling) == ("transformer.resblocks.11", "cls")
    assert state_dicts_equal(loaded.network, model.visual)
    inputs = loaded.preprocess(pil_images(2))
    assert inputs.shape == (2, 3, 32, 32)
    tokens = hooked_output(loaded.network, loaded.default_layer, inputs)
    np.testing.assert_allclose(loaded.extract(inputs, progress=False), tokens[:, 0].numpy(), atol=1e-5)
    with pytest.raises(ModelSourceError, match="model_x.checkpoint=/path/to/weights"):
        load_network({**spec, "pretrained": "openai"})


def test_default_layer_rule_for_bare_networks() -> None:
    small_vit = torchvision.models.VisionTransformer(
        image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16
    )
    assert default_layer_for(small_vit) == ("encoder.layers.encoder_layer_1", "cls")
    assert default_layer_for(ConvNet(num_classes=2, channels=(4, 8, 8))) == ("block3", "gap")
    assert default_layer_for(timm.create_model("resnet18")) == ("layer4", "gap")
    with pytest.raises(ValueError, match="no default layer.*set layer and pooling"):
        default_layer_for(nn.Sequential(nn.Linear(2, 2)))


def test_unknown_kind_and_model() -> None:
    with pytest.raises(ValueError, match="unknown model kind 'keras'"):
        load_network({"kind": "keras", "name": "x"})
    with pytest.raises(ValueError, match="timm has no model"):
        load_network({"kind": "timm", "name": "not_a_model"})
    with pytest.raises(ValueError, match="torchvision has no model"):
        load_network({"kind": "torchvision", "name": "not_a_model"})


def test_extract_features_accepts_a_data_loader() -> None:
    torch.manual_seed(7)
    network = ConvNet(num_classes=2)
    images = torch.randn(10, 1, 28, 28)
    labels = torch.zeros(10, dtype=torch.long)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=4)
    from_loader = extract_features(network, loader, "block2", progress=False)
    np.testing.assert_allclose(
        from_loader, extract_features(network, images, "block2", progress=False), atol=1e-6
    )
    with pytest.raises(ValueError, match="inputs is empty"):
        extract_features(network, [], "block2", progress=False)


@pytest.mark.parametrize(
    ("spec", "override"),
    [
        ({"kind": "convnet", "name": "m", "checkpoint": "missing.pt"}, "model_b.checkpoint="),
        ({"kind": "torchvision", "name": "resnet18", "weights": "IMAGENET1K_V1"}, "model_b.weights_file="),
        ({"kind": "torchvision", "name": "resnet18", "weights_file": "nope.pth"}, "model_b.weights_file="),
        ({"kind": "timm", "name": "vit_base_patch16_224.dino", "pretrained": True}, "model_b.checkpoint="),
        ({"kind": "timm", "name": "vit_tiny_patch16_224", "checkpoint": "nope.pth"}, "model_b.checkpoint="),
        ({"kind": "open_clip", "name": "ViT-B-32", "pretrained": "openai"}, "model_b.checkpoint="),
    ],
)
def test_check_weights_reports_missing_weights_without_building(
    spec: dict, override: str, empty_caches: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preflight the compare app runs for both models before loading either."""

    def no_build(*args, **kwargs):
        raise AssertionError("check_weights must not build a model")

    monkeypatch.setattr(timm, "create_model", no_build)
    monkeypatch.setattr(torchvision.models, "get_model", no_build)
    started = time.perf_counter()
    with pytest.raises(ModelSourceError, match=override):
        check_weights(spec, "model_b")
    assert time.perf_counter() - started < 2


def test_check_weights_passes_for_random_init_and_existing_files(tmp_path: Path) -> None:
    weights = tmp_path / "w.pth"
    torch.save({}, weights)
    check_weights({"kind": "timm", "name": "vit_tiny_patch16_224", "pretrained": False}, "model_a")
    check_weights({"kind": "timm", "name": "vit_tiny_patch16_224", "checkpoint": str(weights)}, "model_a")
    check_weights({"kind": "torchvision", "name": "resnet18", "weights_file": str(weights)}, "model_a")
    check_weights({"kind": "precomputed", "name": "features"}, "model_a")
