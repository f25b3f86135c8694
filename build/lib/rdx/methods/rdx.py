"""Representational Difference Explanations (Kondapaneni, Mac Aodha & Perona, NeurIPS 2025).

The exact dense path and every variant of the paper: per-model dissimilarities (neighbour ranks, max-
normalised distances, local scaling), a difference (locally biased or standard), an exponential affinity
per direction, clustering (spectral with a null cluster, or greedy PageRank / eigenvector-centrality
seeding), clusters ordered by mean within-cluster affinity, grids chosen by one of the grid strategies.
Optional representation alignment and label guidance.

Directions: "10" explains model B (groups B puts together and A does not; grids drawn in X_B), "01"
explains model A (grids in X_A). In the shared ``Explanation`` they are sides "B" and "A".

Every function here takes arrays and plain parameters; nothing reads configs, files or loggers.
Memory: the fit holds at most about four N x N matrices (two rank matrices while the difference is
built, then the difference and one affinity buffer), in ``dtype`` (float32 by default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import eigsh
from sklearn.cluster import k_means

from rdx.methods.explanation import Concept, Explanation
from rdx.methods.grids import GRID_STRATEGIES, AffinityBlock, select_grid
from rdx.methods.neighbourhoods import (
    DEFAULT_BLOCK_BYTES,
    SIMILARITIES,
    neighbour_ranks,
    pairwise_distances,
    resolve_device,
    row_blocks,
    similarity_matrices,
    symmetrise_in_place,
)

__all__ = [
    "RDX",
    "neighbour_ranks",
    "pairwise_distances",
    "locally_biased_difference",
    "standard_difference",
    "affinity_from_difference",
    "spectral_labels",
    "centrality_clusters",
    "order_clusters",
    "resolve_gamma",
    "check_representations",
]

log = logging.getLogger(__name__)

DIRECTION_TO_SIDE = {"10": "B", "01": "A"}
DIFFERENCES = ("locally_biased", "standard")
CLUSTERINGS = ("spectral", "pagerank", "eig_centrality")
GUIDANCE = (None, "labels", "probe")
MAX_EXPONENT = 80.0  # largest |beta * D| accepted: e^80 ~ 5.5e34 still fits float32


# ------------------------------------------------------------------------------------------------
# input checks and parameters
# ------------------------------------------------------------------------------------------------


def check_representations(
    X_A: np.ndarray, X_B: np.ndarray, min_samples: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair of representations of the same images and return them as arrays.

    Args:
        X_A: (N, d_A) representation of N images by model A.
        X_B: (N, d_B) representation of the same N images, same order, by model B.
        min_samples: the smallest N the caller can work with (e.g. the number of clusters + 1).

    Raises:
        ValueError: not 2-D, not numeric, different N, too few samples, or NaN/inf (rows named).
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


def resolve_gamma(gamma: float | None, gamma_scale: float, n_samples: int) -> float:
    """The difference's temperature: ``gamma`` when given, else ``gamma_scale / N``."""
    if gamma is not None:
        if gamma <= 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        return float(gamma)
    if gamma_scale <= 0:
        raise ValueError(f"gamma_scale must be positive, got {gamma_scale}")
    return float(gamma_scale) / n_samples


# ------------------------------------------------------------------------------------------------
# difference and affinity
# ------------------------------------------------------------------------------------------------


def _blockwise(
    inputs: tuple[np.ndarray, ...],
    function: Callable[..., torch.Tensor],
    dtype: np.dtype,
    block_bytes: int,
) -> np.ndarray:
    """out[rows] = function(*(x[rows] as tensors)) over row blocks, multi-threaded through torch."""
    n_rows, n_cols = inputs[0].shape
    out = np.empty((n_rows, n_cols), dtype=dtype)
    torch_type = torch.float32 if dtype == np.float32 else torch.float64
    for rows in row_blocks(n_rows, n_cols, 4 * dtype.itemsize, block_bytes):
        tensors = [torch.from_numpy(np.ascontiguousarray(x[rows])).to(torch_type) for x in inputs]
        out[rows] = function(*tensors).numpy()
    return out


