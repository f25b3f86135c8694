"""Neighbour ranks by packed-key sorts and the grids' nearest members screened by the rank pass's lists,
against the plain computations they replace."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rdx.methods.grids import nearest_members
from rdx.methods.neighbourhoods import NeighbourRanker, centred_features, pairwise_distances

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def stable_argsort_ranks(X: np.ndarray, dtype: torch.dtype) -> np.ndarray:
    """Ranks from the same squared distances by a stable argsort (self first, ties by index)."""
    features, norms = centred_features(X, dtype, torch.device("cpu"))
    squared = (norms[:, None] + norms[None, :] - 2.0 * (features @ features.T)).clamp_(min=0.0)
    squared.fill_diagonal_(-1.0)
    order = torch.argsort(squared, dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(len(X)).expand(len(X), -1))
    return ranks.numpy()


def datasets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    gaussian = rng.normal(size=(300, 12)).astype(np.float32)
    gaussian[[5, 9, 40]] = gaussian[17]  # duplicates: distance-0 ties with other points than itself
    integers = rng.integers(0, 3, size=(200, 3)).astype(np.float32)  # many exactly tied distances
    far = rng.normal(size=(150, 6)).astype(np.float32) * 1e-3 + 500.0  # far from the origin
    # points around each of a few centres at distances equal to ~1e-6: float32 keys (errors ~1e-4 at
    # this norm) cannot order them, float64 distances can
    centres = rng.normal(scale=3.0, size=(4, 256))
    directions = rng.normal(size=(4, 40, 256))
    directions /= np.linalg.norm(directions, axis=2, keepdims=True)
    shell = centres[:, None, :] + directions * (1.0 + 1e-6 * rng.random((4, 40, 1)))
    shell = np.concatenate([centres, shell.reshape(-1, 256)]).astype(np.float32)
    return {"gaussian": gaussian, "integers": integers, "far": far, "shell": shell}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["gaussian", "integers", "far"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_packed_key_ranks_equal_a_stable_argsort(device, name, dtype):
    X = datasets()[name]
    ranker = NeighbourRanker(X, dtype=str(dtype).split(".")[1], device=device, keep=7)
    ranks = np.concatenate(
        [ranker(slice(s, min(s + 64, len(X)))).cpu().numpy() for s in range(0, len(X), 64)]
    )
    np.testing.assert_array_equal(ranks, stable_argsort_ranks(X, dtype))
    # the kept lists are each row's 7 nearest others, in rank order, with their squared distances
    order = np.argsort(ranks, axis=1)
    np.testing.assert_array_equal(ranker.lists.indices.cpu().numpy(), order[:, 1:8])
    features, norms = centred_features(X, dtype, torch.device("cpu"))
    squared = (norms[:, None] + norms[None, :] - 2.0 * (features @ features.T)).clamp_(min=0.0).numpy()
    np.testing.assert_array_equal(
        ranker.lists.keys.cpu().numpy(), np.take_along_axis(squared, order[:, 1:8], 1)
    )


def members_of(X: np.ndarray, kind: str) -> np.ndarray:
    rng = np.random.default_rng(1)
    if kind == "most":
        return np.sort(rng.choice(len(X), size=int(0.8 * len(X)), replace=False))
    if kind == "few":  # scattered members: most lists hold too few of them and fall back
        return np.sort(rng.choice(len(X), size=25, replace=False))
    if kind == "tiny":  # fewer members than the grid
        return np.array([3, 50, 77])
    return np.arange(len(X))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["gaussian", "integers", "far", "shell"])
@pytest.mark.parametrize("kind", ["all", "most", "few", "tiny"])
@pytest.mark.parametrize("keep", [4, 16])
def test_screened_nearest_members_equal_the_full_computation(device, name, kind, keep):
    X = datasets()[name]
    ranker = NeighbourRanker(X, dtype="float32", device=device, keep=keep)
    for start in range(0, len(X), 100):
        ranker(slice(start, min(start + 100, len(X))))
    members = members_of(X, kind)
    expected = members[nearest_members(X[members], 9)]
    got = ranker.lists.nearest_members(X, members, 9)
    np.testing.assert_array_equal(got, expected)
    # and the full computation is the stable order of the float64 distances (itself first)
    local = pairwise_distances(X[members], dtype="float64", device="cpu")
    np.fill_diagonal(local, -np.inf)
    size = min(9, len(members))
    np.testing.assert_array_equal(members[np.argsort(local, axis=1, kind="stable")[:, :size]], expected)
