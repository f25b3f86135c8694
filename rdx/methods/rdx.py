"""Representational Difference Explanations (Kondapaneni, Mac Aodha & Perona, NeurIPS 2025).

The paper's method, exact dense path: neighbour ranks in each model, a locally-biased difference of the
ranks, an exponential affinity per direction, spectral clustering with a null cluster, clusters ordered
by their mean within-cluster affinity, and 3x3 grids chosen by maximal neighbourhood affinity.

Directions: "10" explains model B (groups B puts together and A does not, grids drawn in X_B);
"01" explains model A (grids in X_A). In the shared ``Explanation`` they are sides "B" and "A".

Every function here takes arrays and plain parameters; nothing reads configs, files or loggers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.cluster import spectral_clustering

from rdx.methods.explanation import Concept, Explanation

DIRECTION_TO_SIDE = {"10": "B", "01": "A"}


def check_representations(
    X_A: np.ndarray, X_B: np.ndarray, min_samples: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of representations of the same images and return them as float arrays.

    Args:
        X_A: (N, d_A) representation of N images by model A.
        X_B: (N, d_B) representation of the same N images, same order, by model B.
        min_samples: the smallest N the caller can work with (e.g. the number of clusters).

    Raises:
        ValueError: not 2-D, different N, too few samples, or NaN/inf values (rows named).
    """
    arrays = []
    for name, X in (("X_A", X_A), ("X_B", X_B)):
        X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array (N images x d features), got shape {X.shape}")
        if not np.issubdtype(X.dtype, np.number):
            raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
        bad = ~np.isfinite(X).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"{name} contains NaN or inf in {len(rows)} row(s), e.g. rows {rows[:10].tolist()}; "
                "fix the feature extraction or drop those images from both representations"
            )
        arrays.append(X)
    if arrays[0].shape[0] != arrays[1].shape[0]:
        raise ValueError(
            f"X_A and X_B must describe the same images: X_A has {arrays[0].shape[0]} rows, "
            f"X_B has {arrays[1].shape[0]}"
        )
    if arrays[0].shape[0] < min_samples:
        raise ValueError(f"need at least {min_samples} images, got N={arrays[0].shape[0]}")
    return arrays[0], arrays[1]


def pairwise_distances(X: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """Euclidean distances between all rows of X, by matrix multiplication.

    Args:
        X: (N, d) points.
        dtype: floating type of the computation and the result.

    Returns:
        (N, N) distances, exactly 0 on the diagonal, symmetric.
    """
    X = np.asarray(X, dtype=dtype)
    X = X - X.mean(axis=0, keepdims=True)  # centring keeps |x|^2 + |y|^2 - 2xy well conditioned
    squared_norms = np.einsum("ij,ij->i", X, X)
    gram = X @ X.T
    squared = squared_norms[:, None] + squared_norms[None, :] - 2.0 * gram
    np.maximum(squared, 0.0, out=squared)
    squared = (squared + squared.T) / 2.0  # exact symmetry despite rounding
    np.fill_diagonal(squared, 0.0)
    return np.sqrt(squared, out=squared)


def neighbour_ranks(distances: np.ndarray) -> np.ndarray:
    """Rank of each point in every other point's neighbour list.

    R[i, j] is the 0-based position of j in row i of ``distances`` sorted ascending; R[i, i] = 0 always.
    Ties are broken by index (stable sort), so the result is deterministic. Not symmetric.

    Args:
        distances: (N, N) pairwise distances.

    Returns:
        (N, N) int32 ranks; each row is a permutation of 0..N-1.
    """
    n = distances.shape[0]
    if distances.shape != (n, n):
        raise ValueError(f"distances must be square, got shape {distances.shape}")
    keyed = np.array(distances, dtype=np.float64, copy=True)
    np.fill_diagonal(keyed, -np.inf)  # a point is its own nearest neighbour, even among duplicates
    order = np.argsort(keyed, axis=1, kind="stable")
    ranks = np.empty((n, n), dtype=np.int32)
    # Invert each row's permutation with one scatter instead of a second argsort.
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(n, dtype=np.int32), (n, n)), axis=1)
    return ranks


def resolve_gamma(gamma: float | None, gamma_scale: float, n_samples: int) -> float:
    """The difference's temperature: ``gamma`` when given, else ``gamma_scale / N``."""
    if gamma is not None:
        if gamma <= 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        return float(gamma)
    if gamma_scale <= 0:
        raise ValueError(f"gamma_scale must be positive, got {gamma_scale}")
    return float(gamma_scale) / n_samples


