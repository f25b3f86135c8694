"""Scoring explanations against both models: BSR, TSD and tie rate (RDX_METHOD.md section 3).

For a grid explaining model M (side "A" explains A, side "B" explains B) and the other model O, over all
ordered pairs (i, j), i != j, of the grid's images:
    BSR = fraction of pairs with D_M(i, j) < D_O(i, j)   (the explained model puts them closer),
    TSD = mean of D_O(i, j) - D_M(i, j),
    EQ  = fraction of pairs with D_M(i, j) = D_O(i, j).
A side's score is the mean over its shown grids (the null cluster never counts); mBSR is the mean of
the two sides. Distances D: "silb" = neighbour rank + 1 (the paper's main one), "mned" = E / max E,
"lsed" = E^2 / (sigma_i sigma_j) with sigma the 7th-neighbour distance. All are evaluated on grid rows
only, never on an N x N matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdx.methods.explanation import SIDES, Explanation
from rdx.methods.neighbourhoods import (
    distance_rows,
    max_pairwise_distance,
    neighbour_ranks_of_rows,
)

DISTANCES = ("silb", "mned", "lsed")


def grid_pair_distances(
    X: np.ndarray,
    grid: np.ndarray,
    distance: str = "silb",
    max_distance: float | None = None,
    local_scaling_neighbour: int = 7,
) -> np.ndarray:
    """D(grid[a], grid[b]) for all a, b in one model, (g, g), row a = the pair's first image.

    Args:
        X: (N, d) features of the whole image set (ranks and scales are relative to all N images).
        grid: (g,) image indices.
        distance: "silb", "mned" or "lsed".
        max_distance: for "mned", the set's largest pairwise distance (computed when None).
    """
    grid = np.asarray(grid, dtype=np.int64)
    if distance == "silb":
        return neighbour_ranks_of_rows(X, grid)[:, grid].astype(np.float64) + 1.0
    rows = distance_rows(X, grid)
    if distance == "mned":
        largest = max_pairwise_distance(X) if max_distance is None else max_distance
        return rows[:, grid] / largest if largest > 0 else rows[:, grid]
    if distance == "lsed":
        if X.shape[0] <= local_scaling_neighbour:
            raise ValueError(f"LSED needs more than {local_scaling_neighbour} images")
        keyed = rows.copy()
        keyed[np.arange(len(grid)), grid] = -np.inf
        sigma = np.partition(keyed, local_scaling_neighbour, axis=1)[:, local_scaling_neighbour]
        return rows[:, grid] ** 2 / np.outer(sigma, sigma)
    raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")


def grid_scores(D_explained: np.ndarray, D_other: np.ndarray) -> dict[str, float]:
    """BSR, TSD and EQ of one grid from its (g, g) pair distances in both models."""
    off_diagonal = ~np.eye(D_explained.shape[0], dtype=bool)
    if not off_diagonal.any():
        return {"bsr": float("nan"), "tsd": float("nan"), "eq": float("nan")}
    explained, other = D_explained[off_diagonal], D_other[off_diagonal]
    return {
        "bsr": float(np.mean(explained < other)),
        "tsd": float(np.mean(other - explained)),
        "eq": float(np.mean(explained == other)),
    }


def explanation_scores(
    explanation: Explanation,
    X_A: np.ndarray,
    X_B: np.ndarray,
    distances: tuple[str, ...] = DISTANCES,
) -> dict[str, Any]:
    """Every metric for every distance: {distance: {metric: {"A": , "B": , "mean": }}}.

    Also lists the per-grid values under {distance: {"grids": {side: [..]}}}. Sides without concepts
    score NaN and the mean is taken over the sides that have some.
    """
    features = {"A": X_A, "B": X_B}
    other_side = {"A": "B", "B": "A"}
    result: dict[str, Any] = {}
    for distance in distances:
        max_distance = (
            {side: max_pairwise_distance(X) for side, X in features.items()} if distance == "mned" else {}
        )
        per_grid: dict[str, list[dict[str, float]]] = {}
        for side in SIDES:
            per_grid[side] = []
            for concept in explanation.concepts.get(side, []):
                pair = {
                    s: grid_pair_distances(features[s], concept.grid, distance, max_distance.get(s))
                    for s in (side, other_side[side])
                }
                per_grid[side].append(grid_scores(pair[side], pair[other_side[side]]))
        summary: dict[str, Any] = {"grids": per_grid}
        for metric in ("bsr", "tsd", "eq"):
            sides = {
                side: float(np.mean([g[metric] for g in grids])) if grids else float("nan")
                for side, grids in per_grid.items()
            }
            present = [v for v in sides.values() if not np.isnan(v)]
            sides["mean"] = float(np.mean(present)) if present else float("nan")
            summary[metric] = sides
        result[distance] = summary
    return result


def binary_success_rate(
    explanation: Explanation, X_A: np.ndarray, X_B: np.ndarray, distance: str = "silb"
) -> dict[str, float]:
    """BSR per side and their mean (mBSR) for one distance: {"A": , "B": , "mean": }."""
    return explanation_scores(explanation, X_A, X_B, (distance,))[distance]["bsr"]
