"""Scores of the two representations themselves, reported next to BSR (RDX_METHOD.md section 3).

- Probe accuracy: a 5-fold out-of-fold logistic-regression probe per model (``probe_predictions``, the
  same probe label guidance uses), and how often the two models' probes predict the same label.
- Debiased linear CKA between X_A and X_B (``debiased_linear_cka``, the one alignment maximises).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdx.methods.alignment import debiased_linear_cka
from rdx.methods.guidance import probe_predictions


def probe_scores(
    X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray, n_splits: int = 5, random_state: int = 0
) -> dict[str, float | int]:
    """Out-of-fold logistic-probe accuracy of each model and the agreement of the two probes.

    Both probes use the same stratified folds (same ``y``, ``n_splits`` and ``random_state``), so every
    image is predicted by two probes that never saw it.

    Args:
        X_A, X_B: (N, d_A), (N, d_B) features of the same images, same order.
        y: (N,) class labels.
        n_splits: folds (5 in the paper).
        random_state: seed of the fold shuffle and of the probes.

    Returns:
        Fractions of the N images: "A", "B" (accuracies), "agreement" (both probes predict the same
        label), "both_correct", "only_A_correct", "only_B_correct", "neither_correct"; and "n_splits".

    Raises:
        ValueError: the models or labels describe different numbers of images, fewer than 2 classes, or
            a class with fewer than ``n_splits`` images.
    """
    y = np.asarray(y)
    n_images = {"X_A": np.shape(X_A)[0], "X_B": np.shape(X_B)[0], "y": y.shape[0] if y.ndim else 0}
    if len(set(n_images.values())) != 1:
        raise ValueError(f"X_A, X_B and y must describe the same images, got sizes {n_images}")
    correct = {}
    predictions = {}
    for side, X in (("A", X_A), ("B", X_B)):
        try:
            predictions[side] = probe_predictions(X, y, n_splits=n_splits, random_state=random_state)
        except ValueError as error:
            raise ValueError(
                f"cannot fit the {n_splits}-fold logistic probe of model {side}: {error}"
            ) from error
        correct[side] = predictions[side] == y
    return {
        "A": float(np.mean(correct["A"])),
        "B": float(np.mean(correct["B"])),
        "agreement": float(np.mean(predictions["A"] == predictions["B"])),
        "both_correct": float(np.mean(correct["A"] & correct["B"])),
        "only_A_correct": float(np.mean(correct["A"] & ~correct["B"])),
        "only_B_correct": float(np.mean(~correct["A"] & correct["B"])),
        "neither_correct": float(np.mean(~correct["A"] & ~correct["B"])),
        "n_splits": int(n_splits),
    }


def representation_scores(
    X_A: np.ndarray,
    X_B: np.ndarray,
    y: np.ndarray | None = None,
    n_splits: int = 5,
    random_state: int = 0,
) -> dict[str, Any]:
    """Debiased linear CKA of the two representations and, given labels, their probe scores.

    Returns:
        {"cka": float, "probe": ``probe_scores(...)`` or None}. "probe" is None when ``y`` is None, and
        also when the labels cannot support the probes (fewer than 2 classes, a class smaller than
        ``n_splits``); then "probe_error" holds the reason.

    Raises:
        ValueError: CKA undefined (see ``debiased_linear_cka``), or ``y`` of the wrong length.
    """
    scores: dict[str, Any] = {"cka": debiased_linear_cka(X_A, X_B), "probe": None}
    if y is None:
        return scores
    y = np.asarray(y)
    if y.shape != (np.shape(X_A)[0],):
        raise ValueError(f"y must hold one label per image ({np.shape(X_A)[0]}), got shape {y.shape}")
    try:
        scores["probe"] = probe_scores(X_A, X_B, y, n_splits=n_splits, random_state=random_state)
    except ValueError as error:
        scores["probe_error"] = str(error)
    return scores
