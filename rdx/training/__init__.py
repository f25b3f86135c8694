"""Training the MNIST ConvNet (or fine-tuning a torchvision model) and working with its checkpoints."""

from rdx.training.checkpoints import (
    CheckpointSelectionError,
    checkpoint_model_spec,
    load_convnet_checkpoint,
    read_index,
    select_checkpoint,
)
from rdx.training.train import (
    DEFAULT_TRAIN_CONFIG,
    ensure_trained,
    resolve_train_config,
    train_convnet,
    training_config_key,
)

__all__ = [
    "DEFAULT_TRAIN_CONFIG",
    "CheckpointSelectionError",
    "checkpoint_model_spec",
    "ensure_trained",
    "load_convnet_checkpoint",
    "read_index",
    "resolve_train_config",
    "select_checkpoint",
    "train_convnet",
    "training_config_key",
]
