"""Image-folder datasets: one sub-folder of images per class (ImageNet ``train/``, iNaturalist 2021 …).

The layout is torchvision's ``ImageFolder`` one: ``<root>/<class folder>/<image file>``. Classes are
asked for by folder name (an ImageNet synset id such as ``"n03775071"``), by index into the sorted
folder names (the ImageNet class index when ``root`` holds the 1000 synset folders) or, for the
iNaturalist 2021 layout (``03111_Plantae_Tracheophyta_…_Acer_rubrum``), by species name
(``"Acer rubrum"``, ``match="species"``).

:func:`load_image_folder` draws a reproducible subset of each class and returns an
:class:`~rdx.data.imageset.ImageSet` holding the file paths (what the models read) and square thumbnails
(what the grids show).
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from rdx.data.imageset import ImageSet
from rdx.data.mnist import DataSourceError

logger = logging.getLogger(__name__)

# Matched case-insensitively against the end of a file name.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")
MATCH_MODES = ("exact", "species")
_ROOT_HINT = "set dataset.root=/path/to/images (a folder with one sub-folder of images per class)"
# What PIL raises for files it cannot decode (truncated, not an image, too large, bad header).
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def list_class_folders(root: str | Path) -> list[str]:
    """Sorted names of the class folders directly inside ``root`` (hidden folders are skipped).

    Raises:
        DataSourceError: ``root`` does not exist or is not a folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DataSourceError(f"image folder root {root} {what}; {_ROOT_HINT}")
    with os.scandir(root) as entries:
        return sorted(entry.name for entry in entries if entry.is_dir() and not entry.name.startswith("."))


def _species_of(folder: str) -> str:
    """The species part of an iNaturalist 2021 folder name, spaces for underscores.

    ``"03111_Plantae_Tracheophyta_Magnoliopsida_Sapindales_Sapindaceae_Acer_rubrum"`` → ``"Acer rubrum"``
    (id, kingdom, phylum, class, order and family come first); other names are returned whole.
    """
    parts = folder.split("_")
    if len(parts) >= 8 and parts[0].isdigit():
        return " ".join(parts[6:])
    return folder.replace("_", " ")


def _unknown_class_error(root: Path, name: str, folders: list[str], match: str) -> DataSourceError:
    if match == "species":
        candidates = {_species_of(folder).lower(): _species_of(folder) for folder in folders}
        query = name.replace("_", " ").lower()
        kind = "species"
    else:
        candidates = {folder.lower(): folder for folder in folders}
        query = name.lower()
        kind = "class folder"
    close = difflib.get_close_matches(query, list(candidates), n=5, cutoff=0.6)
    suggestion = f"; close matches: {', '.join(repr(candidates[c]) for c in close)}" if close else ""
    return DataSourceError(
        f"no {kind} {name!r} in {root} ({len(folders)} class folders there){suggestion}. "
        f"Check the class list, or {_ROOT_HINT}"
    )


