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

``reference_compat=True`` reproduces the public reference code's LSED for model B,
E_B * E_A / (sigma_B sigma_B^T) (the same mix-up as its zp_local_scaling similarity); model A keeps
E_A^2 / (sigma_A sigma_A^T). SILB and MNED are unaffected.
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
METRICS = ("bsr", "tsd", "eq")
OTHER_SIDE = {"A": "B", "B": "A"}


def _grid_local_scales(rows: np.ndarray, grid: np.ndarray, neighbour: int) -> np.ndarray:
    """sigma of each grid image, (g,): its distance to its ``neighbour``-th nearest other point.

    ``rows`` are the grid images' distances to all N points, (g, N).
    """
    if rows.shape[1] <= neighbour:
        raise ValueError(f"LSED needs more than {neighbour} images")
    keyed = rows.copy()
    keyed[np.arange(len(grid)), grid] = -np.inf  # self first, so index `neighbour` is the neighbour-th other
    return np.partition(keyed, neighbour, axis=1)[:, neighbour]


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
        local_scaling_neighbour: for "lsed", which neighbour's distance is the local scale sigma.
    """
    grid = np.asarray(grid, dtype=np.int64)
    if distance == "silb":
        return neighbour_ranks_of_rows(X, grid)[:, grid].astype(np.float64) + 1.0
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")
    rows = distance_rows(X, grid)
    if distance == "mned":
        largest = max_pairwise_distance(X) if max_distance is None else max_distance
        return rows[:, grid] / largest if largest > 0 else rows[:, grid]
    sigma = _grid_local_scales(rows, grid, local_scaling_neighbour)
    return rows[:, grid] ** 2 / np.outer(sigma, sigma)


def model_pair_distances(
    X_A: np.ndarray,
    X_B: np.ndarray,
    grid: np.ndarray,
    distance: str = "silb",
    max_distances: dict[str, float] | None = None,
    local_scaling_neighbour: int = 7,
    reference_compat: bool = False,
) -> dict[str, np.ndarray]:
    """One grid's pair distances in both models: {"A": (g, g), "B": (g, g)}.

    Without ``reference_compat`` each is ``grid_pair_distances`` of that model. With it, LSED of model B
    is the reference code's E_B * E_A / (sigma_B sigma_B^T), built from the grid rows of both models.

    Args:
        X_A, X_B: (N, d_A), (N, d_B) features of the same images.
        grid: (g,) image indices.
        distance: "silb", "mned" or "lsed".
        max_distances: for "mned", {"A": , "B": } largest pairwise distances (computed when missing).
    """
    features = {"A": X_A, "B": X_B}
    max_distances = max_distances or {}
    if not (reference_compat and distance == "lsed"):
        return {
            side: grid_pair_distances(
                X, grid, distance, max_distances.get(side), local_scaling_neighbour=local_scaling_neighbour
            )
            for side, X in features.items()
        }
    if X_A.shape[0] != X_B.shape[0]:
        raise ValueError(f"X_A and X_B must hold the same images: {X_A.shape[0]} vs {X_B.shape[0]} rows")
    grid = np.asarray(grid, dtype=np.int64)
    rows = {side: distance_rows(X, grid) for side, X in features.items()}
    sigma = {side: _grid_local_scales(rows[side], grid, local_scaling_neighbour) for side in SIDES}
    E_A, E_B = rows["A"][:, grid], rows["B"][:, grid]
    return {
        "A": E_A**2 / np.outer(sigma["A"], sigma["A"]),
        "B": E_B * E_A / np.outer(sigma["B"], sigma["B"]),
    }


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


class BSRAccumulator:
    """BSR, TSD and EQ of one side, fed grid by grid: ``update(...)`` per grid, then ``compute()``.

    State: ``per_grid``, the {"bsr", "tsd", "eq"} of every grid seen, in order. Keeping three floats per
    grid instead of running sums makes ``compute()`` exactly the mean ``explanation_scores`` reports and
    ``merge`` (e.g. of accumulators filled in different processes) exact.
    """

    def __init__(self) -> None:
        self.per_grid: list[dict[str, float]] = []

    def update(self, D_explained: np.ndarray, D_other: np.ndarray) -> BSRAccumulator:
        """Add one grid from its (g, g) pair distances in the explained and the other model."""
        D_explained, D_other = np.asarray(D_explained), np.asarray(D_other)
        if D_explained.ndim != 2 or D_explained.shape[0] != D_explained.shape[1]:
            raise ValueError(f"pair distances must be square (g, g), got shape {D_explained.shape}")
        if D_other.shape != D_explained.shape:
            raise ValueError(
                f"both models' pair distances must have the same shape, got {D_explained.shape} and "
                f"{D_other.shape}"
            )
        self.per_grid.append(grid_scores(D_explained, D_other))
        return self

    def merge(self, other: BSRAccumulator) -> BSRAccumulator:
        """Append the grids of another accumulator (after this one's)."""
        self.per_grid.extend(other.per_grid)
        return self

    def reset(self) -> None:
        self.per_grid = []

    def compute(self) -> dict[str, float | int]:
        """{"bsr", "tsd", "eq"}: means over the grids seen (NaN when none), and "n_grids"."""
        out: dict[str, float | int] = {
            metric: float(np.mean([g[metric] for g in self.per_grid])) if self.per_grid else float("nan")
            for metric in METRICS
        }
        out["n_grids"] = len(self.per_grid)
        return out


def explanation_scores(
    explanation: Explanation,
    X_A: np.ndarray,
    X_B: np.ndarray,
    distances: tuple[str, ...] = DISTANCES,
    reference_compat: bool = False,
) -> dict[str, Any]:
    """Every metric for every distance: {distance: {metric: {"A": , "B": , "mean": }}}.

    Also lists the per-grid values under {distance: {"grids": {side: [..]}}}. Sides without concepts
    score NaN and the mean is taken over the sides that have some. ``reference_compat`` switches LSED
    of model B to the reference code's E_B * E_A / (sigma_B sigma_B^T) (module docstring); the result
    records the switch as {"lsed": {"reference_compat": bool}}.
    """
    features = {"A": X_A, "B": X_B}
    result: dict[str, Any] = {}
    for distance in distances:
        if distance not in DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; choose one of {DISTANCES}")
        max_distances = (
            {side: max_pairwise_distance(X) for side, X in features.items()} if distance == "mned" else None
        )
        accumulators = {side: BSRAccumulator() for side in SIDES}
        for side in SIDES:
            for concept in explanation.concepts.get(side, []):
                pair = model_pair_distances(
                    X_A, X_B, concept.grid, distance, max_distances, reference_compat=reference_compat
                )
                accumulators[side].update(pair[side], pair[OTHER_SIDE[side]])
        computed = {side: accumulator.compute() for side, accumulator in accumulators.items()}
        summary: dict[str, Any] = {"grids": {side: acc.per_grid for side, acc in accumulators.items()}}
        for metric in METRICS:
            sides = {side: computed[side][metric] for side in SIDES}
            present = [v for v in sides.values() if not np.isnan(v)]
            sides["mean"] = float(np.mean(present)) if present else float("nan")
            summary[metric] = sides
        if distance == "lsed":
            summary["reference_compat"] = bool(reference_compat)
        result[distance] = summary
    return result


def binary_success_rate(
    explanation: Explanation,
    X_A: np.ndarray,
    X_B: np.ndarray,
    distance: str = "silb",
    reference_compat: bool = False,
) -> dict[str, float]:
    """BSR per side and their mean (mBSR) for one distance: {"A": , "B": , "mean": }."""
    return explanation_scores(explanation, X_A, X_B, (distance,), reference_compat=reference_compat)[
        distance
    ]["bsr"]
