"""Precomputed representations: feature matrices read from files instead of computed by models.

The paper's CUB post-hoc concept-bottleneck runs compare two "models" that are both columns of one
concept-projection matrix (model A with one concept column removed). The rows of such files are images;
a labels file holds one class label per row, and an optional image list names each row's image file.

:func:`load_feature_file` reads one matrix (.npy, .npz, .pt/.pth), optionally without some columns;
:func:`load_precomputed_dataset` selects rows per class, reproducibly, and returns the
:class:`~rdx.data.imageset.ImageSet` to show (``source_indices`` are the row indices to slice the
matrices with).
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from rdx.data.folders import choose_per_class, load_thumbnails
from rdx.data.imageset import ImageSet
from rdx.data.mnist import DataSourceError

logger = logging.getLogger(__name__)

FEATURE_SUFFIXES = (".npy", ".npz", ".pt", ".pth")
DEFAULT_OVERRIDE = "the config's file path"
_PLACEHOLDER_GREY = 220
_PLACEHOLDER_TEXT = (40, 40, 40)


def _require_file(path: str | Path, what: str, override: str) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataSourceError(f"{what} {path} does not exist; point at a local copy with {override}")
    return path


def _pick_array(arrays: Mapping[str, object], key: str | None, path: Path) -> object:
    """The array stored under ``key``, or the only one when ``key`` is None."""
    names = sorted(str(name) for name in arrays)
    if key is not None:
        if key not in arrays:
            raise ValueError(f"{path} holds no array {key!r}; it holds {names}")
        return arrays[key]
    if len(arrays) != 1:
        raise ValueError(f"{path} holds {len(arrays)} arrays {names}; say which one with key=")
    return next(iter(arrays.values()))


def _read_torch(path: Path, key: str | None) -> object:
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        # torch's safe unpickler fails on garbage with any error type, and its own message advises
        # loading unsafely; never pass that on
        raise DataSourceError(
            f"{path} is not a file of tensors that can be read safely (only tensors and dicts of tensors "
            "are read; it holds other objects, or is not a torch file)"
        ) from error
    if isinstance(stored, torch.Tensor):
        if key is not None:
            raise ValueError(f"{path} holds a single tensor, not a dict; drop key={key!r}")
        return stored
    if isinstance(stored, Mapping):
        return _pick_array(stored, key, path)
    raise ValueError(f"{path} holds a {type(stored).__name__}, expected a tensor or a dict of tensors")


def load_feature_file(
    path: str | Path,
    exclude_columns: Sequence[int] | None = None,
    key: str | None = None,
    *,
    override: str = DEFAULT_OVERRIDE,
) -> np.ndarray:
    """Read one feature matrix (rows: images, columns: features) as float32.

    Args:
        path: a ``.npy`` file; a ``.npz`` archive (the array ``key``, or its only array); a ``.pt`` /
            ``.pth`` file holding a tensor or a dict of tensors (the one under ``key``, or the only one).
        exclude_columns: column indices to drop (e.g. the concept removed from model A).
        key: which array of an archive / dict to read.
        override: how the caller's user sets this path, quoted in the missing-file message
            (e.g. ``"representations.a.file=/path/to/file.npy"``).

    Returns:
        float32 (n_rows, n_columns - len(exclude_columns)), C-contiguous.

    Raises:
        DataSourceError: the file does not exist.
        ValueError: unsupported suffix, missing / ambiguous key, not 2-D, bad ``exclude_columns``.
    """
    path = _require_file(path, "feature file", override)
    suffix = path.suffix.lower()
    if suffix not in FEATURE_SUFFIXES:
        raise ValueError(f"{path}: unsupported feature file type {suffix!r}; use one of {FEATURE_SUFFIXES}")
    try:
        if suffix == ".npy":
            stored: object = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                stored = np.asarray(_pick_array(archive, key, path))
        else:
            stored = _read_torch(path, key)
    except (EOFError, OSError, zipfile.BadZipFile, RuntimeError) as error:
        raise DataSourceError(
            f"feature file {path} cannot be read ({type(error).__name__}: {error}); it is empty, truncated "
            f"or not a {suffix} file: write it again, or point at another with {override}"
        ) from error
    except ValueError as error:
        if "holds" in str(error):  # our own message about keys
            raise
        raise DataSourceError(
            f"feature file {path} cannot be read ({error}); it is empty, truncated or not a {suffix} file: "
            f"write it again, or point at another with {override}"
        ) from error
    if isinstance(stored, torch.Tensor):
        stored = stored.detach().to("cpu", torch.float32).numpy()
    features = np.asarray(stored)
    if features.ndim != 2:
        raise ValueError(f"{path} holds an array of shape {features.shape}; expected 2-D (rows, features)")
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise DataSourceError(f"feature file {path} holds an empty array of shape {features.shape}")
    features = features.astype(np.float32, copy=False)
    if exclude_columns:
        n_columns = features.shape[1]
        columns = []
        for column in exclude_columns:
            if isinstance(column, bool) or not isinstance(column, (int, np.integer)):
                raise ValueError(f"exclude_columns must hold ints, got {column!r}")
            if not 0 <= int(column) < n_columns:
                raise ValueError(
                    f"exclude_columns has {column}, outside the valid range 0..{n_columns - 1} "
                    f"of the {n_columns} columns of {path}"
                )
            columns.append(int(column))
        if len(set(columns)) != len(columns):
            raise ValueError(f"exclude_columns lists a column twice: {list(exclude_columns)}")
        if len(columns) == n_columns:
            raise ValueError(f"exclude_columns removes all {n_columns} columns of {path}")
        features = np.delete(features, columns, axis=1)
    return np.ascontiguousarray(features)


def _text_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, stripped text) of the non-empty lines of a text file."""
    with open(path, encoding="utf-8") as handle:
        return [(number, line.strip()) for number, line in enumerate(handle, start=1) if line.strip()]


