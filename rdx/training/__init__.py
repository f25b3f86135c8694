"""Training the MNIST ConvNet (or fine-tuning a torchvision model); checkpoint files live in
:mod:`rdx.models.checkpoints`."""

from rdx.training.train import (
    DEFAULT_TRAIN_CONFIG,
    ensure_trained,
    resolve_train_config,
    train_convnet,
    training_config_key,
)

__all__ = [
    "DEFAULT_TRAIN_CONFIG",
    "ensure_trained",
    "resolve_train_config",
    "train_convnet",
    "training_config_key",
]
