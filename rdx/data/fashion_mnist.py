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
from functools import lru_cache
from pathlib import Path

import numpy as np

from rdx.data.mnist import SPLIT_SIZES, SPLITS, DataSourceError, read_idx

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


class _SourceUnavailable(Exception):
    """One source failed; the message says why (collected into DataSourceError)."""


def default_root() -> Path:
    """``$RDX_FASHION_MNIST_ROOT`` when set, else the Debian package's folder."""
    return Path(os.environ.get(ROOT_ENV_VAR) or DEBIAN_ROOT)


def _find_idx_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _load_from_root(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    image_name, label_name = _IDX_FILES[split]
    folders = [root, root / "FashionMNIST" / "raw", root / "raw"]
    for folder in folders:
        image_path = _find_idx_file(folder, image_name)
        label_path = _find_idx_file(folder, label_name)
        if image_path is None or label_path is None:
            continue
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise _SourceUnavailable(
                f"{image_path} holds {images.dtype} {images.shape}, not uint8 (n, 28, 28)"
            )
        if labels.shape != (images.shape[0],):
            raise _SourceUnavailable(
                f"{label_path} holds {labels.shape[0]} labels for {images.shape[0]} images"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(FASHION_MNIST_CLASSES)):
            raise _SourceUnavailable(f"{label_path} holds labels outside 0..9")
        return images, labels.astype(np.int64)
    looked = ", ".join(str(folder) for folder in folders)
    raise _SourceUnavailable(f"no {image_name}[.gz] + {label_name}[.gz] found (looked in {looked})")


def _load_by_download(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        from torchvision.datasets import FashionMNIST
    except ImportError as error:
        raise _SourceUnavailable(f"torchvision is not importable ({error})") from error
    try:
        dataset = FashionMNIST(str(root), train=split == "train", download=True)
    except Exception as error:  # network and file-system errors come in many types; report whichever
        raise _SourceUnavailable(f"failed: {type(error).__name__}: {error}") from error
    return dataset.data.numpy().astype(np.uint8), dataset.targets.numpy().astype(np.int64)


@lru_cache(maxsize=8)
def _load_cached(split: str, root: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    local_root = Path(root)
    sources = [
        (f"local root {local_root}", lambda: _load_from_root(split, local_root)),
        (
            f"torchvision download into {local_root}",
            (lambda: _load_by_download(split, local_root)) if download else None,
        ),
    ]
    attempts: list[str] = []
    for name, load in sources:
        if load is None:
            attempts.append(f"{name}: skipped (download=False)")
            continue
        try:
            images, labels = load()
        except (_SourceUnavailable, OSError, ValueError, EOFError) as error:
            attempts.append(f"{name}: {error}")
            logger.debug("Fashion-MNIST source %s failed: %s", name, error)
            continue
        if images.shape[0] != SPLIT_SIZES[split]:
            logger.warning(
                "Fashion-MNIST %s split from %s has %d images (the official split has %d)",
                split,
                name,
                images.shape[0],
                SPLIT_SIZES[split],
            )
        logger.info("Loaded Fashion-MNIST %s split (%d images) from %s", split, images.shape[0], name)
        images, labels = np.ascontiguousarray(images), np.ascontiguousarray(labels)
        images.setflags(write=False)
        labels.setflags(write=False)
        return images, labels
    listing = "\n".join(f"  - {attempt}" for attempt in attempts)
    raise DataSourceError(
        f"Could not load the Fashion-MNIST {split!r} split. Sources tried:\n{listing}\n{_HOW_TO_PROVIDE}"
    )


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
