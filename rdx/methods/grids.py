"""Grid selection: which images show a concept. The one place this logic lives; every method uses it.

Each strategy takes the concept's member indices, the explained model's features (N, d), an affinity
accessor and the grid size, and returns up to ``grid_size`` image indices, most representative first.
The affinity accessor ``affinity_block(rows, cols) -> (len(rows), len(cols))`` returns the unsymmetrised
affinity of the explained direction; strategies that do not need it ignore it, so methods without an
affinity (the baselines) pass None.

An accessor may also implement ``ScalableAffinity`` (the sparse path's ``SparseAffinity`` does): then
the strategies ask it for row means, elementwise pair values and candidate neighbourhoods instead of a
dense |C| x |C| block, so a cluster of tens of thousands of images costs O(|C| x grid_size^2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from rdx.methods.neighbourhoods import pairwise_distance_tensor, top_neighbours

AffinityBlock = Callable[[np.ndarray, np.ndarray], np.ndarray]


@runtime_checkable
class ScalableAffinity(Protocol):
    """An affinity accessor that answers the grid and ordering questions without dense blocks."""

    def __call__(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Dense Aff[rows][:, cols] (small blocks only)."""

    def pair_values(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Aff[rows[t], cols[t]] elementwise (broadcast shapes)."""

    def within_mean(self, members: np.ndarray) -> float:
        """mean(Aff[members][:, members])."""

    def within_row_means(self, members: np.ndarray) -> np.ndarray:
        """mean of Aff[m, members] for each member m."""

    def member_neighbourhoods(self, members: np.ndarray, size: int) -> np.ndarray | None:
        """Candidate blocks (c, size) of global indices, anchor first then by distance, anchors in
        ascending index order; None to let the strategy compute every member's block from features."""


def _sorted_by_distance(candidates: np.ndarray, features: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Candidates ordered by distance to ``point``, ties by index."""
    distances = np.linalg.norm(features[candidates].astype(np.float64) - point, axis=1)
    return candidates[np.lexsort((candidates, distances))]


def nearest_members(points: np.ndarray, size: int, device: str | torch.device = "cpu") -> np.ndarray:
    """Each point's ``size`` nearest points among ``points`` (itself first, then by distance, ties by
    index), as local indices (m, size): the first ``size`` columns of a stable argsort of the float64
    distances, found by a partial selection on ``device`` (``top_neighbours``)."""
    local = pairwise_distance_tensor(points, dtype="float64", device=device)
    local.fill_diagonal_(-torch.inf)  # anchor first, even among duplicate points
    return top_neighbours(local, min(size, local.shape[0])).cpu().numpy()


def _require_affinity(affinity_block: AffinityBlock | None, strategy: str) -> AffinityBlock:
    if affinity_block is None:
        raise ValueError(f"grid strategy {strategy!r} needs an affinity; this method has none")
    return affinity_block


def maximize_total_neighborhood_affinity(
    members: np.ndarray,
    features: np.ndarray,
    affinity_block: AffinityBlock | None,
    grid_size: int = 9,
    random_state: int = 0,
) -> np.ndarray:
    """The paper's default: the member neighbourhood with the largest total affinity.

    For each member m take its min(|C|, grid_size) nearest members (m itself first) in the explained
    model; its score is the sum of the unsymmetrised affinity over that block. The grid is the best block,
    anchor first, then by distance to the anchor (ties by index). A ``ScalableAffinity`` may restrict
    the candidate anchors of a large cluster (see its ``member_neighbourhoods``).
    """
    affinity_block = _require_affinity(affinity_block, "maximize_total_neighborhood_affinity")
    members = np.asarray(members, dtype=np.int64)
    size = min(len(members), grid_size)
    if isinstance(affinity_block, ScalableAffinity):
        candidates = affinity_block.member_neighbourhoods(members, size)
        if candidates is not None:
            in_index_order = np.sort(candidates, axis=1)
            pairs = affinity_block.pair_values(in_index_order[:, :, None], in_index_order[:, None, :])
            return candidates[int(np.argmax(pairs.sum(axis=(1, 2))))]
    neighbourhoods = nearest_members(features[members], size)  # (m, size) local indices
    local_affinity = affinity_block(members, members)
    # Sum each block in index order, so anchors with the same neighbourhood score exactly the same and
    # the first of them wins (summing in anchor order would let rounding pick).
    in_index_order = np.sort(neighbourhoods, axis=1)
    blocks = local_affinity[in_index_order[:, :, None], in_index_order[:, None, :]]  # (m, size, size)
    scores = blocks.sum(axis=(1, 2))
    return members[neighbourhoods[int(np.argmax(scores))]]  # first maximum: deterministic


def centroid(
    members: np.ndarray,
    features: np.ndarray,
    affinity_block: AffinityBlock | None = None,
    grid_size: int = 9,
    random_state: int = 0,
) -> np.ndarray:
    """The images of the whole set nearest the concept's mean (they need not be members)."""
    mean = features[np.asarray(members)].astype(np.float64).mean(axis=0)
    everyone = np.arange(features.shape[0])
    return _sorted_by_distance(everyone, features, mean)[:grid_size]


def spectral_cluster_centroid(
    members: np.ndarray,
    features: np.ndarray,
    affinity_block: AffinityBlock | None = None,
    grid_size: int = 9,
    random_state: int = 0,
) -> np.ndarray:
    """The members nearest the concept's mean."""
    members = np.asarray(members, dtype=np.int64)
    mean = features[members].astype(np.float64).mean(axis=0)
    return _sorted_by_distance(members, features, mean)[:grid_size]


def max_affinity(
    members: np.ndarray,
    features: np.ndarray,
    affinity_block: AffinityBlock | None,
    grid_size: int = 9,
    random_state: int = 0,
) -> np.ndarray:
    """The members with the highest mean affinity to the other members (row mean), ties by index."""
    affinity_block = _require_affinity(affinity_block, "max_affinity")
    members = np.asarray(members, dtype=np.int64)
    if isinstance(affinity_block, ScalableAffinity):
        row_mean = affinity_block.within_row_means(members)
    else:
        row_mean = affinity_block(members, members).mean(axis=1)
    return members[np.lexsort((members, -row_mean))][:grid_size]


def random(
    members: np.ndarray,
    features: np.ndarray,
    affinity_block: AffinityBlock | None = None,
    grid_size: int = 9,
    random_state: int = 0,
) -> np.ndarray:
    """Members drawn at random (seeded): a baseline for how much selection matters."""
    members = np.asarray(members, dtype=np.int64)
    rng = np.random.default_rng(random_state)
    return rng.choice(members, size=min(grid_size, len(members)), replace=False)


def top_activations(activations: np.ndarray, grid_size: int = 9) -> np.ndarray:
    """The images with the highest activation (score, coefficient) for one concept, ties by index.

    The grid rule of the dictionary-learning baselines (PCA, NMF, SAEs): activations is (N,) over the
    whole image set.
    """
    activations = np.asarray(activations, dtype=np.float64)
    order = np.lexsort((np.arange(len(activations)), -activations))
    return order[:grid_size].astype(np.int64)


GRID_STRATEGIES: dict[str, Callable[..., np.ndarray]] = {
    "maximize_total_neighborhood_affinity": maximize_total_neighborhood_affinity,
    "centroid": centroid,
    "spectral_cluster_centroid": spectral_cluster_centroid,
    "max_affinity": max_affinity,
    "random": random,
}


def select_grid(
    strategy: str,
    members: np.ndarray,
    features: np.ndarray,
    affinity_block: AffinityBlock | None = None,
    grid_size: int = 9,
    random_state: int = 0,
) -> np.ndarray:
    """Dispatch to a strategy by name; returns int64 indices into the image set."""
    if strategy not in GRID_STRATEGIES:
        raise ValueError(f"unknown grid strategy {strategy!r}; choose one of {sorted(GRID_STRATEGIES)}")
    if len(members) == 0:
        return np.empty(0, dtype=np.int64)
    grid = GRID_STRATEGIES[strategy](members, features, affinity_block, grid_size, random_state)
    return np.asarray(grid, dtype=np.int64)
