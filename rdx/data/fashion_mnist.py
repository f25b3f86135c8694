"""Fashion-MNIST: offline-first loading of the official idx files (same format and sizes as MNIST).

Sources, tried in order by :func:`load_fashion_mnist`:

1. a local folder holding ``train-images-idx3-ubyte[.gz]`` … — directly in ``root`` (the layout of the
   Debian package ``dataset-fashion-mnist``, ``/usr/share/datasets/fashion-mnist``), or in torchvision's
   ``<root>/FashionMNIST/raw`` (or ``<root>/raw``) layout;
2. ``torchvision.datasets.FashionMNIST(root, download=True)`` when ``download`` is True (needs internet;
   it writes torchvision's layout, which source 1 finds afterwards).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rdx.data.imageset import ImageSet
from rdx.data.mnist import SPLITS, download_split, first_working_source, load_idx_split

logger = logging.getLogger(__name__)

# The official class names, index = label.
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
ROOT_ENV_VAR = "RDX_FASHION_MNIST_ROOT"
# Where the Debian package dataset-fashion-mnist installs the idx files.
DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_HOW_TO_PROVIDE = (
    "Provide Fashion-MNIST in one of these ways: install the Debian package "
    "(`apt-get install dataset-fashion-mnist`, which puts the idx files in "
    f"{DEBIAN_ROOT}); or point at a folder holding the idx files (train-images-idx3-ubyte[.gz] …, "
    "directly in it or in <root>/FashionMNIST/raw) with the override `paths.fashion_mnist_root=/path` "
    f"(or `training.data.root=/path`, or the environment variable {ROOT_ENV_VAR}=/path); or allow a "
    "download on a machine with internet access with `training.data.download=true`."
)


def default_root() -> Path:
    """``$RDX_FASHION_MNIST_ROOT`` when set, else the Debian package's folder."""
    return Path(os.environ.get(ROOT_ENV_VAR) or DEBIAN_ROOT)


@lru_cache(maxsize=8)
def _load_cached(split: str, root: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    local_root = Path(root)
    folders = [local_root, local_root / "FashionMNIST" / "raw", local_root / "raw"]
    sources = [
        (f"local root {local_root}", lambda: load_idx_split(folders, *_IDX_FILES[split])),
        (
            f"torchvision download into {local_root}",
            (lambda: download_split("FashionMNIST", split, local_root)) if download else None,
        ),
    ]
    return first_working_source("Fashion-MNIST", split, sources, _HOW_TO_PROVIDE)


def load_fashion_mnist(
    split: str, root: str | Path | None = None, download: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Load one Fashion-MNIST split from the first source that works (see the module docstring).

    Results are cached in-process; the returned arrays are read-only views of the cache
    (index or ``.copy()`` them to get writable arrays).

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000).
        root: folder holding the idx files (directly, or in ``<root>/FashionMNIST/raw``); None:
            :func:`default_root` (``$RDX_FASHION_MNIST_ROOT`` or the Debian package's folder).
        download: allow ``torchvision.datasets.FashionMNIST(root, download=True)`` as the last resort.

    Returns:
        images: uint8 (n, 28, 28); labels: int64 (n,) with classes 0..9 (names in
        :data:`FASHION_MNIST_CLASSES`).

    Raises:
        DataSourceError: no source worked; the message lists each attempt and how to provide data.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    local_root = Path(root) if root is not None else default_root()
    return _load_cached(split, str(local_root.expanduser().resolve()), bool(download))


def fashion_mnist_image_set(spec: Mapping[str, Any]) -> ImageSet:
    """The dataset registry's ``fashion_mnist`` loader: ``n_per_class`` images of each of ``classes``."""
    from rdx.data.mnist import select_per_class

    images, labels = load_fashion_mnist(spec["split"], spec.get("root"), spec.get("download", False))
    classes = [int(c) for c in spec["classes"]]
    indices = select_per_class(labels, classes, spec["n_per_class"], spec["seed"])
    names = {c: FASHION_MNIST_CLASSES[c] for c in classes}
    return ImageSet(images[indices], labels[indices], indices, names)
