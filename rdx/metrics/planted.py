"""Scoring explanations against a planted, known difference between two models (label-based).

BSR only asks whether the explained model puts a grid's images closer than the other model does; it
never looks at labels. When the difference between the models is known — model A was trained with 5s
labelled as 3s, or to ignore left-right mirroring — the grids can also be checked against it:

* a grid **mixes** a label pair (a, b) when it shows at least ``min_each`` images of a and of b;
* ``mix_A`` lists the pairs that model A groups and model B separates (what side A should show), and
  ``mix_B`` the converse;
* a side with listed pairs scores the fraction of its grids that mix one of them ("specific");
* a side without listed pairs, facing a side with some, scores the fraction of its grids that mix none
  of the other side's pairs ("clean": it should not claim the other model's difference);
* the **recovery score** is the mean over the sides that have a score.

Everything takes arrays and plain parameters; configs and files live in ``rdx.compare``.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from rdx.methods.explanation import SIDES, Explanation
from rdx.methods.guidance import probe_predictions

Pair = tuple[int, int]


def check_pairs(pairs: Sequence[Sequence[int]] | None, name: str = "pairs") -> list[Pair]:
    """Validate a list of label pairs: each two distinct integers (Python or numpy).

    Raises:
        ValueError: naming ``name`` for anything else, e.g. a flat ``[3, 5]`` for ``[[3, 5]]``, or a
            label ``3.5`` or ``"35"`` (read as a number, either would silently score another pair).
    """
    checked: list[Pair] = []
    for pair in [] if pairs is None else pairs:
        try:
            if isinstance(pair, (str, bytes)):
                raise TypeError("a string is not a pair")
            values = [operator.index(v) for v in pair]
        except TypeError:
            values = []
        if len(values) != 2 or values[0] == values[1]:
            raise ValueError(
                f"{name} must hold pairs of two distinct integer labels, e.g. [[3, 5]]; got {pair!r}"
            )
        checked.append((values[0], values[1]))
    return checked


def grid_mixes(grid_labels: np.ndarray, pairs: Sequence[Pair], min_each: int = 2) -> bool:
    """Whether a grid shows at least ``min_each`` images of both labels of any of ``pairs``."""
    if min_each < 1:
        raise ValueError(f"min_each must be at least 1, got {min_each}")
    grid_labels = np.asarray(grid_labels)
    return any(
        np.count_nonzero(grid_labels == a) >= min_each and np.count_nonzero(grid_labels == b) >= min_each
        for a, b in pairs
    )


def recovery_scores(
    explanation: Explanation,
    labels: np.ndarray,
    mix_A: Sequence[Sequence[int]] | None,
    mix_B: Sequence[Sequence[int]] | None,
    min_each: int = 2,
) -> dict[str, Any]:
    """Planted-difference recovery of one explanation (module docstring for the definition).

    Args:
        explanation: side "A" = what A groups and B separates (RDX 01; a baseline's model-A concepts).
        labels: (N,) integer label of every image the grids index into.
        mix_A, mix_B: label pairs each side should mix; at least one side must list some.
        min_each: images of each label a grid needs to count as mixing a pair.

    Returns:
        {"score": mean of the side scores, "A": side score or None, "B": ..., "kind": {side: "specific" |
        "clean" | None}, "grids_mixing": {side: [bool per shown grid]}, "min_each": min_each}.
        A side with a kind but no concepts scores 0 (it showed nothing of what it should).
    """
    pairs = {"A": check_pairs(mix_A, "mix_A"), "B": check_pairs(mix_B, "mix_B")}
    if not pairs["A"] and not pairs["B"]:
        raise ValueError("a planted difference needs label pairs on at least one side (mix_A or mix_B)")
    labels = np.asarray(labels)
    other = {"A": "B", "B": "A"}
    result: dict[str, Any] = {"kind": {}, "grids_mixing": {}, "min_each": min_each}
    side_scores = []
    for side in SIDES:
        kind, watched = ("specific", pairs[side]) if pairs[side] else ("clean", pairs[other[side]])
        mixing = [
            grid_mixes(labels[np.asarray(concept.grid, dtype=np.int64)], watched, min_each)
            for concept in explanation.concepts.get(side, [])
        ]
        good = mixing if kind == "specific" else [not m for m in mixing]
        score = float(np.mean(good)) if good else 0.0
        result["kind"][side] = kind
        result["grids_mixing"][side] = mixing
        result[side] = score
        side_scores.append(score)
    result["score"] = float(np.mean(side_scores))
    return result


def pair_separability(
    X: np.ndarray,
    labels: np.ndarray,
    pairs: Sequence[Sequence[int]],
    n_splits: int = 5,
    random_state: int = 0,
) -> dict[str, Any]:
    """How well one model's features tell each label pair apart: 5-fold out-of-fold accuracy of a
    binary logistic probe trained on the images of the two labels only.

    This checks that a planted difference is really there: the m35 model should separate 3 from 5
    worse than the all-digit model; the ``_nl`` flip model should tell a digit from its mirror image,
    the flip-invariant one should not.

    Returns:
        {"pairs": {"a-b": accuracy}, "mean": mean accuracy over the pairs}.
    """
    X = np.asarray(X)
    labels = np.asarray(labels)
    accuracies: dict[str, float] = {}
    for a, b in check_pairs(pairs):
        keep = np.flatnonzero((labels == a) | (labels == b))
        y = labels[keep]
        if not (np.any(y == a) and np.any(y == b)):
            raise ValueError(f"the image set has no images of label {a if not np.any(y == a) else b}")
        predictions = probe_predictions(X[keep], y, n_splits=n_splits, random_state=random_state)
        accuracies[f"{a}-{b}"] = float(np.mean(predictions == y))
    return {
        "pairs": accuracies,
        "mean": float(np.mean(list(accuracies.values()))) if accuracies else float("nan"),
    }