def resolve_classes(
    root: str | Path, classes: Sequence[str | int], match: str = "exact"
) -> list[tuple[str, str]]:
    """Find the folder of each requested class.

    Args:
        root: folder holding one sub-folder per class.
        classes: each an int (index into the sorted folder names: the ImageNet class index when root
            holds the 1000 synset folders) or a str: with ``match="exact"`` the folder name itself (an
            ImageNet synset id such as ``"n03775071"``); with ``match="species"`` a species name
            (``"Acer rubrum"``) matched, case-insensitively, against the end of iNaturalist 2021 folder
            names (``…_Sapindaceae_Acer_rubrum``) or the whole name.
        match: ``"exact"`` or ``"species"`` (how str classes are matched).

    Returns:
        (folder name, display name) per class, in the given order. The display name is the species as
        given for species matches, the folder name otherwise.

    Raises:
        DataSourceError: ``root`` is missing; a class matches no folder (the message lists up to five
            close matches); a species matches several folders; an index is out of range.
        ValueError: unknown ``match``; two requests name the same folder; a class is neither int nor str.
    """
    if match not in MATCH_MODES:
        raise ValueError(f"match must be one of {MATCH_MODES}, got {match!r}")
    root = Path(root).expanduser()
    folders = list_class_folders(root)
    resolved: list[tuple[str, str]] = []
    for requested in classes:
        if isinstance(requested, (int, np.integer)) and not isinstance(requested, bool):
            index = int(requested)
            if not 0 <= index < len(folders):
                raise DataSourceError(
                    f"class index {index} is out of range: {root} holds {len(folders)} class folders "
                    f"(valid indices 0..{len(folders) - 1})"
                )
            resolved.append((folders[index], folders[index]))
        elif isinstance(requested, str):
            if match == "exact":
                if requested not in folders:
                    raise _unknown_class_error(root, requested, folders, match)
                resolved.append((requested, requested))
            else:
                suffix = requested.strip().replace(" ", "_").lower()
                found = [
                    folder
                    for folder in folders
                    if folder.lower() == suffix or folder.lower().endswith("_" + suffix)
                ]
                if not found:
                    raise _unknown_class_error(root, requested, folders, match)
                if len(found) > 1:
                    listing = ", ".join(found[:10]) + (" …" if len(found) > 10 else "")
                    raise DataSourceError(
                        f"species {requested!r} is ambiguous in {root}: {len(found)} folders match "
                        f"({listing}); give the folder name or its index instead"
                    )
                resolved.append((found[0], requested))
        else:
            raise ValueError(f"classes must be folder names (str) or indices (int), got {requested!r}")
    chosen = [folder for folder, _ in resolved]
    duplicates = sorted({folder for folder in chosen if chosen.count(folder) > 1})
    if duplicates:
        raise ValueError(f"classes {list(classes)} request these folders more than once: {duplicates}")
    return resolved


def list_images(folder: str | Path) -> list[str]:
    """Absolute paths of the image files directly in ``folder`` (no recursion), sorted by file name.

    Image files are those ending in one of :data:`IMAGE_EXTENSIONS` (any case); hidden files are skipped.
    """
    folder = Path(folder).expanduser().absolute()
    if not folder.is_dir():
        raise DataSourceError(f"image folder {folder} does not exist or is not a folder")
    with os.scandir(folder) as entries:
        names = sorted(
            entry.name
            for entry in entries
            if entry.is_file()
            and not entry.name.startswith(".")
            and entry.name.lower().endswith(IMAGE_EXTENSIONS)
        )
    return [str(folder / name) for name in names]


def make_thumbnail(image: Image.Image, size: int) -> np.ndarray:
    """The centre square of an image, resized to ``size`` × ``size`` RGB.

    Args:
        image: any PIL image (converted to RGB).
        size: side of the thumbnail in pixels, > 0.

    Returns:
        uint8 (size, size, 3).
    """
    if size <= 0:
        raise ValueError(f"thumbnail size must be positive, got {size}")
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # Crop first: resizing with a box would let the filter read pixels outside the square.
    square = image.crop((left, top, left + side, top + side))
    # Pillow's bilinear filter widens its support when shrinking, so this is antialiased.
    thumbnail = square.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(thumbnail, dtype=np.uint8).reshape(size, size, 3)


def load_thumbnails(paths: Sequence[str], size: int, progress: bool = True) -> np.ndarray:
    """Thumbnails (:func:`make_thumbnail`) of image files, with a progress bar.

    Returns:
        uint8 (len(paths), size, size, 3).

    Raises:
        DataSourceError: a file is missing or cannot be decoded (the message names it).
    """
    if size <= 0:
        raise ValueError(f"thumbnail size must be positive, got {size}")
    thumbnails = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for index, path in enumerate(tqdm(paths, desc="Loading thumbnails", unit="image", disable=not progress)):
        try:
            with Image.open(path) as image:
                # JPEGs then decode at a reduced scale still at least `size` on each side: much faster
                # for large photos, and the thumbnail is only for display.
                image.draft("RGB", (size, size))
                image.load()
                thumbnails[index] = make_thumbnail(image, size)
        except _IMAGE_ERRORS as error:
            raise DataSourceError(f"could not read image {path}: {type(error).__name__}: {error}") from error
    return thumbnails


