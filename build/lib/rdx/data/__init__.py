"""Datasets and image selection."""

from rdx.data.mnist import (
    MNIST_MEAN,
    MNIST_STD,
    DataSourceError,
    MNISTDataModule,
    images_to_tensor,
    load_mnist,
    read_idx,
    select_per_class,
)

__all__ = [
    "MNIST_MEAN",
    "MNIST_STD",
    "DataSourceError",
    "MNISTDataModule",
    "images_to_tensor",
    "load_mnist",
    "read_idx",
    "select_per_class",
]