def locally_biased_difference(
    S_A: np.ndarray,
    S_B: np.ndarray,
    gamma: float,
    dtype: str | type = "float64",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> np.ndarray:
    """Locally-biased difference D_10 = tanh(gamma * (S_B - S_A) / (min(S_A, S_B) + 1)).

    With neighbour ranks, D_10[i, j] < 0 when j is a closer neighbour of i in B than in A; changes among
    near neighbours weigh more than among far ones (the denominator). D_01 = -D_10.

    Args:
        S_A, S_B: (N, N) dissimilarities (e.g. neighbour ranks) of the same images in models A and B.
        gamma: positive temperature.

    Returns:
        (N, N) values in (-1, 1), zero where S_A = S_B (e.g. the diagonal of ranks).
    """

    def formula(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.tanh(gamma * (b - a) / (torch.minimum(a, b) + 1.0))

    return _blockwise((S_A, S_B), formula, np.dtype(dtype), block_bytes)


def standard_difference(
    S_A: np.ndarray,
    S_B: np.ndarray,
    normalize: bool = False,
    dtype: str | type = "float64",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> np.ndarray:
    """Standard difference D_10 = S_B - S_A, optionally divided by max |D| (then in [-1, 1])."""
    difference = _blockwise((S_A, S_B), lambda a, b: b - a, np.dtype(dtype), block_bytes)
    if normalize:
        largest = np.abs(difference).max()
        if largest > 0:
            difference /= largest
    return difference


def affinity_from_difference(difference: np.ndarray, beta: float) -> np.ndarray:
    """Affinity exp(-beta * D): large where D is negative. With |D| <= 1, values lie in [e^-beta, e^beta].

    Raises:
        ValueError: the affinity overflows (an unnormalised standard difference of ranks, say).
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    with np.errstate(over="ignore"):
        affinity = np.exp(-beta * difference)
    if not np.isfinite(affinity).all():
        raise ValueError(
            f"exp(-beta * D) overflows (max |D| = {np.abs(difference).max():.3g}, beta = {beta}); "
            "normalise the difference (normalize_difference=True) or lower beta"
        )
    return affinity


# ------------------------------------------------------------------------------------------------
# clustering
# ------------------------------------------------------------------------------------------------


def _symmetric_graph(affinity: np.ndarray, in_place: bool) -> np.ndarray:
    """(Aff + Aff^T) / 2 with a zero diagonal (self-loops do not count as degree)."""
    graph = affinity if in_place else np.array(affinity, copy=True)
    symmetrise_in_place(graph)
    np.fill_diagonal(graph, 0.0)
    return graph


def spectral_labels(
    affinity: np.ndarray, n_clusters: int, random_state: int, in_place: bool = False
) -> np.ndarray:
    """Spectral clustering of a precomputed, possibly asymmetric, dense affinity.

    Same result as scikit-learn's ``spectral_clustering`` (normalised-Laplacian embedding, k-means with
    ``random_state`` and 10 initialisations) on (Aff + Aff^T) / 2, but the embedding is computed by
    Lanczos on the normalised adjacency D^-1/2 W D^-1/2 (largest eigenvalues, dense matrix-vector
    products) instead of shift-invert ARPACK, which needs a dense LU factorisation.

    Args:
        affinity: (N, N) non-negative affinity; overwritten when ``in_place`` (saves one N x N copy).

    Returns:
        (N,) int64 labels in 0..n_clusters-1 (arbitrary order; see ``order_clusters``).
    """
    graph = _symmetric_graph(affinity, in_place)
    degree = graph.sum(axis=1, dtype=np.float64)
    if np.any(degree <= 0):
        raise ValueError("the affinity graph has isolated points (zero degree); spectral clustering fails")
    scale = (1.0 / np.sqrt(degree)).astype(graph.dtype)
    graph *= scale[:, None]
    graph *= scale[None, :]
    n = graph.shape[0]
    # One generator for the Lanczos start vector and k-means, drawn in that order (as scikit-learn's
    # spectral_clustering does), so the labels equal scikit-learn's for the same random_state.
    generator = np.random.RandomState(random_state)
    start = generator.uniform(-1, 1, n).astype(graph.dtype)
    if n_clusters >= n - 1:
        _, vectors = np.linalg.eigh(graph.astype(np.float64))
        vectors = vectors[:, -n_clusters:]
    else:
        _, vectors = eigsh(graph, k=n_clusters, which="LA", v0=start, ncv=min(n, max(2 * n_clusters + 1, 20)))
    embedding = vectors.astype(np.float64) * np.sqrt(1.0 / degree)[:, None]
    _, labels, _ = k_means(embedding, n_clusters, random_state=generator, n_init=10)
    return labels.astype(np.int64)


def centrality_scores(graph: np.ndarray, kind: str, damping: float = 0.85, tol: float = 1e-10) -> np.ndarray:
    """Node centrality on a symmetric, non-negative graph (zero diagonal).

    kind "pagerank": stationary distribution of the damped random walk (weights = affinities);
    kind "eig_centrality": the principal eigenvector (absolute values).
    """
    n = graph.shape[0]
    if kind == "eig_centrality":
        _, vector = eigsh(graph, k=1, which="LA", v0=np.ones(n, dtype=graph.dtype))
        return np.abs(vector[:, 0]).astype(np.float64)
    if kind == "pagerank":
        out_weight = graph.sum(axis=1, dtype=np.float64)
        out_weight[out_weight == 0] = 1.0
        rank = np.full(n, 1.0 / n)
        for _ in range(1000):
            updated = (1 - damping) / n + damping * (graph.T @ (rank / out_weight))
            updated /= updated.sum()
            if np.abs(updated - rank).sum() < tol:
                return updated
            rank = updated
        return rank
    raise ValueError(f"unknown centrality {kind!r}")


def centrality_clusters(
    affinity: np.ndarray, n_clusters: int, kind: str, cluster_size: int = 9, in_place: bool = False
) -> np.ndarray:
    """Greedy clusters seeded at central nodes ("pagerank" / "eig_centrality" clustering).

    On the symmetrised graph, repeatedly take the most central unassigned node and its
    ``cluster_size - 1`` highest-affinity unassigned neighbours (ties by index).

    Returns:
        (N,) int64 labels: 1..n_clusters in seeding order, 0 for nodes never assigned.
    """
    graph = _symmetric_graph(affinity, in_place)
    n = graph.shape[0]
    centrality = centrality_scores(graph, kind)
    by_centrality = np.lexsort((np.arange(n), -centrality))
    labels = np.zeros(n, dtype=np.int64)
    for cluster in range(1, n_clusters + 1):
        unassigned = labels == 0
        if not unassigned.any():
            break
        seed = next(i for i in by_centrality if unassigned[i])
        labels[seed] = cluster
        candidates = np.flatnonzero(labels == 0)
        strength = graph[seed, candidates]
        chosen = candidates[np.lexsort((candidates, -strength))][: cluster_size - 1]
        labels[chosen] = cluster
    return labels


def order_clusters(
    affinity: np.ndarray | AffinityBlock, labels: np.ndarray, zero_is_rest: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Relabel clusters by ascending mean within-cluster affinity m_c = mean(Aff[c][:, c]).

    Uses the unsymmetrised affinity (a matrix or an accessor ``block(rows, cols)``). After relabelling,
    label 0 has the lowest m_c (the null cluster) and the highest label the most coherent cluster.
    With ``zero_is_rest`` label 0 means "never assigned" (greedy clustering): it stays 0, possibly empty,
    and only labels >= 1 are ordered, becoming 1..m.

    Returns:
        (new_labels (N,), mean_affinity indexed by new label; NaN for an empty rest).
    """
    block = affinity if callable(affinity) else (lambda rows, cols: affinity[np.ix_(rows, cols)])

    def mean_affinity(cluster: int) -> float:
        members = np.flatnonzero(labels == cluster)
        return float(block(members, members).mean()) if len(members) else float("nan")

    cluster_ids = np.unique(labels)
    if zero_is_rest:
        cluster_ids = cluster_ids[cluster_ids != 0]
    means = np.array([mean_affinity(c) for c in cluster_ids])
    order = np.argsort(means, kind="stable")
    first = 1 if zero_is_rest else 0
    new_label_of = np.zeros(int(labels.max()) + 1, dtype=np.int64)
    new_label_of[cluster_ids[order]] = np.arange(first, first + len(cluster_ids))
    ordered_means = means[order]
    if zero_is_rest:
        ordered_means = np.concatenate([[mean_affinity(0)], ordered_means])
    return new_label_of[labels], ordered_means


# ------------------------------------------------------------------------------------------------
# the estimator
# ------------------------------------------------------------------------------------------------


class RDX:
    """RDX over two representations of the same images; defaults are the paper's.

    Args:
        n_concepts: concepts shown per direction (k).
        similarity: "neighborhood" (ranks), "max_normalized_distance" or "zp_local_scaling".
        difference: "locally_biased" or "standard".
        normalize_difference: divide the standard difference by its max |D|.
        gamma: locally-biased temperature; None means ``gamma_scale / N``.
        gamma_scale: used only when gamma is None.
        beta: affinity sharpness, Aff = exp(-beta D).
        clustering: "spectral", "pagerank" or "eig_centrality".
        null_cluster: spectral only: fit k + 1 clusters, the least coherent never shown.
        cluster_size: greedy clusterings only: images per cluster.
        grid_size: images per concept grid.
        grid_strategy: a name in ``rdx.methods.grids.GRID_STRATEGIES``.
        local_scaling_neighbour: sigma's neighbour for "zp_local_scaling".
        guidance: None, "labels" (ground truth ``y``) or "probe" (5-fold out-of-fold logistic-probe
            predictions of ``y`` from each model): cross-label pairs get 5 x max of the similarity.
        align: learn the CKA-maximising linear maps f_AB, f_BA first; direction 10 runs on
            (f_AB(X_A), X_B), direction 01 on (X_A, f_BA(X_B)).
        alignment_steps, alignment_lr, alignment_train_fraction: the alignment's Adam schedule and split.
        reference_compat: reproduce the public reference code's quirks (local-scaling E_A mix-up,
            last-step alignment weights) for comparisons; off by default.
        dtype: "float32" (fast) or "float64" (exact ties to ~1e-12) for the N x N work.
        device: "auto", "cpu" or "cuda" for distances, ranks and the difference.
        random_state: seeds spectral clustering, random grids, the alignment split and the probes.

    Attributes after ``fit``:
        gamma_: the temperature used.
        labels_: {"10": labels, "01": labels}; 0 is the null cluster (spectral with null cluster) or the
            unassigned rest (greedy clusterings).
        cluster_affinity_: {"10": m_c per label, "01": ...}.
        alignment_: {"10": AlignmentResult, "01": AlignmentResult} when ``align``.
        guide_labels_: {"A": labels, "B": labels} when guided.
        explanation_: the ``Explanation`` (side "B" from direction 10, side "A" from direction 01).
        difference_matrix(direction), affinity_matrix(direction): the N x N matrices, on request.
    """

    name = "rdx"

    def __init__(
        self,
        n_concepts: int = 3,
        similarity: str = "neighborhood",
        difference: str = "locally_biased",
        normalize_difference: bool = False,
        gamma: float | None = None,
        gamma_scale: float = 80.0,
        beta: float = 5.0,
        clustering: str = "spectral",
        null_cluster: bool = True,
        cluster_size: int = 9,
        grid_size: int = 9,
        grid_strategy: str = "maximize_total_neighborhood_affinity",
        local_scaling_neighbour: int = 7,
        guidance: str | None = None,
        align: bool = False,
        alignment_steps: int = 100,
        alignment_lr: float = 1e-3,
        alignment_train_fraction: float = 0.7,
        reference_compat: bool = False,
        dtype: str = "float32",
        device: str = "auto",
        random_state: int = 0,
    ) -> None:
        self.n_concepts = n_concepts
        self.similarity = similarity
        self.difference = difference
        self.normalize_difference = normalize_difference
        self.gamma = gamma
        self.gamma_scale = gamma_scale
        self.beta = beta
        self.clustering = clustering
        self.null_cluster = null_cluster
        self.cluster_size = cluster_size
        self.grid_size = grid_size
        self.grid_strategy = grid_strategy
        self.local_scaling_neighbour = local_scaling_neighbour
        self.guidance = guidance
        self.align = align
        self.alignment_steps = alignment_steps
        self.alignment_lr = alignment_lr
        self.alignment_train_fraction = alignment_train_fraction
        self.reference_compat = reference_compat
        self.dtype = dtype
        self.device = device
        self.random_state = random_state

    # -- parameters ------------------------------------------------------------------------------

    def _validate_params(self) -> None:
        choices = {
            "similarity": (self.similarity, SIMILARITIES),
            "difference": (self.difference, DIFFERENCES),
            "clustering": (self.clustering, CLUSTERINGS),
            "grid_strategy": (self.grid_strategy, tuple(GRID_STRATEGIES)),
            "guidance": (self.guidance, GUIDANCE),
            "dtype": (self.dtype, ("float32", "float64")),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose one of {list(allowed)}")
        if not isinstance(self.n_concepts, int | np.integer) or self.n_concepts < 1:
            raise ValueError(f"n_concepts must be a positive integer, got {self.n_concepts!r}")
        if self.grid_size < 1 or self.cluster_size < 1:
            raise ValueError("grid_size and cluster_size must be positive")

    @property
    def n_clusters(self) -> int:
        """Clusters fitted per direction: k (+ 1 null cluster for spectral clustering)."""
        extra = 1 if (self.clustering == "spectral" and self.null_cluster) else 0
        return self.n_concepts + extra

    # -- fitting ---------------------------------------------------------------------------------

    def fit(self, X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray | None = None) -> RDX:
        """Find what each model groups together that the other separates.

        Args:
            X_A: (N, d_A) and X_B: (N, d_B) features of the same images, same order. Not modified.
            y: (N,) labels, needed only for guidance.
        """
        self._validate_params()
        X_A, X_B = check_representations(X_A, X_B, min_samples=self.n_clusters + 1)
        n = X_A.shape[0]
        self.gamma_ = resolve_gamma(self.gamma, self.gamma_scale, n)
        self._features = {"A": X_A, "B": X_B}
        self.guide_labels_ = self._guide_labels(X_A, X_B, y)

        if self.align:
            from rdx.methods.alignment import fit_linear_alignment

            keep = "last" if self.reference_compat else "best"
            common = dict(
                train_fraction=self.alignment_train_fraction,
                steps=self.alignment_steps,
                lr=self.alignment_lr,
                random_state=self.random_state,
                keep=keep,
                device=resolve_device(self.device),
            )
            self.alignment_ = {
                "10": fit_linear_alignment(X_A, X_B, **common),
                "01": fit_linear_alignment(X_B, X_A, **common),
            }
            pairs = {
                "10": (self.alignment_["10"].transform(X_A), X_B),
                "01": (X_A, self.alignment_["01"].transform(X_B)),
            }
            # D_01 is the negated difference of its own pair (X_A, f_BA(X_B)).
            self._differences = {
                d: (self._difference_of(*pair), 1.0 if d == "10" else -1.0) for d, pair in pairs.items()
            }
        else:
            difference = self._difference_of(X_A, X_B)
            self._differences = {"10": (difference, 1.0), "01": (difference, -1.0)}

        concepts: dict[str, list[Concept]] = {"A": [], "B": []}
        null: dict[str, Concept | None] = {"A": None, "B": None}
        self.labels_, self.cluster_affinity_ = {}, {}
        no_difference = not any(np.any(matrix) for matrix, _ in self._differences.values())
        if no_difference:
            # Identical neighbourhoods: every affinity is 1 and any clustering would be arbitrary.
            log.warning("RDX: the two representations have identical neighbourhoods; no difference found")
            self.explanation_ = Explanation(self.name, concepts, null, info=self._info(n, True))
            return self

        for direction, side in DIRECTION_TO_SIDE.items():
            labels, means = self._cluster(direction)
            self.labels_[direction], self.cluster_affinity_[direction] = labels, means
            block = self.affinity_block(direction)
            has_null = self.clustering != "spectral" or self.null_cluster
            for label in range(len(means)):
                members = np.flatnonzero(labels == label)
                if len(members) == 0:
                    continue
                grid = select_grid(
                    self.grid_strategy,
                    members,
                    self._features[side],
                    block,
                    self.grid_size,
                    self.random_state,
                )
                concept = Concept(label if has_null else label + 1, members, grid, float(means[label]))
                if has_null and label == 0:
                    null[side] = concept
                else:
                    concepts[side].append(concept)
        self.explanation_ = Explanation(self.name, concepts, null, info=self._info(n, False))
        return self

    def _guide_labels(self, X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray | None) -> dict | None:
        if self.guidance is None:
            return None
        if y is None:
            raise ValueError(f"guidance={self.guidance!r} needs labels: call fit(X_A, X_B, y)")
        y = np.asarray(y)
        if y.shape != (X_A.shape[0],):
            raise ValueError(f"y must have shape ({X_A.shape[0]},), got {y.shape}")
        if self.guidance == "labels":
            return {"A": y, "B": y}
        from rdx.methods.guidance import probe_predictions

        return {
            side: probe_predictions(X, y, n_splits=5, random_state=self.random_state)
            for side, X in (("A", X_A), ("B", X_B))
        }

    def _difference_of(self, X_A: np.ndarray, X_B: np.ndarray) -> np.ndarray:
        """D_10 for one pair of representations: similarities, guidance, then the difference."""
        S_A, S_B = similarity_matrices(
            X_A,
            X_B,
            kind=self.similarity,
            dtype=self.dtype,
            device=self.device,
            local_scaling_neighbour=self.local_scaling_neighbour,
            reference_compat=self.reference_compat,
        )
        if self.guide_labels_ is not None:
            from rdx.methods.guidance import apply_guidance

            S_A = apply_guidance(S_A, self.guide_labels_["A"])
            S_B = apply_guidance(S_B, self.guide_labels_["B"])
        if self.difference == "locally_biased":
            return locally_biased_difference(S_A, S_B, self.gamma_, dtype=self.dtype)
        return standard_difference(S_A, S_B, normalize=self.normalize_difference, dtype=self.dtype)

    def _cluster(self, direction: str) -> tuple[np.ndarray, np.ndarray]:
        buffer = self.affinity_matrix(direction)  # a fresh N x N array, consumed by the clustering
        if self.clustering == "spectral":
            raw = spectral_labels(buffer, self.n_clusters, self.random_state, in_place=True)
            zero_is_rest = False
        else:
            raw = centrality_clusters(
                buffer, self.n_concepts, self.clustering, self.cluster_size, in_place=True
            )
            zero_is_rest = True
        del buffer
        return order_clusters(self.affinity_block(direction), raw, zero_is_rest=zero_is_rest)

    # -- the N x N matrices, on request ------------------------------------------------------------

    def difference_matrix(self, direction: str) -> np.ndarray:
        """D for a direction ("10" or "01"), (N, N). Unaligned, D_01 = -D_10."""
        matrix, sign = self._differences[direction]
        return matrix * sign if sign != 1.0 else matrix.copy()

    def affinity_matrix(self, direction: str) -> np.ndarray:
        """Aff = exp(-beta D) for a direction, (N, N), unsymmetrised. Unaligned, Aff_01 = 1 / Aff_10."""
        matrix, sign = self._differences[direction]
        largest = float(np.abs(matrix).max()) * self.beta
        if largest > MAX_EXPONENT:
            # Past ~e^80 the affinity overflows float32, and no eigensolver converges on such a matrix.
            raise ValueError(
                f"exp(-beta * D) overflows: max |beta * D| = {largest:.3g} > {MAX_EXPONENT:g}; normalise "
                "the difference (normalize_difference=True) or lower beta"
            )
        exponent = -self.beta * sign
        return _blockwise((matrix,), lambda d: torch.exp(exponent * d), matrix.dtype, DEFAULT_BLOCK_BYTES)

    def affinity_block(self, direction: str) -> AffinityBlock:
        """Accessor (rows, cols) -> Aff[rows][:, cols] without forming the N x N affinity."""
        matrix, sign = self._differences[direction]

        def block(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            return np.exp(-self.beta * sign * matrix[np.ix_(rows, cols)].astype(np.float64))

        return block

    @property
    def affinity_(self) -> dict[str, np.ndarray]:
        """Both directions' affinities (computed on access: 2 N x N arrays)."""
        return {direction: self.affinity_matrix(direction) for direction in DIRECTION_TO_SIDE}

    def _info(self, n: int, no_difference: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "n_samples": n,
            "gamma": self.gamma_,
            "beta": self.beta,
            "n_concepts": self.n_concepts,
            "similarity": self.similarity,
            "difference": self.difference,
            "clustering": self.clustering,
            "null_cluster": self.null_cluster,
            "grid_strategy": self.grid_strategy,
            "guidance": self.guidance,
            "reference_compat": self.reference_compat,
            "random_state": self.random_state,
            "no_difference": no_difference,
        }
        if self.align:
            info["alignment"] = {
                direction: {
                    "initial_train_cka": result.initial_train_cka,
                    "initial_heldout_cka": result.initial_heldout_cka,
                    "train_cka": result.train_cka,
                    "heldout_cka": result.heldout_cka,
                    "kept_step": result.kept_step,
                    "keep": result.keep,
                }
                for direction, result in self.alignment_.items()
            }
        return info
