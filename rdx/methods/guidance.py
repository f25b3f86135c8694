"""Label guidance for RDX (RDX_METHOD.md section 1, Variants) and the logistic probes it can use.

Guidance forbids cross-label neighbourhoods: before the difference of the two models is taken, every
pair of images with different guide labels is pushed far apart in each model's similarity matrix. The
guide labels are the ground truth or, per model, the 5-fold out-of-fold predictions of a logistic probe
on that model's features (so that each model is guided by what it can itself tell apart). The same
probes give the per-model probe accuracy reported next to the metrics (section 3).

Everything here takes arrays and plain parameters; nothing reads configs, files or loggers' handlers.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

logger = logging.getLogger(__name__)

# Rows of the similarity matrix handled per block by apply_guidance: bounds its boolean scratch space.
GUIDANCE_BLOCK_ELEMENTS = 1 << 24


def make_probe(max_iter: int = 1000, random_state: int = 0) -> Pipeline:
    """A fresh, unfitted logistic-regression probe: StandardScaler then LogisticRegression."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=random_state))


def probe_predictions(
    X: np.ndarray, y: np.ndarray, n_splits: int = 5, random_state: int = 0, max_iter: int = 1000
) -> np.ndarray:
    """Out-of-fold predictions of a logistic probe on one model's features.

    StratifiedKFold(n_splits, shuffle=True, random_state) splits the images; each fold's probe
    (``make_probe``) is fitted on the other folds and predicts only its own fold, so every image's
    prediction comes from a probe that never saw it.

    Args:
        X: (N, d) features of one model.
        y: (N,) class labels, any dtype sklearn accepts.
        n_splits: folds (5 in the paper).
        random_state: seed of the fold shuffle and of the probes.
        max_iter: LogisticRegression iterations.

    Returns:
        (N,) predicted labels with y's dtype.

    Raises:
        ValueError: bad shapes, fewer than 2 classes, or a class with fewer members than folds.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (N images x d features), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must hold one label per row of X ({X.shape[0]}), got shape {y.shape}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(f"a probe needs at least 2 classes, got {len(classes)}")
    if counts.min() < n_splits:
        too_small = {c.item(): int(n) for c, n in zip(classes, counts, strict=True) if n < n_splits}
        raise ValueError(
            f"{n_splits}-fold probes need at least n_splits={n_splits} images for stratified folds, i.e. "
            f"at least {n_splits} images of every class; classes with fewer (label: images): {too_small}"
        )
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    predictions = np.empty_like(y)
    for fold, (train, test) in enumerate(folds.split(X, y)):
        probe = make_probe(max_iter=max_iter, random_state=random_state).fit(X[train], y[train])
        predictions[test] = probe.predict(X[test])
        logger.debug("probe fold %d: trained on %d images, predicted %d", fold, len(train), len(test))
    return predictions


def probe_accuracy(
    X: np.ndarray, y: np.ndarray, n_splits: int = 5, random_state: int = 0, max_iter: int = 1000
) -> tuple[float, np.ndarray]:
    """Accuracy of the out-of-fold probe predictions, and the predictions (the probe runs once).

    Returns:
        (accuracy in [0, 1], (N,) predictions as from ``probe_predictions``).
    """
    predictions = probe_predictions(X, y, n_splits=n_splits, random_state=random_state, max_iter=max_iter)
    return float(np.mean(predictions == np.asarray(y))), predictions


def _guided_dtype(dtype: np.dtype, value: float) -> np.dtype:
    """The input's dtype when it holds ``value`` exactly, else a floating type that does."""
    if np.issubdtype(dtype, np.floating):
        return dtype
    info = np.iinfo(dtype)
    if float(value).is_integer() and info.min <= value <= info.max:
        return dtype
    return np.dtype(np.float64 if dtype.itemsize > 4 else np.float32)


def apply_guidance(
    similarity: np.ndarray, guide_labels: np.ndarray, factor: float = 5.0, out: np.ndarray | None = None
) -> np.ndarray:
    """Push every cross-label pair far apart: S[i, j] = S[j, i] = factor * max(S) where labels differ.

    ``similarity`` is one model's neighbour ranks or distances (larger = farther apart), before the
    difference of the two models is taken. Same-label pairs keep their values. The result is returned;
    ``out=similarity`` works in place, another ``out`` of the same shape receives a copy.

    Consequence (as the method states): for ranks, max(R) = N - 1 in both models, so a pair that is
    cross-label in both models gets the same value 5 (N - 1) in each; its difference is 0 and its affinity
    the neutral 1. The same holds for max-normalised distances (max 1); for other similarities it holds
    only as far as the two maxima agree.

    Memory: the matrix is handled in row blocks with a small boolean scratch (``GUIDANCE_BLOCK_ELEMENTS``),
    never an N x N mask.

    Args:
        similarity: (N, N) float or integer matrix (e.g. int32 ranks).
        guide_labels: (N,) labels of the same images (ground truth or this model's probe predictions).
        factor: multiple of max(S) given to cross-label pairs (5 in the paper).
        out: optional (N, N) destination; may be ``similarity`` itself.

    Returns:
        (N, N) guided matrix. Float input keeps its dtype; integer input keeps its dtype when
        factor * max(S) is an integer it can hold (e.g. int32 ranks with factor 5), otherwise the result
        (without ``out``) is float32 (float64 for 64-bit integers).

    Raises:
        ValueError: bad shapes, non-numeric input, or an ``out`` that cannot hold factor * max(S).
    """
    similarity = np.asarray(similarity)
    guide_labels = np.asarray(guide_labels)
    n = similarity.shape[0]
    if similarity.ndim != 2 or similarity.shape != (n, n):
        raise ValueError(f"similarity must be a square (N, N) matrix, got shape {similarity.shape}")
    if guide_labels.shape != (n,):
        raise ValueError(f"guide_labels must hold one label per image ({n}), got shape {guide_labels.shape}")
    if not (np.issubdtype(similarity.dtype, np.integer) or np.issubdtype(similarity.dtype, np.floating)):
        raise ValueError(f"similarity must be a float or integer matrix, got dtype {similarity.dtype}")
    if n == 0:
        return similarity.copy() if out is None else out

    maximum = similarity.max()
    value = factor * float(maximum)
    if maximum <= 0:
        logger.warning("guidance has no effect: max(similarity) = %s is not positive", maximum)
    dtype = _guided_dtype(similarity.dtype, value)
    if out is None:
        out = similarity.astype(dtype, copy=True)
    else:
        if out.shape != similarity.shape:
            raise ValueError(f"out must have shape {similarity.shape}, got {out.shape}")
        if _guided_dtype(out.dtype, value) != out.dtype:
            raise ValueError(f"out has dtype {out.dtype}, which cannot hold factor * max = {value}")
        if out is not similarity:
            np.copyto(out, similarity)

    _, codes = np.unique(guide_labels, return_inverse=True)
    codes = codes.reshape(-1)
    fill = out.dtype.type(value)
    rows_per_block = max(1, GUIDANCE_BLOCK_ELEMENTS // n)
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        cross_label = codes[start:stop, None] != codes[None, :]
        np.putmask(out[start:stop], cross_label, fill)
    return out
