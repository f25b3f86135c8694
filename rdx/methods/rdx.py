"""Representational Difference Explanations (Kondapaneni, Mac Aodha & Perona, NeurIPS 2025).

The exact dense path and every variant of the paper: per-model dissimilarities (neighbour ranks, max-
normalised distances, local scaling), a difference (locally biased or standard), an exponential affinity
per direction, clustering (spectral with a null cluster, or greedy PageRank / eigenvector-centrality
seeding), clusters ordered by mean within-cluster affinity, grids chosen by one of the grid strategies.
Optional representation alignment and label guidance.

Directions: "10" explains model B (groups B puts together and A does not; grids drawn in X_B), "01"
explains model A (grids in X_A). In the shared ``Explanation`` they are sides "B" and "A".

Two paths compute the same method, behind one small protocol (``DifferenceGraph``: add a difference,
cluster a direction, give its affinity block, info and the N x N matrices on request). The exact path
(``ExactGraph``, this module) runs on the torch device (CUDA when present) end to end: the ranks of a
row block are made, differenced and dropped block by block, so it holds two dense N x N matrices at most
(the difference and one direction's symmetrised affinity graph) in ``dtype`` (float32 by default); the
leading eigenvectors come from a torch block Lanczos solver on the same device
(``rdx.methods.eigensolvers``), and only the (N, k) embedding (for k-means), small blocks for the grids
and the results leave the device. The sparse path (``rdx.methods.sparse_rdx.SparseGraph``) keeps only
each model's top-K neighbours and the union of the two graphs exactly, gives every other pair its row's
mean affinity to the other image's cell (a far-field model estimated from sampled distances) and
clusters with a sparse eigensolver: O(N (K + cells)) memory, for N beyond ~20,000. ``RDX(path="auto")``
picks exact on the CPU while N <= 20,000 and its estimated peak fits the memory budget, on a GPU while
it fits the GPU's free memory; ordering the clusters and choosing grids are the same code for both.

Every function here takes arrays and plain parameters; nothing reads configs, files or loggers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from sklearn.base import BaseEstimator
from sklearn.cluster import k_means

from rdx.methods import sparse_rdx
from rdx.methods.checks import check_positive_int, check_positive_number
from rdx.methods.eigensolvers import (
    DENSE_BASIS_BLOCKS,
    block_size,
    leading_eigenvectors,
    single_thread,
    start_block,
)
from rdx.methods.explanation import DIRECTION_TO_SIDE, Concept, Explanation
from rdx.methods.grids import GRID_STRATEGIES, AffinityBlock, ScalableAffinity, nearest_members, select_grid
from rdx.methods.neighbourhoods import (
    DEFAULT_BLOCK_BYTES,
    NEAREST_KEPT,
    ROW_BYTES_PER_ENTRY,
    SIMILARITIES,
    NeighbourLists,
    NeighbourRanker,
    neighbour_ranks,
    pairwise_distances,
    resolve_device,
    row_blocks,
    similarity_matrices,
    symmetrise_in_place,
    torch_dtype,
)

__all__ = [
    "RDX",
    "DifferenceGraph",
    "ExactGraph",
    "neighbour_ranks",
    "pairwise_distances",
    "locally_biased_difference",
    "standard_difference",
    "affinity_from_difference",
    "leading_eigenpairs",
    "spectral_labels",
    "centrality_clusters",
    "order_clusters",
    "resolve_gamma",
    "check_representations",
]

log = logging.getLogger(__name__)

DIFFERENCES = ("locally_biased", "standard")
CLUSTERINGS = ("spectral", "pagerank", "eig_centrality")
GUIDANCE = (None, "labels", "probe")
PATHS = ("auto", "exact", "sparse")
GIB = 1024**3
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
        ValueError: not 2-D, not numeric, different N, too few samples, NaN/inf (rows named), or a
            degenerate representation that gives every image the same features (nothing to explain).
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
    for name, X in zip(("X_A", "X_B"), arrays, strict=True):
        if len(X) > 1 and not np.any(X != X[0]):
            raise ValueError(
                f"{name} gives every one of the {len(X)} images the same features (a constant "
                "representation): there is no structure to compare; check the model's weights and layer"
            )
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
    for rows in row_blocks(n_rows, n_cols, 4 * dtype.itemsize, block_bytes):
        tensors = [torch.from_numpy(np.ascontiguousarray(x[rows])) for x in inputs]
        out[rows] = function(*tensors).numpy()
    return out


def locally_biased_rows(
    a: torch.Tensor,
    b: torch.Tensor,
    gamma: float,
    dtype: torch.dtype,
    out: torch.Tensor | None = None,
    scratch: torch.Tensor | None = None,
) -> torch.Tensor:
    """tanh(gamma * (b - a) / (min(a, b) + 1)) of two blocks of dissimilarities (any numeric dtype, on
    any device), in ``dtype``, with both converted to ``dtype`` first; worked in ``out`` and ``scratch``
    (same shape, ``dtype``) when given."""
    lower = torch.empty(a.shape, dtype=dtype, device=a.device) if scratch is None else scratch
    lower.copy_(a)
    difference = (torch.empty_like(lower) if out is None else out).copy_(b).sub_(lower)
    torch.minimum(lower, b, out=lower).add_(1.0)
    return difference.mul_(gamma).div_(lower).tanh_()


def standard_rows(
    a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, out: torch.Tensor | None = None
) -> torch.Tensor:
    """b - a of two blocks of dissimilarities, in ``dtype`` (both converted first); in ``out`` if given."""
    out = torch.empty(a.shape, dtype=dtype, device=a.device) if out is None else out
    return out.copy_(b).sub_(a.to(dtype))


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
    precision = torch_dtype(dtype)
    return _blockwise(
        (S_A, S_B), lambda a, b: locally_biased_rows(a, b, gamma, precision), np.dtype(dtype), block_bytes
    )


def standard_difference(
    S_A: np.ndarray,
    S_B: np.ndarray,
    normalize: bool = False,
    dtype: str | type = "float64",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> np.ndarray:
    """Standard difference D_10 = S_B - S_A, optionally divided by max |D| (then in [-1, 1])."""
    precision = torch_dtype(dtype)
    difference = _blockwise(
        (S_A, S_B), lambda a, b: standard_rows(a, b, precision), np.dtype(dtype), block_bytes
    )
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


def leading_eigenpairs(
    matrix: np.ndarray | LinearOperator, k: int, start: np.ndarray, tol: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """The k largest (algebraic) eigenvalues of a symmetric (n, n) matrix and their eigenvectors.

    Lanczos (ARPACK ``eigsh``, which="LA") from the start vector ``start`` (n,), using only matrix-vector
    products, so ``matrix`` may be a dense array or a ``LinearOperator``; a dense ``eigh`` when k >= n - 1,
    where Lanczos has no room (an operator is applied to the identity first and symmetrised). ``tol`` is
    ARPACK's relative accuracy (0: machine precision). The one eigensolver of RDX's exact path, its
    sparse path's Lanczos option and SPEC.

    Returns:
        (values (k,) ascending, vectors (n, k) with unit columns in the same order).
    """
    n = matrix.shape[0]
    if k >= n - 1:
        if isinstance(matrix, LinearOperator):
            dense = matrix.matmat(np.eye(n))
            dense = (dense + dense.T) / 2
        else:
            dense = np.asarray(matrix, dtype=np.float64)
        values, vectors = np.linalg.eigh(dense)
        return values[-k:], vectors[:, -k:]
    return eigsh(matrix, k=k, which="LA", v0=start, ncv=min(n, max(2 * k + 1, 20)), tol=tol)


def symmetric_affinity(
    difference: torch.Tensor, exponent: float, tile: int | None = None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """The symmetrised affinity graph W = (Aff + Aff^T) / 2 of Aff = exp(exponent * D), zero diagonal.

    Aff in one pass over D on D's device (two large operations), then symmetrised in place tile by tile
    (``symmetrise_in_place``): one (N, N) tensor in D's dtype, ``out`` when given (memory reused from an
    earlier graph: fresh N x N memory costs page faults); the same numbers as symmetrising
    ``exp(exponent * D)``.

    Args:
        difference: (N, N) difference D, any device.
        exponent: -beta for direction "10", +beta for "01".
        tile: rows and columns per tile of the symmetrisation (default: ``symmetrise_in_place``'s).
        out: (N, N) tensor like D to hold W.
    """
    graph = torch.empty_like(difference) if out is None else out
    torch.mul(difference, exponent, out=graph).exp_()
    symmetrise_in_place(graph, tile)
    graph.fill_diagonal_(0.0)
    return graph


def _row_chunks(matrix: torch.Tensor, elements: int = 1 << 22) -> Iterator[torch.Tensor]:
    """Consecutive row blocks of about ``elements`` entries: what a reduction over a large matrix works
    through, so its temporaries stay small (fresh memory of N x N size costs page faults every time)."""
    rows = max(1, elements // max(1, matrix.shape[1]))
    for start in range(0, matrix.shape[0], rows):
        yield matrix[start : start + rows]


def spectral_labels(
    affinity: np.ndarray, n_clusters: int, random_state: int, in_place: bool = False
) -> np.ndarray:
    """Spectral clustering of a precomputed, possibly asymmetric, dense affinity.

    Same result as scikit-learn's ``spectral_clustering`` (normalised-Laplacian embedding, k-means with
    ``random_state`` and 10 initialisations) on (Aff + Aff^T) / 2; the embedding is computed as
    ``graph_spectral_labels`` does.

    Args:
        affinity: (N, N) non-negative affinity; overwritten when ``in_place`` (saves one N x N copy).

    Returns:
        (N,) int64 labels in 0..n_clusters-1 (arbitrary order; see ``order_clusters``).
    """
    graph = _symmetric_graph(affinity, in_place)
    labels, _ = graph_spectral_labels(torch.from_numpy(graph), n_clusters, random_state)
    return labels


def spectral_tolerance(dtype: torch.dtype) -> float:
    """The eigensolver's relative residual tolerance for a graph in ``dtype``: 1e-6 in float32 (what
    its products resolve; the labels of bench_rdx's data agree with a float64 solve there, and not all
    at 1e-4), 1e-9 in float64."""
    return 1e-6 if dtype == torch.float32 else 1e-9


def graph_spectral_embedding(
    graph: torch.Tensor, n_clusters: int, random_state: int
) -> tuple[np.ndarray, np.random.RandomState, dict[str, Any]]:
    """The spectral embedding of a symmetric graph W (N, N) with a zero diagonal, on W's device.

    The leading ``n_clusters`` eigenvectors of the normalised adjacency D^-1/2 W D^-1/2
    (``eigensolvers.leading_eigenvectors``: block Lanczos with W's block products on its device; the
    normalisation is applied to the vectors, W is not modified) times D^-1/2, as scikit-learn's
    ``spectral_clustering`` computes it; only this (N, k) embedding leaves the device.

    One ``RandomState(random_state)`` first draws the start vector scikit-learn would give ARPACK (the
    first column of the start block); it is returned, in that state, to seed k-means
    (``graph_spectral_labels``).

    Returns:
        (embedding (N, n_clusters) float64 on the host, the RandomState, info): info is what the
        eigensolver found and spent, as the sparse path records it: {"eigensolver", "eigenvalues"
        (ascending), "operator_products" (vectors multiplied), "block_products", "block", "residual",
        "converged"}.
    """
    n = graph.shape[0]
    degree = torch.cat([block.sum(dim=1, dtype=torch.float64) for block in _row_chunks(graph)])
    if bool((degree <= 0).any()):
        raise ValueError("the affinity graph has isolated points (zero degree); spectral clustering fails")
    scale = degree.rsqrt()[:, None]

    def normalised_product(vectors: torch.Tensor) -> torch.Tensor:
        with single_thread():  # (N, b) operations: see single_thread; the product below uses every core
            scaled = (scale * vectors).to(graph.dtype)
        product = graph @ scaled
        with single_thread():
            return scale * product.to(torch.float64)

    generator = np.random.RandomState(random_state)
    first = generator.uniform(-1, 1, n)
    start = start_block(n, block_size(n_clusters), first, random_state)
    found = leading_eigenvectors(
        normalised_product,
        n,
        n_clusters,
        torch.from_numpy(start).to(graph.device),
        tol=spectral_tolerance(graph.dtype),
        basis_blocks=DENSE_BASIS_BLOCKS,
    )
    info = {
        "eigensolver": "block_lanczos",
        "eigenvalues": [float(value) for value in found.values.cpu()],
        "operator_products": found.products * found.block,
        "block_products": found.products,
        "block": found.block,
        "residual": found.residual,
        "converged": found.converged,
    }
    return (found.vectors * scale).cpu().numpy(), generator, info


def graph_spectral_labels(
    graph: torch.Tensor, n_clusters: int, random_state: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Spectral clustering of a symmetric graph W (N, N) with a zero diagonal, on W's device.

    k-means (10 initialisations, on one thread) on ``graph_spectral_embedding``, seeded by its
    RandomState after the start vector, the order scikit-learn uses, so the labels equal scikit-learn's
    ``spectral_clustering`` for the same random_state.

    Returns:
        (labels, info): (N,) int64 labels in 0..n_clusters-1 (arbitrary order; see ``order_clusters``),
        and the eigensolver's record (``graph_spectral_embedding``).
    """
    embedding, generator, info = graph_spectral_embedding(graph, n_clusters, random_state)
    with single_thread():
        _, labels, _ = k_means(embedding, n_clusters, random_state=generator, n_init=10)
    return labels.astype(np.int64), info


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
    """Greedy clusters seeded at central nodes ("pagerank" / "eig_centrality" clustering) of the
    symmetrised affinity (``graph_centrality_clusters``)."""
    return graph_centrality_clusters(_symmetric_graph(affinity, in_place), n_clusters, kind, cluster_size)