def read_labels(path: str | Path, *, override: str = DEFAULT_OVERRIDE) -> np.ndarray:
    """Class labels, one per row of the feature files.

    Args:
        path: a ``.npy`` file of integer labels, or a text file with one integer per line, or
            ``"<id> <label>"`` per line (CUB's ``image_class_labels.txt``: the last integer is taken).
        override: quoted in the missing-file message, as in :func:`load_feature_file`.

    Returns:
        int64 (n_rows,).
    """
    path = _require_file(path, "labels file", override)
    if path.suffix.lower() == ".npy":
        stored = np.load(path, allow_pickle=False)
        if stored.ndim == 2 and stored.shape[1] == 1:
            stored = stored[:, 0]
        if stored.ndim != 1:
            raise ValueError(f"{path} holds labels of shape {stored.shape}; expected 1-D")
        if not np.issubdtype(stored.dtype, np.integer):
            if not np.issubdtype(stored.dtype, np.floating) or np.any(stored != np.round(stored)):
                raise ValueError(f"{path} holds {stored.dtype} values that are not integer labels")
        return stored.astype(np.int64)
    labels = []
    for number, line in _text_lines(path):
        try:
            labels.append(int(line.split()[-1]))
        except ValueError as error:
            raise ValueError(
                f"{path} line {number}: {line!r} does not end in an integer label "
                "(expected '<label>' or '<id> <label>' per line)"
            ) from error
    return np.asarray(labels, dtype=np.int64)


def read_image_list(
    path: str | Path, image_root: str | Path | None = None, *, override: str = DEFAULT_OVERRIDE
) -> list[str]:
    """Image file of each row, from a text file.

    Args:
        path: one image path per line, or ``"<id> <path>"`` per line (CUB's ``images.txt``).
        image_root: folder that relative paths are relative to (None: the folder of the list file;
            for CUB, ``CUB_200_2011/images``).
        override: quoted in the missing-file message, as in :func:`load_feature_file`.

    Returns:
        Absolute paths, one per non-empty line, in file order (existence is not checked here).
    """
    path = _require_file(path, "image list", override)
    base = Path(image_root).expanduser() if image_root is not None else path.parent
    paths = []
    for _, line in _text_lines(path):
        parts = line.split(maxsplit=1)
        name = parts[1].strip() if len(parts) == 2 and parts[0].isdigit() else line
        paths.append(os.path.abspath(base / name))
    return paths


def _label_names(class_names: Mapping | Sequence[str], labels: Sequence[int]) -> dict[int, str]:
    """Names of ``labels`` from a dict label → name (int or str keys) or a list indexed by label."""
    if isinstance(class_names, (str, bytes)):
        raise ValueError(f"class_names must be a dict label -> name or a list of names, got {class_names!r}")
    names = {}
    missing = []
    for label in labels:
        if isinstance(class_names, Mapping):
            name = class_names.get(label, class_names.get(str(label)))
        elif 0 <= label < len(class_names):
            name = class_names[label]
        else:
            name = None
        if name is None:
            missing.append(label)
        else:
            names[label] = str(name)
    if missing:
        kind = (
            "dict" if isinstance(class_names, Mapping) else f"list of {len(class_names)} (indexed by label)"
        )
        raise ValueError(f"class_names ({kind}) has no name for labels {missing}")
    return names


