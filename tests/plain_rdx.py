"""A plain, slow, dense float64 RDX written from the spec (docs/RDX_METHOD.md sections 1 and 3).

Frozen reference for the equivalence tests: every step is the obvious formula (scipy ``cdist``, double
argsort, sklearn ``SpectralClustering``, networkx centralities), nothing blocked, nothing clever. It
shares no code with ``rdx`` on purpose.

The one plain reference of the project: ``scripts/bench_rdx.py`` imports this file by path and times
its steps as the benchmark's implementation (b).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np
from scipy.spatial.distance import cdist
from sklearn.cluster import SpectralClustering

DIRECTIONS = ("10", "01")
SIDE_OF_DIRECTION = {"10": "B", "01": "A"}


# ------------------------------------------------------------------------------------------------
# per-model dissimilarities
# ------------------------------------------------------------------------------------------------


def distances(X: np.ndarray) -> np.ndarray:
    """Euclidean distances, (N, N) float64."""
    X = np.asarray(X, dtype=np.float64)
    return cdist(X, X)


def ranks(X: np.ndarray) -> np.ndarray:
    """R[i, j] = position of j in row i sorted by distance; self first, ties by index (stable)."""
    return ranks_from_distances(distances(X))


def ranks_from_distances(E: np.ndarray) -> np.ndarray:
    """``ranks`` from the (N, N) distances E (not modified)."""
    keyed = np.array(E, dtype=np.float64, copy=True)
    np.fill_diagonal(keyed, -1.0)
    return np.argsort(np.argsort(keyed, axis=1, kind="stable"), axis=1, kind="stable")


def max_normalized_distance(X: np.ndarray) -> np.ndarray:
    E = distances(X)
    return E / E.max()


def local_scales(E: np.ndarray, neighbour: int = 7) -> np.ndarray:
    """Distance of each point to its ``neighbour``-th nearest OTHER point (self excluded by index)."""
    n = E.shape[0]
    sigma = np.empty(n)
    for i in range(n):
        others = np.delete(E[i], i)
        sigma[i] = np.sort(others)[neighbour - 1]
    return sigma


def similarities(
    X_A: np.ndarray, X_B: np.ndarray, kind: str, neighbour: int = 7, reference_compat: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(S_A, S_B) for a similarity kind, float64."""
    if kind == "neighborhood":
        return ranks(X_A).astype(np.float64), ranks(X_B).astype(np.float64)
    if kind == "max_normalized_distance":
        return max_normalized_distance(X_A), max_normalized_distance(X_B)
    if kind == "zp_local_scaling":
        E_A, E_B = distances(X_A), distances(X_B)
        sigma_A, sigma_B = local_scales(E_A, neighbour), local_scales(E_B, neighbour)
        S_A = E_A**2 / np.outer(sigma_A, sigma_A)
        # the reference code's mix-up: model B's "squared" distance is E_B * E_A
        S_B = (E_B * E_A if reference_compat else E_B**2) / np.outer(sigma_B, sigma_B)
        return S_A, S_B
    raise ValueError(kind)