def graph_centrality_clusters(
    graph: np.ndarray, n_clusters: int, kind: str, cluster_size: int = 9
) -> np.ndarray:
    """Greedy clusters seeded at central nodes of a symmetric graph (N, N) with a zero diagonal.

    Repeatedly take the most central unassigned node and its ``cluster_size - 1`` highest-affinity
    unassigned neighbours (ties by index).

    Returns:
        (N,) int64 labels: 1..n_clusters in seeding order, 0 for nodes never assigned.
    """
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
        if len(members) == 0:
            return float("nan")
        if isinstance(block, ScalableAffinity):  # the sparse path: no |C| x |C| block
            return block.within_mean(members)
        return float(block(members, members).mean())

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
# the two paths behind one interface
# ------------------------------------------------------------------------------------------------


@runtime_checkable
class DifferenceGraph(Protocol):
    """What ``RDX.fit`` asks of a path: the difference graph of both directions, clusters, matrices.

    Two implementations: ``ExactGraph`` (dense N x N matrices, below) and ``sparse_rdx.SparseGraph``
    (both models' top-K graphs and a far-field model). The estimator chooses one (``RDX.choose_path``),
    adds the differences, then per direction clusters, orders the clusters (``order_clusters``) and
    selects grids through ``affinity_block``; nothing else in the estimator depends on the path.

    A difference D_10 is built from one pair of representations (X_A, X_B): direction "10" (explains
    model B) uses it as is, direction "01" (explains model A) negated, D_01 = -D_10.
    """

    def add_difference(self, X_A: np.ndarray, X_B: np.ndarray, directions: tuple[str, ...]) -> None:
        """Build D_10 of X_A (N, d_A) and X_B (N, d_B) and serve it to each listed direction: ("10", "01")
        for one shared difference, ("10",) or ("01",) for an aligned direction's own pair."""

    def has_difference(self) -> bool:
        """Whether any difference is non-zero (identical neighbourhoods give none)."""

    def cluster(self, direction: str) -> np.ndarray:
        """(N,) int64 cluster labels of the direction's affinity in arbitrary order (``order_clusters``
        orders them); greedy clusterings use 0 for the images never assigned."""

    def affinity_block(self, direction: str) -> AffinityBlock:
        """Accessor (rows, cols) -> Aff[rows][:, cols], unsymmetrised; a ``grids.ScalableAffinity``
        where dense blocks of large clusters would not fit."""

    def difference_matrix(self, direction: str) -> np.ndarray:
        """D for the direction, (N, N), a new array."""

    def affinity_matrix(self, direction: str) -> np.ndarray:
        """Aff = exp(-beta D) for the direction, (N, N), unsymmetrised, a new array."""

    def difference_graph(self, direction: str) -> sp.csr_matrix:
        """D on the pairs the path stores, (N, N) CSR."""

    def info(self) -> dict[str, Any]:
        """What the path adds to the explanation's info (the exact path: nothing)."""