def placeholder_tiles(rows: np.ndarray, labels: np.ndarray, size: int) -> np.ndarray:
    """Light-grey tiles saying which row and label they stand for, where no image files are known.

    Returns:
        uint8 (len(rows), size, size, 3).
    """
    if size <= 0:
        raise ValueError(f"thumbnail size must be positive, got {size}")
    try:
        font: ImageFont.ImageFont | ImageFont.FreeTypeFont = ImageFont.load_default(size=max(8, size // 8))
    except (OSError, ImportError, TypeError):  # no FreeType: the fixed-size bitmap font
        font = ImageFont.load_default()
    tiles = np.empty((len(rows), size, size, 3), dtype=np.uint8)
    margin = max(1, size // 16)
    line_height = max(8, size // 8) + margin
    for index, (row, label) in enumerate(zip(rows, labels, strict=True)):
        tile = Image.new("RGB", (size, size), (_PLACEHOLDER_GREY,) * 3)
        draw = ImageDraw.Draw(tile)
        draw.text((margin, margin), f"row {int(row)}", fill=_PLACEHOLDER_TEXT, font=font)
        draw.text((margin, margin + line_height), f"label {int(label)}", fill=_PLACEHOLDER_TEXT, font=font)
        tiles[index] = np.asarray(tile)
    return tiles


def load_precomputed_dataset(
    labels_file: str | Path,
    n_per_class: int | None = None,
    seed: int = 0,
    classes: Sequence[int] | None = None,
    image_list: str | Path | None = None,
    image_root: str | Path | None = None,
    class_names: Mapping | Sequence[str] | None = None,
    thumbnail_size: int = 96,
    progress: bool = True,
) -> ImageSet:
    """The rows of precomputed feature files to compare: a reproducible subset of each class.

    Each class's rows are chosen by :func:`~rdx.data.folders.choose_per_class` keyed by the label value,
    so they depend on ``seed`` and the label only, not on the other requested classes.

    Args:
        labels_file: one label per row of the feature files (:func:`read_labels`).
        n_per_class: rows per class (None: all rows of the class).
        seed: random seed of the selection.
        classes: labels to keep, in output order (None: every label present, ascending).
        image_list: image file of each row (:func:`read_image_list`); None: placeholder tiles.
        image_root: folder relative paths in ``image_list`` are relative to.
        class_names: caption names: a dict label → name, or a list indexed by label (None: no names).
        thumbnail_size: side of the square thumbnails / tiles.
        progress: show a progress bar while thumbnails load.

    Returns:
        ImageSet with the original label values, ``source_indices`` = the selected row indices (int64,
        ascending within each class, classes in order), ``paths`` = the rows' image files (None without
        ``image_list``) and thumbnails, or placeholder tiles naming each row and label.

    Raises:
        DataSourceError: missing files; a requested label absent or with fewer rows than requested.
        ValueError: duplicate classes; the image list and the labels disagree in length.
    """
    all_labels = read_labels(labels_file, override="dataset.labels_file=/path/to/labels")
    if len(all_labels) == 0:
        raise DataSourceError(f"labels file {labels_file} holds no labels (one per row of the feature files)")
    present = np.unique(all_labels)
    if classes is None:
        wanted = [int(label) for label in present]
    else:
        wanted = [int(label) for label in classes]
        if not wanted:
            raise ValueError("classes must name at least one label (or be None for all)")
        if len(set(wanted)) != len(wanted):
            raise ValueError(f"classes lists a label more than once: {wanted}")
        present_set = set(present.tolist())
        absent = [label for label in wanted if label not in present_set]
        if absent:
            shown = ", ".join(str(label) for label in present[:20]) + (" …" if len(present) > 20 else "")
            raise DataSourceError(
                f"labels {absent} do not occur in {labels_file} ({len(present)} labels there: {shown})"
            )
    if n_per_class is not None and n_per_class <= 0:
        raise ValueError(f"n_per_class must be positive or None, got {n_per_class}")
    chosen = []
    for label in wanted:
        rows = np.flatnonzero(all_labels == label)
        if n_per_class is not None and rows.size < n_per_class:
            raise DataSourceError(
                f"label {label} has {rows.size} rows in {labels_file}, fewer than the {n_per_class} "
                "requested (n_per_class)"
            )
        if n_per_class is not None and label < 0:
            raise ValueError(f"per-class selection needs non-negative labels (its seed), got {label}")
        chosen.append(rows[choose_per_class(rows.size, n_per_class, seed, label)])
    source_indices = np.concatenate(chosen).astype(np.int64)
    labels = all_labels[source_indices]
    paths = None
    if image_list is not None:
        all_paths = read_image_list(image_list, image_root, override="dataset.image_list=/path/to/list.txt")
        if len(all_paths) != len(all_labels):
            raise ValueError(
                f"{image_list} lists {len(all_paths)} images but {labels_file} has {len(all_labels)} labels; "
                "they must describe the same rows"
            )
        paths = [all_paths[row] for row in source_indices]
        images = load_thumbnails(paths, thumbnail_size, progress=progress)
    else:
        images = placeholder_tiles(source_indices, labels, thumbnail_size)
    label_names = _label_names(class_names, wanted) if class_names is not None else None
    logger.info("Precomputed rows from %s: %d rows of %d classes", labels_file, len(labels), len(wanted))
    return ImageSet(
        images=images,
        labels=labels,
        source_indices=source_indices,
        label_names=label_names,
        paths=paths,
        n_source_rows=len(all_labels),
    )


def precomputed_image_set(spec: Mapping[str, Any]) -> ImageSet:
    """The dataset registry's ``precomputed`` loader (see :func:`load_precomputed_dataset`)."""
    classes = spec.get("classes")
    return load_precomputed_dataset(
        spec["labels_file"],
        n_per_class=spec.get("n_per_class"),
        seed=spec["seed"],
        classes=list(classes) if classes is not None else None,
        image_list=spec.get("image_list"),
        image_root=spec.get("image_root"),
        class_names=spec.get("class_names"),
        thumbnail_size=spec["thumbnail_size"],
        progress=spec.get("progress", True),
    )