def guided(S: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-label pairs set to 5 max(S), both [i, j] and [j, i]."""
    S = np.array(S, dtype=np.float64, copy=True)
    ceiling = 5.0 * S.max()
    n = len(labels)
    for i in range(n):
        for j in range(n):
            if labels[i] != labels[j]:
                S[i, j] = ceiling
                S[j, i] = ceiling
    return S


# ------------------------------------------------------------------------------------------------
# difference and affinity
# ------------------------------------------------------------------------------------------------


def locally_biased(S_A: np.ndarray, S_B: np.ndarray, gamma: float) -> np.ndarray:
    return np.tanh(gamma * (S_B - S_A) / (np.minimum(S_A, S_B) + 1.0))


def standard(S_A: np.ndarray, S_B: np.ndarray, normalize: bool) -> np.ndarray:
    D = S_B - S_A
    if normalize and np.abs(D).max() > 0:
        D = D / np.abs(D).max()
    return D


def affinity(D: np.ndarray, beta: float) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(-beta * D)


# ------------------------------------------------------------------------------------------------
# clustering and ordering
# ------------------------------------------------------------------------------------------------


def spectral(aff: np.ndarray, n_clusters: int, random_state: int) -> np.ndarray:
    symmetric = (aff + aff.T) / 2
    model = SpectralClustering(n_clusters, affinity="precomputed", random_state=random_state)
    return model.fit(symmetric).labels_


def centrality_greedy(aff: np.ndarray, n_clusters: int, kind: str, cluster_size: int = 9) -> np.ndarray:
    """Greedy seeding: most central unassigned node + its best ``cluster_size - 1`` unassigned
    neighbours, ``n_clusters`` times; clusters numbered 1.. in seeding order, the rest 0."""
    graph = (aff + aff.T) / 2
    np.fill_diagonal(graph, 0.0)
    G = nx.from_numpy_array(graph)
    if kind == "pagerank":
        centrality = nx.pagerank(G, alpha=0.85, weight="weight", tol=1e-14, max_iter=10000)
    elif kind == "eig_centrality":
        centrality = nx.eigenvector_centrality_numpy(G, weight="weight")
    else:
        raise ValueError(kind)
    n = graph.shape[0]
    labels = np.zeros(n, dtype=np.int64)
    for cluster in range(1, n_clusters + 1):
        unassigned = [i for i in range(n) if labels[i] == 0]
        if not unassigned:
            break
        seed = min(unassigned, key=lambda i: (-centrality[i], i))
        labels[seed] = cluster
        rest = [j for j in unassigned if j != seed]
        chosen = sorted(rest, key=lambda j: (-graph[seed, j], j))[: cluster_size - 1]
        labels[chosen] = cluster
    return labels


def cluster_means(aff: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """Mean of the unsymmetrised affinity over each cluster's block."""
    out = {}
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        out[int(c)] = float(aff[np.ix_(members, members)].mean())
    return out


def ordered(aff: np.ndarray, labels: np.ndarray, keep_zero: bool = False) -> np.ndarray:
    """Relabel by ascending mean within-cluster affinity (label 0 = least coherent).

    With ``keep_zero`` (greedy clusterings) label 0 is reserved for the unassigned rest, even when the
    rest is empty, and the seeded clusters become 1..k by ascending mean.
    """
    means = cluster_means(aff, labels)
    if keep_zero:
        seeded = sorted((c for c in means if c != 0), key=lambda c: means[c])
        new = {0: 0, **{c: position + 1 for position, c in enumerate(seeded)}}
    else:
        new = {c: position for position, c in enumerate(sorted(means, key=lambda c: means[c]))}
    return np.array([new[int(c)] for c in labels], dtype=np.int64)


# ------------------------------------------------------------------------------------------------
# grids
# ------------------------------------------------------------------------------------------------


def by_distance(candidates: np.ndarray, features: np.ndarray, point: np.ndarray) -> list[int]:
    d = np.linalg.norm(np.asarray(features, dtype=np.float64)[candidates] - point, axis=1)
    return [int(c) for _, c in sorted(zip(d.tolist(), candidates.tolist(), strict=True))]


def neighbourhoods(
    members: np.ndarray, features: np.ndarray, size: int, distances: np.ndarray | None = None
) -> list[list[int]]:
    """Per member anchor, in ascending member order: the anchor and its ``size - 1`` nearest members,
    anchor first (even among duplicates), then by distance, ties by index.

    Args:
        distances: the (N, N) Euclidean distances of ``features`` when already at hand (the numbers
            ``cdist`` gives); otherwise computed among the members.
    """
    members = np.sort(np.asarray(members, dtype=np.int64))
    if distances is None:
        X = np.asarray(features, dtype=np.float64)
        among = cdist(X[members], X[members])
    else:
        among = distances[np.ix_(members, members)]
    out = []
    for position in range(len(members)):
        d = among[position].copy()
        d[position] = -1.0
        out.append([int(m) for m in members[np.argsort(d, kind="stable")[:size]]])
    return out


def neighbourhood_scores(
    members: np.ndarray,
    features: np.ndarray,
    aff: np.ndarray,
    grid_size: int,
    distances: np.ndarray | None = None,
) -> list[tuple[float, list[int]]]:
    """(score, neighbourhood) per member anchor, in member order; score = sum of Aff over the block."""
    out = []
    for block in neighbourhoods(members, features, min(len(members), grid_size), distances):
        in_index_order = sorted(block)  # the same set gives the same float sum, whatever the anchor
        out.append((float(aff[np.ix_(in_index_order, in_index_order)].sum()), block))
    return out


def tied_best(scored: list[tuple[float, list[int]]], rtol: float = 0.0) -> list[list[int]]:
    """The neighbourhoods whose score is within ``rtol`` (relative) of the best, in the given order."""
    best = max(score for score, _ in scored)
    return [block for score, block in scored if score >= best - rtol * abs(best)]


def best_neighbourhoods(
    members: np.ndarray,
    features: np.ndarray,
    aff: np.ndarray,
    grid_size: int,
    rtol: float = 0.0,
    distances: np.ndarray | None = None,
) -> list[list[int]]:
    """The neighbourhoods whose score is within ``rtol`` of the best, lowest anchor index first.

    With rtol = 0 the first is the paper's grid with ties broken by the lowest anchor index; a small
    rtol lists every grid a float implementation could pick among mathematically tied anchors.
    """
    return tied_best(neighbourhood_scores(members, features, aff, grid_size, distances), rtol)


def grid(
    strategy: str, members: np.ndarray, features: np.ndarray, aff: np.ndarray, grid_size: int
) -> list[int]:
    members = np.sort(np.asarray(members, dtype=np.int64))
    X = np.asarray(features, dtype=np.float64)
    if strategy == "maximize_total_neighborhood_affinity":
        return best_neighbourhoods(members, features, aff, grid_size)[0]
    if strategy == "centroid":
        return by_distance(np.arange(len(X)), X, X[members].mean(axis=0))[:grid_size]
    if strategy == "spectral_cluster_centroid":
        return by_distance(members, X, X[members].mean(axis=0))[:grid_size]
    if strategy == "max_affinity":
        row_mean = aff[np.ix_(members, members)].mean(axis=1)
        return [int(m) for _, m in sorted(zip((-row_mean).tolist(), members.tolist(), strict=True))][
            :grid_size
        ]
    raise ValueError(strategy)


# ------------------------------------------------------------------------------------------------
# the whole pipeline
# ------------------------------------------------------------------------------------------------


@dataclass
class PlainRDX:
    """All of RDX's intermediate matrices and labels for one set of parameters (unaligned)."""

    n_concepts: int = 3
    similarity: str = "neighborhood"
    difference: str = "locally_biased"
    normalize_difference: bool = False
    gamma: float | None = None
    gamma_scale: float = 80.0
    beta: float = 5.0
    clustering: str = "spectral"
    null_cluster: bool = True
    cluster_size: int = 9
    local_scaling_neighbour: int = 7
    reference_compat: bool = False
    random_state: int = 0
    difference_: dict = field(default_factory=dict)
    affinity_: dict = field(default_factory=dict)
    raw_labels_: dict = field(default_factory=dict)
    labels_: dict = field(default_factory=dict)

    def matrices(self, X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray | None = None) -> PlainRDX:
        n = X_A.shape[0]
        gamma = self.gamma if self.gamma is not None else self.gamma_scale / n
        S_A, S_B = similarities(
            X_A, X_B, self.similarity, self.local_scaling_neighbour, self.reference_compat
        )
        if y is not None:
            S_A, S_B = guided(S_A, y), guided(S_B, y)
        if self.difference == "locally_biased":
            D_10 = locally_biased(S_A, S_B, gamma)
        else:
            D_10 = standard(S_A, S_B, self.normalize_difference)
        self.difference_ = {"10": D_10, "01": -D_10}
        self.affinity_ = {"10": affinity(D_10, self.beta), "01": affinity(-D_10, self.beta)}
        return self

    def fit(self, X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray | None = None) -> PlainRDX:
        self.matrices(X_A, X_B, y)
        for direction in DIRECTIONS:
            aff = self.affinity_[direction]
            if self.clustering == "spectral":
                k = self.n_concepts + (1 if self.null_cluster else 0)
                raw = spectral(aff, k, self.random_state)
                keep_zero = False
            else:
                raw = centrality_greedy(aff, self.n_concepts, self.clustering, self.cluster_size)
                keep_zero = True
            self.raw_labels_[direction] = raw
            self.labels_[direction] = ordered(aff, raw, keep_zero)
        return self


# ------------------------------------------------------------------------------------------------
# metrics (section 3)
# ------------------------------------------------------------------------------------------------


def silb_bsr(grids: dict[str, list[list[int]]], X_A: np.ndarray, X_B: np.ndarray) -> dict[str, float]:
    """Binary success rate with SILB distances (neighbour rank + 1).

    Side A grid: fraction of ordered pairs i != j with D_A(i, j) < D_B(i, j); side B: D_B < D_A.
    Averaged over the side's grids; "mean" is the mean of the two sides.
    """
    D = {"A": ranks(X_A) + 1, "B": ranks(X_B) + 1}
    out = {}
    for side, other in (("A", "B"), ("B", "A")):
        rates = []
        for g in grids[side]:
            pairs = [(i, j) for i in g for j in g if i != j]
            rates.append(np.mean([D[side][i, j] < D[other][i, j] for i, j in pairs]))
        out[side] = float(np.mean(rates))
    out["mean"] = (out["A"] + out["B"]) / 2
    return out
