"""Tests for rdx.models: the ConvNet and hook-based feature extraction."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rdx.models import ConvNet, ConvNetClassifier, extract_features


@pytest.fixture
def convnet() -> ConvNet:
    torch.manual_seed(0)
    return ConvNet(num_classes=3)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randn(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))


class TinyTokenModel(nn.Module):
    """(N, T, D) token outputs from a submodule named "encoder", like a ViT block."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)[:, 0])


def test_convnet_layout_and_logits(convnet: ConvNet, images: torch.Tensor) -> None:
    names = {name for name, _ in convnet.named_children()}
    assert {"block1", "block2", "pool", "classifier"} <= names
    assert isinstance(convnet.block1[0], nn.Conv2d) and convnet.block1[0].kernel_size == (5, 5)
    assert convnet.block2[0].in_channels == 32 and convnet.block2[0].out_channels == 64
    assert convnet.classifier.in_features == 64
    assert convnet(images).shape == (10, 3)


def test_classifier_wraps_convnet() -> None:
    module = ConvNetClassifier(num_classes=4, max_epochs=2, steps_per_epoch=3)
    assert isinstance(module.net, ConvNet)
    optimizers = module.configure_optimizers()
    assert optimizers["lr_scheduler"]["interval"] == "step"
    assert optimizers["lr_scheduler"]["scheduler"].total_steps == 6


def test_block2_gap_features_are_64d_non_negative(convnet: ConvNet, images: torch.Tensor) -> None:
    features = extract_features(convnet, images, "block2", "gap", batch_size=4, progress=False)
    assert features.shape == (10, 64) and features.dtype == np.float32
    assert (features >= 0).all()
    whole = extract_features(convnet, images, "block2", "gap", batch_size=512, progress=False)
    np.testing.assert_allclose(features, whole, rtol=1e-5, atol=1e-6)
    assert not convnet.training


def test_flatten_and_none_pooling(convnet: ConvNet, images: torch.Tensor) -> None:
    assert extract_features(convnet, images, "block2", "flatten", progress=False).shape == (10, 64 * 7 * 7)
    logits = extract_features(convnet, images, "classifier", "none", progress=False)
    np.testing.assert_allclose(logits, convnet(images).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_token_poolings() -> None:
    model = TinyTokenModel()
    tokens = torch.randn(5, 7, 4)
    expected = model.encoder(tokens).detach()
    cls = extract_features(model, tokens, "encoder", "cls", progress=False)
    mean = extract_features(model, tokens, "encoder", "mean_tokens", progress=False)
    np.testing.assert_allclose(cls, expected[:, 0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mean, expected.mean(dim=1).numpy(), rtol=1e-5, atol=1e-6)


def test_bad_layer_lists_valid_names(convnet: ConvNet, images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="no layer 'block9'.*block1"):
        extract_features(convnet, images, "block9", progress=False)


def test_bad_pooling_errors_and_removes_hook(convnet: ConvNet, images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="unknown pooling"):
        extract_features(convnet, images, "block2", "max", progress=False)
    with pytest.raises(ValueError, match="'cls' needs a \\(N, T, D\\)"):
        extract_features(convnet, images, "block2", "cls", progress=False)
    with pytest.raises(ValueError, match="'none' needs a 2-D"):
        extract_features(convnet, images, "block2", "none", progress=False)
    assert not convnet.block2._forward_hooks