class ExactAffinity:
    """One direction's affinity Aff = exp(-beta * sign * D) on the exact path, read from the difference
    D where it lives (the torch device): a ``grids.ScalableAffinity``, so the ordering and the grids ask
    it for what they need instead of dense |C| x |C| blocks on the host.

    Dense blocks and pair values are exponentiated on the host in float64 by numpy (the numbers the
    grids always scored); the within-cluster mean is summed on the device in float64, and the
    members' nearest neighbours for the grids on the device from the explained model's features,
    screened by the nearest neighbours the rank pass kept (``NeighbourLists``) where there are any.
    These are many small operations: on the CPU they run on one thread (``eigensolvers.single_thread``).
    """

    def __init__(
        self,
        difference: torch.Tensor,
        exponent: float,
        features: np.ndarray | None,
        neighbour_lists: NeighbourLists | None = None,
    ) -> None:
        self.difference = difference
        self.exponent = exponent  # -beta * sign
        self.features = features
        self.neighbour_lists = neighbour_lists
        self.device = difference.device
        self._within_memory: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def _index(self, indices: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(indices, dtype=np.int64)).to(self.device)

    def _exp(self, values: torch.Tensor) -> np.ndarray:
        return np.exp(self.exponent * values.cpu().numpy().astype(np.float64))

    def __call__(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        with single_thread():
            block = self.difference.index_select(0, self._index(rows)).index_select(1, self._index(cols))
            return self._exp(block)

    def pair_values(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        rows, cols = np.broadcast_arrays(np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))
        with single_thread():
            return self._exp(self.difference[self._index(rows), self._index(cols)])

    def within_mean(self, members: np.ndarray) -> float:
        index = self._index(members)
        m = len(index)
        # the |C| x |C| block gathered chunk by chunk (2^22 / N member rows, then their members' columns)
        # and summed in float64 per chunk, in memory reused from chunk to chunk and cluster to cluster
        # (fresh chunk-sized memory costs page faults every time, more than the arithmetic)
        chunk = max(1, (1 << 22) // self.difference.shape[1])
        if self._within_memory is None:
            self._within_memory = (
                torch.empty(
                    (chunk, self.difference.shape[1]), dtype=self.difference.dtype, device=self.device
                ),
                torch.empty(
                    chunk * self.difference.shape[1], dtype=self.difference.dtype, device=self.device
                ),
                torch.empty(chunk * self.difference.shape[1], dtype=torch.float64, device=self.device),
            )
        rows_memory, block_memory, exponentials = self._within_memory
        total = 0.0
        with single_thread():
            for start in range(0, m, chunk):
                part = index[start : start + chunk]
                rows = torch.index_select(self.difference, 0, part, out=rows_memory[: len(part)])
                block = torch.index_select(rows, 1, index, out=block_memory[: len(part) * m].view(-1, m))
                values = exponentials[: len(part) * m].view(-1, m).copy_(block)
                total += float(values.mul_(self.exponent).exp_().sum())
        return total / (m * m)

    def within_row_means(self, members: np.ndarray) -> np.ndarray:
        return self(members, members).mean(axis=1)

    def member_neighbourhoods(self, members: np.ndarray, size: int) -> np.ndarray | None:
        """Every member's ``size`` nearest members (itself first, then by distance, ties by index) in
        the explained model, in the order of ``members``: (|C|, size) global indices; None without
        features."""
        if self.features is None:
            return None
        members = np.asarray(members, dtype=np.int64)
        if self.neighbour_lists is not None:
            with single_thread():
                return self.neighbour_lists.nearest_members(self.features, members, size)
        return members[nearest_members(self.features[members], size, device=self.device)]


@dataclass(eq=False)
class ExactGraph:
    """The exact path: every difference a dense (N, N) tensor in ``dtype`` on the torch ``device``.

    Holds one difference (two when aligned) where it was made; clustering makes the N x N symmetrised
    affinity of a direction on the same device and consumes it (its memory then holds the next
    direction's graph), so the path holds at most two N x N matrices (plus row blocks while the
    difference is made). On the default variant (neighbour ranks,
    no guidance) the ranks of a row block are made, differenced and dropped, block by block. Only the
    spectral embedding (N, k), small blocks for the grids and the results leave the device. Implements
    ``DifferenceGraph``; the parameters are ``RDX``'s of the same names (``gamma`` the resolved
    temperature, ``n_clusters`` the clusters per direction, ``guide_labels`` the estimator's
    ``guide_labels_``, ``features`` the explained models' features for the grids).
    """

    similarity: str
    difference: str
    normalize_difference: bool
    local_scaling_neighbour: int
    reference_compat: bool
    guide_labels: dict[str, np.ndarray] | None = field(repr=False)
    gamma: float
    beta: float
    clustering: str
    n_clusters: int
    cluster_size: int
    dtype: str
    device: str
    random_state: int
    features: dict[str, np.ndarray] | None = field(default=None, repr=False)
    block_bytes: int = DEFAULT_BLOCK_BYTES
    differences: dict[str, tuple[torch.Tensor, float]] = field(default_factory=dict, init=False, repr=False)
    largest: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    neighbour_lists: dict[str, NeighbourLists] = field(default_factory=dict, init=False, repr=False)
    clustered: set[str] = field(default_factory=set, init=False, repr=False)
    spectral: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    graph_memory: torch.Tensor | None = field(default=None, init=False, repr=False)

    def add_difference(self, X_A: np.ndarray, X_B: np.ndarray, directions: tuple[str, ...]) -> None:
        """D_10 of one pair, row block by row block: both similarities' rows (guided), their difference."""
        device = resolve_device(self.device)
        precision = torch_dtype(self.dtype)
        n = X_A.shape[0]
        similarity_rows = self._similarity_rows(X_A, X_B, device)
        difference = torch.empty((n, n), dtype=precision, device=device)
        row_bytes = 2 * ROW_BYTES_PER_ENTRY + 3 * difference.element_size()
        scratch = None
        for rows in row_blocks(n, n, row_bytes, self.block_bytes):
            S_A, S_B = similarity_rows(rows)
            if self.difference == "locally_biased":
                if scratch is None:
                    scratch = torch.empty(S_A.shape, dtype=precision, device=device)
                lower = scratch[: S_A.shape[0]]
                locally_biased_rows(S_A, S_B, self.gamma, precision, out=difference[rows], scratch=lower)
            else:
                standard_rows(S_A, S_B, precision, out=difference[rows])
        lowest, highest = torch.aminmax(difference)
        largest = max(-float(lowest), float(highest))
        if self.difference == "standard" and self.normalize_difference and largest > 0:
            difference /= torch.tensor(largest, dtype=precision, device=device)
            largest = 1.0
        for direction in directions:
            self.differences[direction] = (difference, 1.0 if direction == "10" else -1.0)
            self.largest[direction] = largest

    def _similarity_rows(
        self, X_A: np.ndarray, X_B: np.ndarray, device: torch.device
    ) -> Callable[[slice], tuple[torch.Tensor, torch.Tensor]]:
        """rows -> (S_A[rows], S_B[rows]) on ``device``. Unguided neighbour ranks are made per block from
        the features; other similarities and guidance from the full (N, N) matrices on the host."""
        if self.similarity == "neighborhood" and self.guide_labels is None:
            rankers, buffers, workspace = {}, {}, {}
            for side, X in (("A", X_A), ("B", X_B)):
                # the grids of a side are drawn in its own features: keep their nearest neighbours
                explained = self.features is not None and self.features[side] is X
                keep = NEAREST_KEPT if explained else 0
                # the two rankers take turns, so they share one block memory (workspace)
                rankers[side] = NeighbourRanker(X, self.dtype, device, keep=keep, workspace=workspace)
                if explained:
                    self.neighbour_lists[side] = rankers[side].lists

            def rank_rows(rows: slice) -> tuple[torch.Tensor, torch.Tensor]:
                # each block's ranks in memory reused from block to block (see NeighbourRanker)
                size = rows.stop - rows.start
                for side in ("A", "B"):
                    if side not in buffers or buffers[side].shape[0] < size:
                        buffers[side] = torch.empty((size, X_A.shape[0]), dtype=torch.int32, device=device)
                return tuple(rankers[side](rows, out=buffers[side][:size]) for side in ("A", "B"))

            return rank_rows
        S_A, S_B = similarity_matrices(
            X_A,
            X_B,
            kind=self.similarity,
            dtype=self.dtype,
            device=device,
            local_scaling_neighbour=self.local_scaling_neighbour,
            reference_compat=self.reference_compat,
        )
        if self.guide_labels is not None:
            from rdx.methods.guidance import apply_guidance

            S_A = apply_guidance(S_A, self.guide_labels["A"])
            S_B = apply_guidance(S_B, self.guide_labels["B"])
        return lambda rows: (torch.from_numpy(S_A[rows]).to(device), torch.from_numpy(S_B[rows]).to(device))

    def has_difference(self) -> bool:
        return any(largest > 0 for largest in self.largest.values())

    def _exponent(self, direction: str) -> float:
        """-beta * sign of the direction; raises where exp(-beta * D) would overflow float32."""
        _, sign = self.differences[direction]
        largest = self.largest[direction] * self.beta
        if largest > MAX_EXPONENT:
            # Past ~e^80 the affinity overflows float32, and no eigensolver converges on such a matrix.
            raise ValueError(
                f"exp(-beta * D) overflows: max |beta * D| = {largest:.3g} > {MAX_EXPONENT:g}; normalise "
                "the difference (normalize_difference=True) or lower beta"
            )
        return -self.beta * sign

    def cluster(self, direction: str) -> np.ndarray:
        matrix, _ = self.differences[direction]
        # the graph is consumed by the clustering; its memory serves the next direction's graph (fresh
        # N x N memory costs page faults) and is let go once every direction has been clustered
        graph = symmetric_affinity(matrix, self._exponent(direction), out=self.graph_memory)
        self.clustered.add(direction)
        self.graph_memory = graph if self.clustered < self.differences.keys() else None
        if self.clustering == "spectral":
            labels, self.spectral[direction] = graph_spectral_labels(
                graph, self.n_clusters, self.random_state
            )
            return labels
        return graph_centrality_clusters(
            graph.cpu().numpy(), self.n_clusters, self.clustering, self.cluster_size
        )

    def affinity_block(self, direction: str) -> ExactAffinity:
        matrix, sign = self.differences[direction]
        side = DIRECTION_TO_SIDE[direction]
        features = None if self.features is None else self.features[side]
        return ExactAffinity(matrix, -self.beta * sign, features, self.neighbour_lists.get(side))

    def difference_matrix(self, direction: str) -> np.ndarray:
        matrix, sign = self.differences[direction]
        return (matrix * sign if sign != 1.0 else matrix.clone()).cpu().numpy()

    def affinity_matrix(self, direction: str) -> np.ndarray:
        matrix, _ = self.differences[direction]
        return torch.mul(matrix, self._exponent(direction)).exp_().cpu().numpy()

    def difference_graph(self, direction: str) -> sp.csr_matrix:
        raise ValueError("difference_graph is the sparse path's; this fit took the exact path")

    def info(self) -> dict[str, Any]:
        return {"exact": {"spectral": dict(self.spectral)}} if self.spectral else {}


class AffinityMatrices(Mapping[str, np.ndarray]):
    """Both directions' N x N affinities, each computed when looked up and never stored (so listing an
    estimator's attributes, as scikit-learn's HTML repr does, computes nothing)."""

    def __init__(self, graph: DifferenceGraph) -> None:
        self._graph = graph

    def __getitem__(self, direction: str) -> np.ndarray:
        if direction not in DIRECTION_TO_SIDE:
            raise KeyError(direction)
        return self._graph.affinity_matrix(direction)

    def __iter__(self) -> Iterator[str]:
        return iter(DIRECTION_TO_SIDE)

    def __len__(self) -> int:
        return len(DIRECTION_TO_SIDE)


# ------------------------------------------------------------------------------------------------
# the estimator
# ------------------------------------------------------------------------------------------------


@dataclass(repr=False, eq=False, kw_only=True)
class RDX(BaseEstimator):
    """RDX over two representations of the same images; defaults are the paper's.

    A scikit-learn estimator: the parameters below are keyword-only dataclass fields (the generated
    ``__init__`` only stores them), so ``get_params``, ``set_params`` and ``sklearn.base.clone`` work.

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
        device: "auto", "cpu" or "cuda": where the exact path runs (distances, ranks, difference,
            affinity graphs, eigensolver, cluster order and grid neighbours; k-means on the (N, k)
            embedding runs on the host), and the sparse path's neighbour search and eigensolver products.
        random_state: seeds spectral clustering, random grids, the alignment split and the probes.
        path: "exact" (dense N x N), "sparse" (top-K neighbour graphs, ``rdx.methods.sparse_rdx``) or
            "auto": on the CPU exact when N <= 20,000 and its estimated peak memory fits
            ``memory_budget_gb``, on a GPU exact while its estimated peak fits ``memory_budget_gb`` or
            else 90 % of the GPU's free memory (N ~ 75,000 on an empty 80 GB GPU), else sparse;
            variants the sparse path lacks (other similarities, the standard difference, greedy
            clusterings, guidance, reference_compat) stay exact, or fail when exact cannot fit.
        n_neighbors: sparse path: K, neighbours per image in each model's graph.
        memory_budget_gb: memory the auto choice may plan for; None: what the machine has available now
            (on a GPU: 90 % of its free memory).
        rank_estimate: sparse path: "sampled" (estimate ranks beyond a model's top-K from a sample of
            each row's distances) or "exact" (count them over the row; O(N log K) more per row).
        rank_sample_size: sparse path: sampled columns per row for the rank estimate and the far field
            (every column when N is at most this); fewer is faster and coarser.
        eigensolver: sparse path: "lanczos" (ARPACK on the implicit operator), "lobpcg" or
            "block_lanczos" (the torch solver of the exact path, on the device with the operator).
        background_cells: sparse path: cells of the far-field model (a pair outside the neighbour graphs
            gets its row's mean affinity to the other image's cell, estimated from sampled pairs); None:
            by N (``sparse_rdx.default_cells``: N / 4, at most 1,024); 1: one background value per row.

    Attributes after ``fit``:
        gamma_: the temperature used.
        labels_: {"10": labels, "01": labels}; 0 is the null cluster (spectral with null cluster) or the
            unassigned rest (greedy clusterings).
        cluster_affinity_: {"10": m_c per label, "01": ...}.
        alignment_: {"10": AlignmentResult, "01": AlignmentResult} when ``align``.
        guide_labels_: {"A": labels, "B": labels} when guided.
        explanation_: the ``Explanation`` (side "B" from direction 10, side "A" from direction 01).
            Its info records the path ("path", "path_reason") and, for the sparse path, the union
            graph ("sparse": pairs, connected components, estimated-rank fractions, eigensolver); the
            exact path's spectral clustering records its eigensolver per direction ("exact": {"spectral":
            {direction: eigenvalues, block products, residual}}).
        path_: "exact" or "sparse", the path this fit took.
        timings_: seconds per stage of the last fit ("difference": distances, ranks and difference, or
            the sparse path's neighbour pass and cells; "clustering_10", "grids_10", ...).
        difference_matrix(direction), affinity_matrix(direction): the N x N matrices, on request (dense
            even on the sparse path: only for N that fits); difference_graph(direction): the sparse
            path's (N, N) CSR difference on the union pairs.
    """

    name = "rdx"

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
    grid_size: int = 9
    grid_strategy: str = "maximize_total_neighborhood_affinity"
    local_scaling_neighbour: int = 7
    guidance: str | None = None
    align: bool = False
    alignment_steps: int = 100
    alignment_lr: float = 1e-3
    alignment_train_fraction: float = 0.7
    reference_compat: bool = False
    dtype: str = "float32"
    device: str = "auto"
    random_state: int = 0
    path: str = "auto"
    n_neighbors: int = sparse_rdx.DEFAULT_NEIGHBOURS
    memory_budget_gb: float | None = None
    rank_estimate: str = "sampled"
    rank_sample_size: int = sparse_rdx.RANK_SAMPLE_SIZE
    eigensolver: str = "lanczos"
    background_cells: int | None = None

    # -- parameters ------------------------------------------------------------------------------

    def check_params(self) -> None:
        """Check every parameter without data (ValueError naming the bad one): ``rdx-compare`` calls this
        before any data loads; ``fit`` calls it first."""
        self._check_params()

    def _check_params(self) -> None:
        choices = {
            "similarity": (self.similarity, SIMILARITIES),
            "difference": (self.difference, DIFFERENCES),
            "clustering": (self.clustering, CLUSTERINGS),
            "grid_strategy": (self.grid_strategy, tuple(GRID_STRATEGIES)),
            "guidance": (self.guidance, GUIDANCE),
            "dtype": (self.dtype, ("float32", "float64")),
            "path": (self.path, PATHS),
            "rank_estimate": (self.rank_estimate, sparse_rdx.RANK_ESTIMATES),
            "eigensolver": (self.eigensolver, sparse_rdx.EIGENSOLVERS),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose one of {list(allowed)}")
        if not isinstance(self.n_concepts, int | np.integer) or self.n_concepts < 1:
            raise ValueError(f"n_concepts must be a positive integer, got {self.n_concepts!r}")
        if self.grid_size < 1 or self.cluster_size < 1:
            raise ValueError("grid_size and cluster_size must be positive")
        for name in ("n_neighbors", "background_cells", "rank_sample_size"):
            value = getattr(self, name)
            if name == "background_cells" and value is None:
                continue
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.memory_budget_gb is not None and not self.memory_budget_gb > 0:
            raise ValueError(f"memory_budget_gb must be positive or None, got {self.memory_budget_gb!r}")
        # NaN or infinite temperatures would only surface as an eigensolver failure much later
        check_positive_number("gamma", self.gamma, allow_none=True)
        for name in ("gamma_scale", "beta", "alignment_lr"):
            check_positive_number(name, getattr(self, name))
        check_positive_int("alignment_steps", self.alignment_steps)
        if not 0.0 < self.alignment_train_fraction < 1.0:
            raise ValueError(
                "alignment_train_fraction must lie strictly between 0 and 1, "
                f"got {self.alignment_train_fraction!r}"
            )

    def sparse_unsupported(self) -> list[str]:
        """The settings of this estimator that the sparse path does not implement ([] if none)."""
        defaults = {
            "similarity": "neighborhood",
            "difference": "locally_biased",
            "clustering": "spectral",
            "guidance": None,
            "reference_compat": False,
        }
        current = {name: getattr(self, name) for name in defaults}
        return [f"{name}={value!r}" for name, value in current.items() if value != defaults[name]]

    def choose_path(self, n: int, d: int) -> tuple[str, str]:
        """Which path a fit on N images of dimension d takes, and why: ("exact" | "sparse", reason).

        Raises:
            ValueError: path="sparse" with a variant the sparse path lacks, or "auto" where the exact
                path does not fit and the variant rules the sparse path out.
        """
        unsupported = self.sparse_unsupported()
        if self.path == "exact":
            return "exact", "path='exact' was asked for"
        if self.path == "sparse":
            if unsupported:
                raise ValueError(
                    f"path='sparse' does not support {', '.join(unsupported)}: it implements the paper's "
                    "method (neighbour ranks, locally-biased difference, spectral clustering), optionally "
                    "aligned; use path='exact' (or 'auto') for this variant"
                )
            return "sparse", "path='sparse' was asked for"
        device = resolve_device(self.device)
        on_cpu = device.type == "cpu"
        if self.memory_budget_gb is not None:
            budget = self.memory_budget_gb * GIB
        else:
            budget = sparse_rdx.available_memory_bytes() if on_cpu else sparse_rdx.device_memory_bytes(device)
        exact_bytes = sparse_rdx.exact_path_peak_bytes(n, self.dtype, device.type)
        fits = exact_bytes <= budget
        # the reason is part of the explanation's info, so it names no live measurement (fits stay
        # reproducible); the log has the numbers
        if self.memory_budget_gb is not None:
            budget_name = "memory_budget_gb"
        else:
            budget_name = "the memory available" if on_cpu else f"the free memory of {device.type}"
        sizes = f"exact path's estimated peak {exact_bytes / GIB:.1f} GB vs {budget_name}"
        log.info(
            "RDX path choice on %s: exact path's estimated peak %.1f GB, budget %.1f GB",
            device,
            exact_bytes / GIB,
            budget / GIB,
        )
        # on a GPU the exact path stays fast as long as it fits; on the CPU its sorts grow slow past
        # AUTO_EXACT_MAX_N
        small = not on_cpu or n <= sparse_rdx.AUTO_EXACT_MAX_N
        if fits and small:
            if on_cpu:
                return "exact", f"N={n} <= {sparse_rdx.AUTO_EXACT_MAX_N} and it fits ({sizes})"
            return "exact", f"N={n} and it fits on {device.type} ({sizes})"
        if unsupported:
            if fits:
                needs = f"{', '.join(unsupported)} needs the exact path"
                return "exact", f"N={n} but {needs}, which fits ({sizes})"
            raise ValueError(
                f"RDX on N={n} images: the exact path does not fit ({sizes}) and the sparse path does not "
                f"support {', '.join(unsupported)}; raise memory_budget_gb, use fewer images, or use the "
                "paper's default variant"
            )
        why = "does not fit" if not fits else f"is slow above N={sparse_rdx.AUTO_EXACT_MAX_N}"
        return "sparse", f"N={n}: the exact path {why} ({sizes})"

    @property
    def n_clusters(self) -> int:
        """Clusters fitted per direction: k (+ 1 null cluster for spectral clustering)."""
        extra = 1 if (self.clustering == "spectral" and self.null_cluster) else 0
        return self.n_concepts + extra

    # -- fitting ---------------------------------------------------------------------------------

    # -- fitting ---------------------------------------------------------------------------------

    def fit(self, X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray | None = None) -> RDX:
        """Find what each model groups together that the other separates.

        Validate, choose the path, build its difference graph, then per direction cluster, order the
        clusters and select their grids.

        Args:
            X_A: (N, d_A) and X_B: (N, d_B) features of the same images, same order. Not modified.
            y: (N,) labels, needed only for guidance.
        """
        self._check_params()
        X_A, X_B = check_representations(X_A, X_B, min_samples=self.n_clusters + 1)
        n = X_A.shape[0]
        self.path_, self._path_reason = self.choose_path(n, max(X_A.shape[1], X_B.shape[1]))
        log.info("RDX on N=%d: %s path (%s)", n, self.path_, self._path_reason)
        self.gamma_ = resolve_gamma(self.gamma, self.gamma_scale, n)
        self._features = {"A": X_A, "B": X_B}
        self.guide_labels_ = self._guide_labels(X_A, X_B, y)
        self.timings_: dict[str, float] = {}
        started = time.perf_counter()
        self._graph = self._new_graph()
        for (pair_A, pair_B), directions in self._representation_pairs(X_A, X_B):
            self._graph.add_difference(pair_A, pair_B, directions)
        self.timings_["difference"] = time.perf_counter() - started

        concepts: dict[str, list[Concept]] = {"A": [], "B": []}
        null: dict[str, Concept | None] = {"A": None, "B": None}
        self.labels_, self.cluster_affinity_ = {}, {}
        if not self._graph.has_difference():
            # Identical neighbourhoods: every affinity is 1 and any clustering would be arbitrary.
            log.warning("RDX: the two representations have identical neighbourhoods; no difference found")
            self.explanation_ = Explanation(self.name, concepts, null, info=self._info(n, True))
            return self

        greedy = self.clustering != "spectral"  # label 0: the images a greedy clustering never assigned
        has_null = greedy or self.null_cluster
        for direction, side in DIRECTION_TO_SIDE.items():
            started = time.perf_counter()
            raw = self._graph.cluster(direction)
            block = self._graph.affinity_block(direction)
            labels, means = order_clusters(block, raw, zero_is_rest=greedy)
            self.labels_[direction], self.cluster_affinity_[direction] = labels, means
            self.timings_[f"clustering_{direction}"] = time.perf_counter() - started
            started = time.perf_counter()
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
            self.timings_[f"grids_{direction}"] = time.perf_counter() - started
        self.explanation_ = Explanation(self.name, concepts, null, info=self._info(n, False))
        return self

    def _new_graph(self) -> DifferenceGraph:
        """An empty difference graph of the chosen path, with what it needs of this fit's parameters."""
        common = dict(
            gamma=self.gamma_,
            beta=self.beta,
            n_clusters=self.n_clusters,
            dtype=self.dtype,
            device=self.device,
            random_state=self.random_state,
        )
        if self.path_ == "sparse":
            return sparse_rdx.SparseGraph(
                features=self._features,
                n_neighbors=self.n_neighbors,
                rank_estimate=self.rank_estimate,
                rank_sample_size=self.rank_sample_size,
                background_cells=self.background_cells,
                eigensolver=self.eigensolver,
                **common,
            )
        return ExactGraph(
            features=self._features,
            similarity=self.similarity,
            difference=self.difference,
            normalize_difference=self.normalize_difference,
            local_scaling_neighbour=self.local_scaling_neighbour,
            reference_compat=self.reference_compat,
            guide_labels=self.guide_labels_,
            clustering=self.clustering,
            cluster_size=self.cluster_size,
            **common,
        )

    def _representation_pairs(
        self, X_A: np.ndarray, X_B: np.ndarray
    ) -> list[tuple[tuple[np.ndarray, np.ndarray], tuple[str, ...]]]:
        """The pairs of representations to take differences of, with the directions each serves.

        Unaligned: (X_A, X_B) for both directions. Aligned (sets ``alignment_``): (f_AB(X_A), X_B) for
        direction 10 and (X_A, f_BA(X_B)) for direction 01.
        """
        if not self.align:
            return [((X_A, X_B), ("10", "01"))]
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
        return [
            ((self.alignment_["10"].transform(X_A), X_B), ("10",)),
            ((X_A, self.alignment_["01"].transform(X_B)), ("01",)),
        ]

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

    # -- the N x N matrices, on request ------------------------------------------------------------

    def difference_graph(self, direction: str) -> sp.csr_matrix:
        """Sparse path: D for a direction on the union pairs, (N, N) CSR (far pairs are not stored)."""
        return self._graph.difference_graph(direction)

    def difference_matrix(self, direction: str) -> np.ndarray:
        """D for a direction ("10" or "01"), (N, N). Unaligned, D_01 = -D_10."""
        return self._graph.difference_matrix(direction)

    def affinity_matrix(self, direction: str) -> np.ndarray:
        """Aff = exp(-beta D) for a direction, (N, N), unsymmetrised. Unaligned, Aff_01 = 1 / Aff_10."""
        return self._graph.affinity_matrix(direction)

    def affinity_block(self, direction: str) -> AffinityBlock:
        """Accessor (rows, cols) -> Aff[rows][:, cols] without forming the N x N affinity.

        On the sparse path a ``sparse_rdx.SparseAffinity`` (also a ``grids.ScalableAffinity``).
        """
        return self._graph.affinity_block(direction)

    @property
    def affinity_(self) -> AffinityMatrices:
        """Both directions' affinities, {"10": (N, N), "01": (N, N)}, each computed when looked up."""
        return AffinityMatrices(self._graph)

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
            "path": self.path_,
            "path_reason": self._path_reason,
            **self._graph.info(),
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