def locally_biased_difference(ranks_A: np.ndarray, ranks_B: np.ndarray, gamma: float) -> np.ndarray:
    """Locally-biased rank difference D_10 = tanh(gamma * (R_B - R_A) / (min(R_A, R_B) + 1)).

    D_10[i, j] < 0 when j is a closer neighbour of i in B than in A. Rank changes among near neighbours
    weigh more than among far ones (the denominator). D_01 = -D_10.

    Args:
        ranks_A, ranks_B: (N, N) neighbour ranks of the same images in models A and B.
        gamma: positive temperature.

    Returns:
        (N, N) float64 values in (-1, 1), zero on the diagonal.
    """
    ranks_A = ranks_A.astype(np.float64)
    ranks_B = ranks_B.astype(np.float64)
    return np.tanh(gamma * (ranks_B - ranks_A) / (np.minimum(ranks_A, ranks_B) + 1.0))


def affinity_from_difference(difference: np.ndarray, beta: float) -> np.ndarray:
    """Affinity exp(-beta * D): large where D is negative. Values lie in [e^-beta, e^beta]."""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    return np.exp(-beta * difference)


def spectral_labels(affinity: np.ndarray, n_clusters: int, random_state: int) -> np.ndarray:
    """Spectral clustering of a precomputed, possibly asymmetric affinity.

    The graph is the symmetrised (Aff + Aff^T) / 2; labelling by k-means on the spectral embedding,
    seeded by ``random_state``.

    Returns:
        (N,) int64 labels in 0..n_clusters-1 (in the clustering's arbitrary order).
    """
    symmetric = (affinity + affinity.T) / 2.0
    labels = spectral_clustering(
        symmetric, n_clusters=n_clusters, random_state=random_state, assign_labels="kmeans"
    )
    return labels.astype(np.int64)