def choose_per_class(n_available: int, n_per_class: int | None, seed: int, class_key: int) -> np.ndarray:
    """Positions ``0..n_available-1`` of one class's images to keep, reproducibly.

    The generator is seeded by ``(seed, class_key)`` alone, so a class's choice does not depend on
    which other classes are requested. The positions are drawn without replacement and sorted.

    Args:
        n_available: images the class has.
        n_per_class: images to keep (None: all).
        seed: random seed, >= 0.
        class_key: a number identifying the class (its folder index, or its label), >= 0.

    Returns:
        int64 ascending positions; ValueError when ``n_per_class`` exceeds ``n_available``.
    """
    if n_per_class is None:
        return np.arange(n_available, dtype=np.int64)
    if n_per_class <= 0:
        raise ValueError(f"n_per_class must be positive or None, got {n_per_class}")
    if n_per_class > n_available:
        raise ValueError(f"only {n_available} images, fewer than the {n_per_class} requested")
    rng = np.random.default_rng([int(seed), int(class_key)])
    return np.sort(rng.choice(n_available, size=n_per_class, replace=False)).astype(np.int64)


def load_image_folder(
    root: str | Path,
    classes: Sequence[str | int],
    n_per_class: int | None,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    match: str = "exact",
    thumbnail_size: int = 96,
    progress: bool = True,
) -> ImageSet:
    """A reproducible subset of the images of some classes of an image-folder dataset.

    Each class's images are chosen by :func:`choose_per_class` with the class keyed by its index among
    the sorted folders of ``root``, so they depend on ``seed`` and the class only, not on the other
    requested classes.

    Args:
        root: folder with one sub-folder of images per class.
        classes: the classes, as for :func:`resolve_classes`; their order gives the labels 0..K-1.
        n_per_class: images per class (None: all of them).
        seed: random seed of the selection.
        class_names: caption name of each class, in the order of ``classes`` (None: the display names
            from :func:`resolve_classes`).
        match: how str classes are matched: ``"exact"`` folder names or ``"species"`` names.
        thumbnail_size: side of the square thumbnails shown in the grids.
        progress: show a progress bar while the thumbnails load.

    Returns:
        ImageSet with labels 0..K-1 (int64), absolute ``paths``, uint8 (N, s, s, 3) thumbnails and
        ``source_indices``: each image's position in the concatenated sorted file lists of the requested
        classes (int64).

    Raises:
        DataSourceError: missing root, unknown class, a class with fewer images than requested, an
            unreadable image.
    """
    if not classes:
        raise ValueError("classes must name at least one class")
    if class_names is not None and len(class_names) != len(classes):
        raise ValueError(
            f"class_names has {len(class_names)} names for {len(classes)} classes; give one per class"
        )
    if n_per_class is not None and n_per_class <= 0:
        raise ValueError(f"n_per_class must be positive or None, got {n_per_class}")
    root = Path(root).expanduser().absolute()
    resolved = resolve_classes(root, classes, match=match)
    folder_index = {folder: index for index, folder in enumerate(list_class_folders(root))}
    paths: list[str] = []
    labels: list[int] = []
    source_indices: list[np.ndarray] = []
    offset = 0
    for label, (folder, _) in enumerate(resolved):
        files = list_images(root / folder)
        if not files:
            raise DataSourceError(
                f"class folder {root / folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})"
            )
        if n_per_class is not None and len(files) < n_per_class:
            raise DataSourceError(
                f"class folder {root / folder} holds {len(files)} images, fewer than the "
                f"{n_per_class} requested (n_per_class)"
            )
        positions = choose_per_class(len(files), n_per_class, seed, folder_index[folder])
        paths.extend(files[position] for position in positions)
        labels.extend([label] * len(positions))
        source_indices.append(positions + offset)
        offset += len(files)
    names = class_names if class_names is not None else [display for _, display in resolved]
    logger.info("Image folder %s: %d images of %d classes", root, len(paths), len(resolved))
    return ImageSet(
        images=load_thumbnails(paths, thumbnail_size, progress=progress),
        labels=np.asarray(labels, dtype=np.int64),
        source_indices=np.concatenate(source_indices).astype(np.int64),
        label_names={label: str(name) for label, name in enumerate(names)},
        paths=paths,
    )


def folder_image_set(spec: Mapping[str, Any]) -> ImageSet:
    """The dataset registry's ``image_folder`` and ``inat`` loader (see :func:`load_image_folder`)."""
    class_names = spec.get("class_names")
    return load_image_folder(
        spec["root"],
        list(spec["classes"]),
        spec["n_per_class"],
        seed=spec["seed"],
        class_names=list(class_names) if class_names is not None else None,
        match="species" if spec["kind"] == "inat" else "exact",
        thumbnail_size=spec["thumbnail_size"],
        progress=spec.get("progress", True),
    )
