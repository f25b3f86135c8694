"""The dataset registry: a dataset config's ``kind`` names the loader of its image selection.

Like the method registry (:mod:`rdx.methods`), loaders are looked up by name and imported on first
use, so a run pays only for the dataset it reads. Each loader takes the dataset config as a plain
mapping and returns the :class:`~rdx.data.imageset.ImageSet` the two models are compared on.

``mnist`` / ``fashion_mnist``: ``n_per_class`` images of each of ``classes`` from ``split``, chosen
deterministically by ``seed`` (MNIST optionally with mirrored copies, ``flip``). ``image_folder``: one
sub-folder per class under ``root`` (classes by folder name, e.g. ImageNet synset ids, or by index into
the sorted folders); ``inat``: the same with classes named by species (iNaturalist 2021 folders end with
``_Genus_species``); ``precomputed``: rows of feature files, labels from ``labels_file``, images
(optional) from ``image_list``. Grids show each dataset's own images.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from rdx.data.imageset import ImageSet

DATASETS: dict[str, str] = {
    "mnist": "rdx.data.mnist:mnist_image_set",
    "fashion_mnist": "rdx.data.fashion_mnist:fashion_mnist_image_set",
    "image_folder": "rdx.data.folders:folder_image_set",
    "inat": "rdx.data.folders:folder_image_set",
    "precomputed": "rdx.data.precomputed:precomputed_image_set",
}


def dataset_loader(kind: str) -> Callable[[Mapping[str, Any]], ImageSet]:
    """The loader registered for a dataset ``kind``."""
    if kind not in DATASETS:
        raise ValueError(f"unsupported dataset kind {kind!r} (supported: {', '.join(DATASETS)})")
    module, _, attribute = DATASETS[kind].partition(":")
    return getattr(importlib.import_module(module), attribute)


def load_image_set(spec: Mapping[str, Any]) -> ImageSet:
    """The compared images of a dataset config (a mapping with ``kind``; an OmegaConf node is fine)."""
    if hasattr(spec, "_get_node"):  # an OmegaConf DictConfig: plain values for the loaders
        from omegaconf import OmegaConf

        spec = OmegaConf.to_container(spec, resolve=True)
    return dataset_loader(spec.get("kind"))(dict(spec))