def order_clusters(affinity: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel clusters by ascending mean within-cluster affinity.

    m_c = mean(Aff[c][:, c]) on the unsymmetrised affinity. After relabelling, label 0 has the lowest
    m_c (the null cluster when one is used) and the highest label the most coherent cluster.

    Returns:
        (new_labels (N,), mean_affinity (n_clusters,) indexed by new label). Empty clusters get -inf
        and sort first.
    """
    cluster_ids = np.unique(labels)
    means = np.array([affinity[np.ix_(labels == c, labels == c)].mean() for c in cluster_ids])
    order = np.argsort(means, kind="stable")
    new_label_of = np.empty(cluster_ids.max() + 1, dtype=np.int64)
    new_label_of[cluster_ids[order]] = np.arange(len(cluster_ids))
    return new_label_of[labels], means[order]


def grid_max_neighbourhood_affinity(
    members: np.ndarray, distances: np.ndarray, affinity: np.ndarray, grid_size: int = 9
) -> np.ndarray:
    """Pick a concept's grid: the member neighbourhood with the largest total affinity.

    For each member m, take its min(|C|, grid_size) nearest members (m itself first) in the explained
    model's distances; its score is the sum of the unsymmetrised affinity over that block. The grid is the
    best block, anchor first, then by distance to the anchor (ties by index). The paper's default,
    "maximize_total_neighborhood_affinity".

    Args:
        members: (m,) indices of the cluster's images.
        distances: (N, N) distances in the explained model's representation.
        affinity: (N, N) affinity of the explained direction.
        grid_size: images per grid (9 for a 3x3 grid).

    Returns:
        (min(m, grid_size),) int64 indices into the image set.
    """
    members = np.asarray(members, dtype=np.int64)
    size = min(len(members), grid_size)
    local = np.array(distances[np.ix_(members, members)], dtype=np.float64)
    np.fill_diagonal(local, -np.inf)  # anchor first, even among duplicate points
    neighbourhoods = np.argsort(local, axis=1, kind="stable")[:, :size]  # (m, size) local indices
    local_affinity = affinity[np.ix_(members, members)]
    blocks = local_affinity[neighbourhoods[:, :, None], neighbourhoods[:, None, :]]  # (m, size, size)
    scores = blocks.sum(axis=(1, 2))
    best = int(np.argmax(scores))  # first maximum: deterministic
    return members[neighbourhoods[best]]


GRID_STRATEGIES: dict[str, Callable[..., np.ndarray]] = {
    "maximize_total_neighborhood_affinity": grid_max_neighbourhood_affinity,
}


class RDX:
    """RDX estimator over two representations of the same images.

    Parameters mirror the paper's defaults (RDX_METHOD.md section 1).

    Args:
        n_concepts: concepts shown per direction (k). With the null cluster, k + 1 clusters are fitted.
        gamma: difference temperature; None means ``gamma_scale / N``.
        gamma_scale: used only when gamma is None.
        beta: affinity sharpness.
        null_cluster: fit one extra cluster with the lowest mean affinity, never shown as a concept.
        grid_size: images per concept grid.
        grid_strategy: name in ``GRID_STRATEGIES``.
        random_state: seed of the spectral clustering's k-means.

    Attributes after ``fit``:
        gamma_: the temperature used.
        ranks_: {"A": R_A, "B": R_B} neighbour ranks.
        distances_: {"A": E_A, "B": E_B}.
        difference_: D_10 (D_01 is its negative).
        affinity_: {"10": Aff_10, "01": Aff_01}.
        labels_: {"10": labels, "01": labels}, ordered; 0 is the null cluster when one is used.
        cluster_affinity_: {"10": m_c per label, "01": ...}.
        explanation_: the ``Explanation`` (side "B" from direction 10, side "A" from 01).
    """

    name = "rdx"

    def __init__(
        self,
        n_concepts: int = 3,
        gamma: float | None = None,
        gamma_scale: float = 80.0,
        beta: float = 5.0,
        null_cluster: bool = True,
        grid_size: int = 9,
        grid_strategy: str = "maximize_total_neighborhood_affinity",
        random_state: int = 0,
    ) -> None:
        self.n_concepts = n_concepts
        self.gamma = gamma
        self.gamma_scale = gamma_scale
        self.beta = beta
        self.null_cluster = null_cluster
        self.grid_size = grid_size
        self.grid_strategy = grid_strategy
        self.random_state = random_state

    def _validate_params(self) -> None:
        if not isinstance(self.n_concepts, int | np.integer) or self.n_concepts < 1:
            raise ValueError(f"n_concepts must be a positive integer, got {self.n_concepts!r}")
        if self.grid_size < 1:
            raise ValueError(f"grid_size must be positive, got {self.grid_size}")
        if self.grid_strategy not in GRID_STRATEGIES:
            raise ValueError(
                f"unknown grid_strategy {self.grid_strategy!r}; choose one of {sorted(GRID_STRATEGIES)}"
            )

    @property
    def n_clusters(self) -> int:
        return self.n_concepts + (1 if self.null_cluster else 0)

    def fit(self, X_A: np.ndarray, X_B: np.ndarray) -> RDX:
        self._validate_params()
        X_A, X_B = check_representations(X_A, X_B, min_samples=self.n_clusters + 1)
        n = X_A.shape[0]
        self.gamma_ = resolve_gamma(self.gamma, self.gamma_scale, n)
        self.distances_ = {"A": pairwise_distances(X_A), "B": pairwise_distances(X_B)}
        self.ranks_ = {side: neighbour_ranks(E) for side, E in self.distances_.items()}
        self.difference_ = locally_biased_difference(self.ranks_["A"], self.ranks_["B"], self.gamma_)
        affinity_10 = affinity_from_difference(self.difference_, self.beta)
        self.affinity_ = {"10": affinity_10, "01": 1.0 / affinity_10}

        concepts: dict[str, list[Concept]] = {"A": [], "B": []}
        null: dict[str, Concept | None] = {"A": None, "B": None}
        self.labels_, self.cluster_affinity_ = {}, {}
        no_difference = not np.any(self.difference_)
        if no_difference:
            # Identical neighbourhoods: every affinity is 1 and any clustering would be arbitrary.
            self.explanation_ = Explanation(self.name, concepts, null, info=self._info(n, no_difference=True))
            return self

        choose_grid = GRID_STRATEGIES[self.grid_strategy]
        for direction, side in DIRECTION_TO_SIDE.items():
            affinity = self.affinity_[direction]
            raw = spectral_labels(affinity, self.n_clusters, self.random_state)
            labels, cluster_affinity = order_clusters(affinity, raw)
            self.labels_[direction] = labels
            self.cluster_affinity_[direction] = cluster_affinity
            for label in range(int(labels.max()) + 1):
                members = np.flatnonzero(labels == label)
                grid = choose_grid(members, self.distances_[side], affinity, self.grid_size)
                shown_index = label if self.null_cluster else label + 1
                concept = Concept(shown_index, members, grid, float(cluster_affinity[label]))
                if self.null_cluster and label == 0:
                    null[side] = concept
                else:
                    concepts[side].append(concept)
        self.explanation_ = Explanation(self.name, concepts, null, info=self._info(n, no_difference=False))
        return self

    def _info(self, n: int, no_difference: bool) -> dict:
        return {
            "n_samples": n,
            "gamma": self.gamma_,
            "beta": self.beta,
            "n_concepts": self.n_concepts,
            "null_cluster": self.null_cluster,
            "grid_strategy": self.grid_strategy,
            "random_state": self.random_state,
            "no_difference": no_difference,
        }
