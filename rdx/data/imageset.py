"""The compared images, whatever their source: pixels for the grids, labels, and the model inputs.

An :class:`ImageSet` carries display thumbnails (``images``, uint8, one size for all, shown in the
grids) and, for datasets read from files, the image paths (``paths``): a model's own transform then runs
on the original file, not on the thumbnail. :class:`ModelInputs` turns an image set and a model's
transform into a torch ``Dataset`` for batched feature extraction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from rdx.hashing import array_digest, file_digest


@dataclass
class ImageSet:
    """The compared images.

    Attributes:
        images: (N, H, W) or (N, H, W, 3) uint8: what the grids show (for file datasets, thumbnails).
        labels: (N,) int64 class labels (0..K-1 for file datasets; the digit for MNIST).
        source_indices: (N,) positions in the source split / file list / feature file rows.
        label_names: caption names of labels (None: the label itself is shown).
        paths: (N,) image files the models read (None: models read ``images``).
        n_source_rows: rows of the source the images were selected from, where its model inputs must
            have exactly as many (precomputed feature files: the labels file's rows); None: not checked.
    """

    images: np.ndarray
    labels: np.ndarray
    source_indices: np.ndarray
    label_names: dict[int, str] | None = None
    paths: list[str] | None = None
    n_source_rows: int | None = None

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.images) != n or len(self.source_indices) != n:
            raise ValueError(
                f"images ({len(self.images)}), labels ({n}) and source_indices "
                f"({len(self.source_indices)}) must have the same length"
            )
        if self.paths is not None and len(self.paths) != n:
            raise ValueError(f"paths ({len(self.paths)}) and labels ({n}) must have the same length")

    def __len__(self) -> int:
        return len(self.labels)

    def pil(self, index: int) -> Image.Image:
        """Image ``index`` as a model should see it: the original file, or the pixel array."""
        if self.paths is not None:
            with Image.open(self.paths[index]) as image:
                image.load()
                return image.convert("RGB") if image.mode not in ("RGB", "L") else image.copy()
        return Image.fromarray(self.images[index])

    def digest(self) -> str:
        """Content digest of what the models read (file bytes, or pixels), for the feature cache."""
        if self.paths is None:
            return array_digest(self.images)
        hasher = hashlib.sha256()
        for path in self.paths:
            hasher.update(bytes.fromhex(file_digest(path)))
        return hasher.hexdigest()


class ModelInputs(Dataset):
    """``transform(image_set.pil(i))`` for i in 0..N-1: a model's inputs, for a DataLoader."""

    def __init__(self, image_set: ImageSet, transform: Callable[[Image.Image], torch.Tensor]) -> None:
        self.image_set = image_set
        self.transform = transform

    def __len__(self) -> int:
        return len(self.image_set)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.transform(self.image_set.pil(index))
