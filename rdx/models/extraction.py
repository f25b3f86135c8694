"""The features of a compared model on the compared images, through the content-keyed feature cache.

The one place features are computed for a comparison: :func:`model_features` asks the cache
(:class:`rdx.cache.FeatureCache`) under a key made of everything the features depend on
(:func:`feature_cache_parts`) and extracts them (:func:`compute_features`) on a miss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from rdx.cache import FeatureCache, cache_key
from rdx.data.imageset import ImageSet, ModelInputs
from rdx.data.mnist import MNIST_MEAN, MNIST_STD, DataSourceError, images_to_tensor
from rdx.hashing import array_digest, file_digest
from rdx.models.loading import LoadedModel


def _is_mnist_convnet(model: LoadedModel, image_set: ImageSet) -> bool:
    """The project's ConvNet on 28 x 28 grayscale arrays: preprocessed in one tensor operation."""
    return model.kind == "convnet" and image_set.paths is None and image_set.images.shape[1:] == (28, 28)


def feature_cache_parts(model: LoadedModel, image_set: ImageSet, device: torch.device, seed: int) -> dict:
    """What the features of ``model`` on ``image_set`` depend on: the feature-cache key's parts."""
    assert model.loaded is not None
    info = model.info
    if _is_mnist_convnet(model, image_set):
        preprocessing = f"mnist_normalize_{MNIST_MEAN}_{MNIST_STD}"  # images_to_tensor; keys of old entries
        images = array_digest(image_set.images)
    else:
        preprocessing = repr(model.loaded.transform)
        images = image_set.digest()
    if info.get("weights_file"):
        weights = file_digest(info["weights_file"])
    else:  # a random-init network: the seed and the library versions decide the weights
        weights = f"{info['kind']}:{info['name']}:{info['weights']}:seed{seed}:torch{torch.__version__}"
    parts = {
        "kind": "features",
        "checkpoint": weights,
        "layer": info["layer"],
        "pooling": info["pooling"],
        "preprocessing": preprocessing,
        "images": images,
        "device": device.type,
    }
    if info["kind"] != "convnet":
        parts["model"] = f"{info['kind']}:{info['name']}"
    return parts


def compute_features(
    model: LoadedModel, image_set: ImageSet, settings: Mapping[str, Any], device: torch.device
) -> np.ndarray:
    """(N, d) float32 features of ``model`` on ``image_set`` (no caching here).

    ``settings``: ``batch_size``, ``progress`` and ``num_workers`` (image-file decoding) of extraction.
    """
    if model.loaded is None:  # precomputed: the dataset's rows of the feature file
        from rdx.data.precomputed import load_feature_file

        matrix = load_feature_file(
            model.info["file"], model.info["exclude_columns"] or None, key=model.info["key"]
        )
        if image_set.n_source_rows is not None and len(matrix) != image_set.n_source_rows:
            raise DataSourceError(
                f"feature file {model.info['file']} of model {model.name!r} has {len(matrix)} rows, but the "
                f"dataset's labels file has {image_set.n_source_rows}: they must describe the same images, "
                "one row each (was one of them written for another image list?)"
            )
        return np.ascontiguousarray(matrix[image_set.source_indices], dtype=np.float32)
    if _is_mnist_convnet(model, image_set):
        inputs: Any = images_to_tensor(image_set.images)
    else:
        inputs = DataLoader(
            ModelInputs(image_set, model.loaded.transform),
            batch_size=settings["batch_size"],
            num_workers=settings.get("num_workers", 0),
            pin_memory=device.type == "cuda",
        )
    return model.loaded.extract(
        inputs, batch_size=settings["batch_size"], device=device, progress=settings["progress"]
    )


def model_features(
    model: LoadedModel,
    image_set: ImageSet,
    cache: FeatureCache,
    settings: Mapping[str, Any],
    device: torch.device,
    seed: int,
) -> tuple[np.ndarray, str]:
    """The features of one model and where they came from: "hit", "miss", "off" (cache disabled) or
    "file" (a precomputed feature file, which is not cached)."""
    if model.loaded is None:
        return compute_features(model, image_set, settings, device), "file"
    parts = feature_cache_parts(model, image_set, device, seed)
    features, hit = cache.get_or_compute(
        cache_key(parts), parts, lambda: compute_features(model, image_set, settings, device)
    )
    return features, "off" if not cache.enabled else ("hit" if hit else "miss")
