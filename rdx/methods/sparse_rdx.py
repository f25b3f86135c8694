"""RDX for large N without any N x N matrix: the approximate sparse path.

The exact path (``rdx.methods.rdx``) holds a few dense N x N matrices, which caps it near N = 20,000 on
a 24 GB machine. This path keeps per image what the paper's locally-biased difference weighs most, its
nearest neighbours, exactly, and models every other pair coarsely.

1. Neighbours: each model's ``n_neighbors`` (K) nearest other images, exact, by blocked matrix multiply
   on the torch device (CUDA when present); same order as the exact ranks (self first, ties by index).
2. Union graph: for row i, the columns j in the union of both models' top-K lists. Each such pair needs
   its rank in *both* models. In a model whose top-K holds j the rank is exact; otherwise it is at least
   K + 1 and is either estimated (``rank_estimate="sampled"``, the default): the position of d(i, j)
   among a fixed seeded sample of the row's distances (8,192 columns), scaled from the sample to the
   N - K - 1 images beyond the top-K; or counted exactly over the row (``"exact"``, O(N log K) more
   per row). With N <= 8,192 the sample is every column and the ranks are exact either way.
3. Far field: every pair outside the union gets row i's mean affinity to the *cell* of j: cells are a
   k-means partition of the images in both models' (projected) features at once (``joint_cells``,
   about 4 images per cell, at most 1,024 cells). The means come from the same row samples: the sampled
   columns beyond both models' K-th neighbour, ranked by their place in the sample, summed per row and
   cell and pulled lightly towards the mean between the two cells (``row_cell_background``). With one
   cell this is a constant-per-row background close to the neutral 1. Measured on the benchmark data,
   the far field matters: the exact method's clusters depend on the many mid-range pairs (ranks ~K to a
   few thousand), whose difference is far from 0 (experiments/rdx_scale).
4. Affinity per direction = far-field (N, m) row-cell matrix + sparse correction on the union pairs
   (``SparseAffinity``); spectral clustering of its symmetrised form with a zero diagonal applies the
   normalised adjacency as an operator (cell sums, two N x m products, a sparse product: O(nnz + N m)),
   solved by ARPACK's Lanczos (``eigsh``) or LOBPCG. Embedding and k-means follow ``spectral_labels``
   exactly (same normalisation, same random_state sequence).
5. Cluster order and grids read ``SparseAffinity``: sums over blocks computed from cell counts and the
   sparse correction, never a dense matrix larger than |C| x |C| for small clusters (see
   ``SparseAffinity.member_neighbourhoods`` for large ones).

``SparseGraph`` holds these steps' results for one fit and is what ``RDX`` sees of this path (the
``DifferenceGraph`` protocol of ``rdx.methods.rdx``, which the exact path's ``ExactGraph`` implements too).

What is approximated, stated once: far pairs get their row's mean affinity to the other image's cell,
estimated from sampled columns, and ranks beyond a model's top-K are estimated unless
``rank_estimate="exact"``. ``scripts/bench_scale.py`` measures the agreement with the exact path
(experiments/rdx_scale/README.md).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import LinearOperator, lobpcg
from sklearn.cluster import k_means
from tqdm.auto import tqdm

from rdx.methods.eigensolvers import block_size, leading_eigenvectors, start_block
from rdx.methods.explanation import DIRECTION_TO_SIDE
from rdx.methods.neighbourhoods import (
    centred_features,
    count_below,
    neighbour_keys,
    resolve_device,
    row_blocks,
    top_neighbours,
    torch_dtype,
)

log = logging.getLogger(__name__)

DEFAULT_NEIGHBOURS = 200  # K; measured against the exact path in experiments/rdx_scale
RANK_SAMPLE_SIZE = 8192  # distances per row the rank estimate and the far field read
RANK_ESTIMATES = ("sampled", "exact")
EIGENSOLVERS = ("lanczos", "lobpcg", "block_lanczos")
SPARSE_BLOCK_BYTES = 512 * 1024**2  # per row block: both models' keys and the sort temporaries
DENSE_CLUSTER_LIMIT = 4096  # clusters up to this size get exact grids from a dense |C| x |C| block
MAX_CELLS = 1024  # most cells of the far-field model (it holds N x cells numbers per direction)
IMAGES_PER_CELL = 4  # the default number of cells, below MAX_CELLS
FAR_FIELD_PRIOR = 0.5  # pseudo-samples pulling a row's cell mean towards its cell pair's mean
PROJECTED_DIMENSIONS = 32  # per model, for the cells' k-means
PROGRESS_MIN_N = 20000  # above this the neighbour pass shows a progress bar (in a terminal)
FALLBACK_ANCHORS = 1024  # grid candidates of a large cluster when no member's top-K has enough mates


# ------------------------------------------------------------------------------------------------
# neighbours and the ranks of union pairs
# ------------------------------------------------------------------------------------------------


@dataclass
class UnionRanks:
    """Both models' neighbour ranks on the union of their top-K graphs.

    Attributes:
        n: number of images N.
        rows, cols: (E,) int64 pairs (i, j), i != j, j in top-K_A(i) or top-K_B(i); sorted by (i, j).
        rank_A, rank_B: (E,) float64 ranks R(i, j) (0-based, self = 0): exact where ``exact_A`` /
            ``exact_B``, else estimated (at least K + 1).
        exact_A, exact_B: (E,) bool, whether the rank is exact.
        neighbours_A, neighbours_B: (N, K) int64 top-K lists (self excluded), nearest first.
        background: the far-field model per direction, {"10": (N, m), "01": (N, m)} float32: each
            image's mean affinity to each cell over pairs outside the union (``row_cell_background``),
            or None.
    """

    n: int
    rows: np.ndarray
    cols: np.ndarray
    rank_A: np.ndarray
    rank_B: np.ndarray
    exact_A: np.ndarray
    exact_B: np.ndarray
    neighbours_A: np.ndarray
    neighbours_B: np.ndarray
    background: dict[str, np.ndarray] | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_neighbors(self) -> int:
        return int(self.neighbours_A.shape[1])


def _positions_in(lists: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each query column sits in its row's list: (found (b, q) bool, 0-based position (b, q))."""
    sorted_lists, order = torch.sort(lists, dim=1)
    where = torch.searchsorted(sorted_lists, queries.contiguous()).clamp_(max=lists.shape[1] - 1)
    found = sorted_lists.gather(1, where) == queries
    return found, order.gather(1, where)


def _sorted_rows(values: torch.Tensor, use_numpy: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row sorted ascending, and each entry's place in its sorted row: (sorted (b, s), positions
    (b, s) int64). On the CPU through numpy (``use_numpy`` None: by the tensor's device), whose
    vectorised sort is faster than torch's there; torch on other devices."""
    if use_numpy is None:
        use_numpy = values.device.type == "cpu"
    if use_numpy:
        array = values.numpy()
        order = np.argsort(array, axis=1)
        positions = np.empty_like(order)
        np.put_along_axis(positions, order, np.arange(array.shape[1])[None, :], axis=1)
        return torch.from_numpy(np.take_along_axis(array, order, axis=1)), torch.from_numpy(positions)
    ordered, order = torch.sort(values, dim=1)
    positions = torch.empty_like(order)
    positions.scatter_(1, order, torch.arange(values.shape[1], device=values.device).expand_as(order))
    return ordered, positions


@dataclass
class _RowSample:
    """One model's sampled distances of a row block: sorted keys (b, s), each sampled column's place
    among them (b, s), and how many sampled keys fall in each row's self + top-K (b, 1)."""

    keys: torch.Tensor
    positions: torch.Tensor
    in_top: torch.Tensor

    @classmethod
    def of(cls, keys: torch.Tensor, sample_columns: torch.Tensor, kth_key: torch.Tensor) -> _RowSample:
        keys, positions = _sorted_rows(keys[:, sample_columns])
        in_top = torch.searchsorted(keys, kth_key[:, None].contiguous(), right=True)
        return cls(keys, positions, in_top)

    def ranks_from_counts(
        self, below: torch.Tensor, n: int, n_neighbors: int, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Ranks of keys beyond the top-K from the number of sampled keys below them, (b, q) ``dtype``.

        The sampled keys beyond the K-th neighbour's key stand for the N - K - 1 images beyond the
        top-K: rank ~ K + 1 + (N - K - 1) * (sampled beyond-top-K keys below) / (sampled beyond-top-K
        keys), clipped to [K + 1, N - 1]. Exact when the sample is every column (and no ties).
        """
        beyond = (self.keys.shape[1] - self.in_top).clamp_(min=1).to(dtype)
        between = (below - self.in_top).clamp_(min=0).to(dtype)
        estimate = (n_neighbors + 1) + (n - n_neighbors - 1) * between / beyond
        return estimate.clamp_(min=n_neighbors + 1, max=n - 1)

    def ranks_of(
        self, query_keys: torch.Tensor, n: int, n_neighbors: int, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """Estimated ranks of query keys known to lie beyond each row's top-K, (b, q) ``dtype``. For a
        sampled column's own key the count below is its place in the sample."""
        below = torch.searchsorted(self.keys, query_keys.contiguous())
        return self.ranks_from_counts(below, n, n_neighbors, dtype)


def joint_cells(
    X_A: np.ndarray,
    X_B: np.ndarray,
    n_cells: int,
    random_state: int = 0,
    device: str | torch.device | None = "auto",
    iterations: int = 20,
    block_rows: int = 8192,
) -> np.ndarray:
    """Partition the images into ``n_cells`` cells that are compact in both models at once.

    Lloyd's k-means (``iterations`` rounds from ``n_cells`` seeded random images) on the concatenation
    [X_A / s_A, X_B / s_B], each model scaled by its root-mean-square distance to its mean so that both
    weigh the same, and first projected to ``PROJECTED_DIMENSIONS`` dimensions by a seeded Gaussian
    matrix when wider (cells need only be roughly compact; this keeps the k-means cheap at d = 768).
    Runs on ``device`` in row blocks. Images in one cell have similar neighbour-rank profiles in both
    models, which is what the far-field model needs.

    Returns:
        (N,) int64 cell labels in 0..n_cells-1 (every cell non-empty).
    """
    device = resolve_device(device)
    n = X_A.shape[0]
    n_cells = int(min(max(1, n_cells), n))
    if n_cells == 1:
        return np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(random_state)
    parts = []
    for X in (X_A, X_B):
        centred, norms = centred_features(X, torch.float32, device)
        centred /= norms.mean().clamp(min=1e-12).sqrt()
        if centred.shape[1] > PROJECTED_DIMENSIONS:
            projection = (
                rng.standard_normal((centred.shape[1], PROJECTED_DIMENSIONS)) / PROJECTED_DIMENSIONS**0.5
            )
            centred = centred @ torch.as_tensor(projection, dtype=torch.float32, device=device)
        parts.append(centred)
    points = torch.cat(parts, dim=1)
    del parts
    centres = points[torch.as_tensor(rng.choice(n, size=n_cells, replace=False), device=device)].clone()
    labels = torch.empty(n, dtype=torch.int64, device=device)
    for _ in range(iterations):
        centre_norms = (centres * centres).sum(dim=1)
        for start in range(0, n, block_rows):
            block = slice(start, min(start + block_rows, n))
            # |c|^2 - 2 x . c: the squared distance less the point's own |x|^2, in one product
            scores = torch.addmm(centre_norms[None, :], points[block], centres.T, alpha=-2.0)
            labels[block] = torch.argmin(scores, dim=1)
        counts = torch.bincount(labels, minlength=n_cells)
        sums = torch.zeros_like(centres).index_add_(0, labels, points)
        empty = counts == 0
        updated = sums / counts.clamp(min=1)[:, None].to(sums.dtype)
        updated[empty] = centres[empty]  # an empty cell keeps its centre (relabelled below)
        if torch.equal(updated, centres):
            break
        centres = updated
    _, compact = np.unique(labels.cpu().numpy(), return_inverse=True)  # drop empty cells
    return compact.astype(np.int64)


@dataclass
class FarField:
    """What the neighbour pass needs to estimate the far-field model (``row_cell_background``).

    Attributes:
        cells: (N,) cell of each image (``joint_cells``).
        gamma, beta: the difference's temperature and the affinity's sharpness.
    """

    cells: np.ndarray
    gamma: float
    beta: float


def _far_field_sums(
    samples: list[_RowSample],
    rows: slice,
    column_cells: torch.Tensor,
    n: int,
    n_neighbors: int,
    far_field: FarField,
    sums: torch.Tensor,
) -> None:
    """Add this block's sampled far pairs to ``sums`` (3, N, m): per row and cell, the affinities of
    "10", of "01", and the count.

    The far pairs are (i, j) with j a sampled column beyond the K-th neighbour in both models, i.e.
    outside the union (and not i). Their ranks come from each column's place among the row's sampled
    keys, in float32 (enough for the far field's averages): no search.
    """
    ranks = [sample.ranks_from_counts(sample.positions, n, n_neighbors, torch.float32) for sample in samples]
    far = samples[0].positions >= samples[0].in_top
    far &= samples[1].positions >= samples[1].in_top
    weight = far.to(torch.float32)
    lower = torch.minimum(*ranks).add_(1.0)
    difference = ranks[1].sub_(ranks[0]).mul_(far_field.gamma).div_(lower).tanh_()
    affinity_10 = difference.mul_(-far_field.beta).exp_()  # Aff_10 = exp(-beta D); Aff_01 = 1 / Aff_10
    for plane, weights in enumerate((affinity_10 * weight, weight.div(affinity_10), weight)):
        sums[plane, rows].index_add_(1, column_cells, weights)


def row_cell_background(
    sums: np.ndarray, counts: np.ndarray, cells: np.ndarray, prior: float = FAR_FIELD_PRIOR
) -> np.ndarray:
    """The far-field model from sampled far pairs: each row's mean affinity to each cell, (N, m) float32.

    Row i's mean over its sampled far pairs into cell J is pulled towards the mean between i's cell and
    J over all rows (``prior`` pseudo-samples), which also fills (i, J) without samples; a cell pair with
    no samples at all gets the overall far-pair mean (or the neutral 1).

    Args:
        sums, counts: (N, m) sampled far-pair affinity sums and counts per row and cell.
        cells: (N,) cell of each image.
    """
    m = sums.shape[1]
    membership = sp.csr_matrix((np.ones(len(cells)), (np.arange(len(cells)), cells)), shape=(len(cells), m))
    pair_sums = np.asarray(membership.T @ sums, dtype=np.float64)  # (m, m): cell of i x cell of j
    pair_counts = np.asarray(membership.T @ counts, dtype=np.float64)
    total = pair_counts.sum()
    overall = pair_sums.sum() / total if total > 0 else 1.0
    pair_means = (pair_sums + overall) / (pair_counts + 1.0)
    out = np.empty(sums.shape, dtype=np.float32)
    for start in range(0, len(cells), 8192):
        block = slice(start, min(start + 8192, len(cells)))
        prior_means = pair_means[cells[block]]
        out[block] = (sums[block] + prior * prior_means) / (counts[block] + prior)
    return out


def default_cells(n: int) -> int:
    """Cells of the far-field model for N images: about ``IMAGES_PER_CELL`` images each, at most
    ``MAX_CELLS`` (N / 4 up to N = 4,096, then 1,024)."""
    return int(max(1, min(MAX_CELLS, n // IMAGES_PER_CELL)))


def union_neighbour_ranks(
    X_A: np.ndarray,
    X_B: np.ndarray,
    n_neighbors: int = DEFAULT_NEIGHBOURS,
    rank_estimate: str = "sampled",
    sample_size: int = RANK_SAMPLE_SIZE,
    far_field: FarField | None = None,
    dtype: str | type = "float32",
    device: str | torch.device | None = "auto",
    random_state: int = 0,
    block_bytes: int = SPARSE_BLOCK_BYTES,
) -> UnionRanks:
    """Top-K neighbours of both models, both ranks of every pair in the union of their graphs, and
    (with ``far_field``) the far-field model: each row's mean affinity to each cell.

    Distances are computed in row blocks (b x N per model at a time, on ``device``) and dropped after
    each block: memory is O(N K + b N + b * sample_size), never N x N.

    Args:
        X_A, X_B: (N, d_A), (N, d_B) features of the same images.
        n_neighbors: K, neighbours per image in each model's graph (clipped to N - 1).
        rank_estimate: "sampled" (default) or "exact" for union ranks beyond a model's top-K.
        sample_size: distances per row the sampled estimate and the far-field model read (the same
            seeded columns every row; every column, hence exact ranks, when N <= sample_size).
        far_field: cells, gamma and beta for the far-field model; None: no far-field model.
        dtype: float32 or float64 for the distances.
        random_state: seeds the sample of columns.

    Returns:
        ``UnionRanks`` (``background`` {"10": (N, m), "01": (N, m)} with ``far_field``, else None).
    """
    if rank_estimate not in RANK_ESTIMATES:
        raise ValueError(f"unknown rank_estimate {rank_estimate!r}; choose one of {list(RANK_ESTIMATES)}")
    device = resolve_device(device)
    n = X_A.shape[0]
    if n < 3:
        raise ValueError(f"the sparse path needs at least 3 images, got N={n}")
    k = int(min(max(1, n_neighbors), n - 1))
    features = [centred_features(X, torch_dtype(dtype), device) for X in (X_A, X_B)]
    rng = np.random.default_rng(random_state)
    sampled = sample_size < n
    sample = np.sort(rng.choice(n, size=sample_size, replace=False)) if sampled else np.arange(n)
    sample_columns = torch.as_tensor(sample, device=device)
    count_exactly = rank_estimate == "exact" or not sampled
    if far_field is not None:
        # the far field reads the same sampled columns: per row and cell, sums of Aff_10, of Aff_01,
        # and counts of the sampled far pairs
        cell_of = np.asarray(far_field.cells, dtype=np.int64)
        m = int(cell_of.max()) + 1
        sample_cells = torch.as_tensor(cell_of[sample], device=device)
        sums = torch.zeros((3, n, m), dtype=torch.float32, device=device)
    neighbours = [np.empty((n, k), dtype=np.int64) for _ in range(2)]
    pieces: list[tuple[np.ndarray, ...]] = []
    item = torch.tensor([], dtype=torch_dtype(dtype)).element_size()
    # per row: both models' keys and top-K temporaries over N columns, exact counting's bucket
    # indices, and the row samples' and far field's temporaries over the sampled columns
    row_bytes = n * (4 * item + (16 if count_exactly else 0)) + 6 * 8 * len(sample)
    # a progress bar for the long pass (minutes on a CPU from N ~ 50,000), in interactive terminals only
    bar = tqdm(
        total=n,
        desc="RDX sparse path: neighbours",
        unit="image",
        leave=False,
        disable=None if n > PROGRESS_MIN_N else True,
    )
    for rows in row_blocks(n, 1, row_bytes, block_bytes):
        bar.update(rows.stop - rows.start)
        keys = [neighbour_keys(f, norms, rows) for f, norms in features]
        top = [top_neighbours(key, k + 1)[:, 1:] for key in keys]  # drop self (always first)
        for model in range(2):
            neighbours[model][rows] = top[model].cpu().numpy()
        kth_keys = [key.gather(1, t[:, -1:]).squeeze(1) for key, t in zip(keys, top, strict=True)]
        # the union of both lists per row, as sorted columns (duplicates masked by `keep`)
        union = torch.sort(torch.cat(top, dim=1), dim=1).values
        keep = torch.ones_like(union, dtype=torch.bool)
        keep[:, 1:] = union[:, 1:] != union[:, :-1]
        samples = [_RowSample.of(key, sample_columns, kth) for key, kth in zip(keys, kth_keys, strict=True)]
        ranks, exact = [], []
        for model in range(2):
            found, position = _positions_in(top[model], union)
            query_keys = keys[model].gather(1, union)
            if count_exactly:
                beyond = count_below(keys[model], query_keys).to(torch.float64)
            else:
                beyond = samples[model].ranks_of(query_keys, n, k)
            ranks.append(torch.where(found, (position + 1).to(torch.float64), beyond))
            exact.append(found | count_exactly)
        if far_field is not None:
            _far_field_sums(samples, rows, sample_cells, n, k, far_field, sums)
        del samples
        row_index = torch.arange(rows.start, rows.stop, device=device)[:, None].expand_as(union)
        pieces.append(
            tuple(t[keep].cpu().numpy() for t in (row_index, union, ranks[0], ranks[1], exact[0], exact[1]))
        )
        del keys
    bar.close()
    rows_all, cols, rank_A, rank_B, exact_A, exact_B = (np.concatenate(p) for p in zip(*pieces, strict=True))
    info: dict[str, Any] = {
        "n_neighbors": k,
        "rank_estimate": "exact" if count_exactly else "sampled",
        "rank_sample_size": int(len(sample)),
        "union_pairs": int(len(rows_all)),
        "estimated_rank_fraction": {
            "A": float(1 - exact_A.mean()) if len(exact_A) else 0.0,
            "B": float(1 - exact_B.mean()) if len(exact_B) else 0.0,
        },
    }
    background = None
    if far_field is not None:
        totals = sums.cpu().numpy()
        del sums
        background = {
            direction: row_cell_background(totals[plane], totals[2], cell_of)
            for direction, plane in (("10", 0), ("01", 1))
        }
        info["background_cells"] = m
        info["far_pairs_sampled"] = int(totals[2].sum())
        del totals
    return UnionRanks(
        n,
        rows_all.astype(np.int64),
        cols.astype(np.int64),
        rank_A,
        rank_B,
        exact_A,
        exact_B,
        neighbours[0],
        neighbours[1],
        background,
        info,
    )


# ------------------------------------------------------------------------------------------------
# the sparse difference and its affinity
# ------------------------------------------------------------------------------------------------


def locally_biased_values(rank_A: np.ndarray, rank_B: np.ndarray, gamma: float) -> np.ndarray:
    """tanh(gamma (R_B - R_A) / (min(R_A, R_B) + 1)) elementwise, float64."""
    rank_A, rank_B = np.asarray(rank_A, dtype=np.float64), np.asarray(rank_B, dtype=np.float64)
    return np.tanh(gamma * (rank_B - rank_A) / (np.minimum(rank_A, rank_B) + 1.0))


def sparse_locally_biased_difference(union: UnionRanks, gamma: float) -> sp.csr_matrix:
    """D_10 = tanh(gamma (R_B - R_A) / (min(R_A, R_B) + 1)) on the union pairs, (N, N) CSR float64.

    Zero differences on union pairs are kept as explicit entries, so the CSR's pattern is the union
    graph; entries outside it belong to the far field (``row_cell_background``).
    """
    difference = locally_biased_values(union.rank_A, union.rank_B, gamma)
    matrix = sp.csr_matrix((difference, (union.rows, union.cols)), shape=(union.n, union.n))
    matrix.sort_indices()
    return matrix


def union_graph_components(union: UnionRanks) -> tuple[int, np.ndarray]:
    """Connected components of the union neighbour graph (undirected): (count, (N,) component labels)."""
    pattern = sp.csr_matrix(
        (np.ones(len(union.rows), dtype=np.int8), (union.rows, union.cols)), shape=(union.n, union.n)
    )
    return connected_components(pattern, directed=False)


def _nearest_of_anchors(points: np.ndarray, anchors: np.ndarray, size: int) -> np.ndarray:
    """For each anchor (local index into ``points``), its ``size`` nearest points, itself first, then by
    distance (float64), ties by index: (len(anchors), size) local indices, as ``nearest_members`` rows."""
    points = np.asarray(points, dtype=np.float64)
    points = points - points.mean(axis=0)
    norms = np.einsum("ij,ij->i", points, points)
    out = np.empty((len(anchors), size), dtype=np.int64)
    for start in range(0, len(anchors), 256):
        block = anchors[start : start + 256]
        squared = norms[block, None] + norms[None, :] - 2.0 * points[block] @ points.T
        squared[np.arange(len(block)), block] = -np.inf
        out[start : start + 256] = np.argsort(squared, axis=1, kind="stable")[:, :size]
    return out


class SparseAffinity:
    """The affinity of one direction, unsymmetrised, as a far-field model plus a sparse correction:

        Aff[i, j] = 1                                   if i = j,
                    exp(-beta * sign * D[i, j])          if j is in the union of i's top-K lists,
                    background[i, cell[j]]               otherwise (the far field).

    With one cell and background all ones this is the neutral background of the paper's intuition,
    Aff = 1 + S with S sparse. Stored as the (N, m) ``background``, the (N,) ``cells`` and the CSR
    ``correction`` = Aff - background[i, cell[j]] on the union pairs.

    Called as an ``AffinityBlock`` it returns a dense block (for small blocks only). Its other methods
    give what ordering and grid selection need without any block larger than the pairs asked for:
    ``within_mean`` (m_c), ``within_row_means`` (max_affinity), ``pair_values`` (block sums) and
    ``member_neighbourhoods`` (grid candidates from the explained model's top-K lists).

    Args:
        difference: (N, N) CSR of D_10 on union pairs (``sparse_locally_biased_difference``).
        beta: affinity sharpness.
        sign: +1 for direction "10", -1 for "01" (Aff_01 = exp(+beta D_10)).
        cells: (N,) cell of each image; None: one cell.
        background: (N, m) far-field affinity of each image to each cell (``UnionRanks.background``);
            None: ones.
        neighbours: (N, K) top-K lists of the explained model (nearest first), for grid candidates.
        features: (N, d) features of the explained model, for the fallback of ``member_neighbourhoods``.
        dense_cluster_limit: clusters up to this size get exact neighbourhoods (``member_neighbourhoods``
            returns None, so grid selection uses the features and a dense |C| x |C| block).
    """

    def __init__(
        self,
        difference: sp.csr_matrix,
        beta: float,
        sign: float,
        cells: np.ndarray | None = None,
        background: np.ndarray | None = None,
        neighbours: np.ndarray | None = None,
        features: np.ndarray | None = None,
        dense_cluster_limit: int = DENSE_CLUSTER_LIMIT,
    ) -> None:
        self.n = difference.shape[0]
        self.cells = np.zeros(self.n, dtype=np.int64) if cells is None else np.asarray(cells, dtype=np.int64)
        m = int(self.cells.max()) + 1
        self.background = (
            np.ones((self.n, m), dtype=np.float32) if background is None else np.asarray(background)
        )
        if self.background.shape != (self.n, m):
            raise ValueError(
                f"background must be (N, m) = ({self.n}, {m}) for {m} cells, got {self.background.shape}"
            )
        correction = difference.tocsr(copy=True)
        correction.sort_indices()
        row_of_entry = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(correction.indptr))
        columns = correction.indices.astype(np.int64)
        correction.data = np.exp(-beta * sign * correction.data) - self.background[
            row_of_entry, self.cells[columns]
        ].astype(np.float64)
        self.correction = correction
        self.neighbours = neighbours
        self.features = features
        self.dense_cluster_limit = dense_cluster_limit
        self._entry_keys = row_of_entry * self.n + columns  # sorted (CSR order)

    @property
    def n_cells(self) -> int:
        return self.background.shape[1]

    def _far(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        values = self.background[rows, self.cells[cols]].astype(np.float64)
        return np.where(rows == cols, 1.0, values)

    def __call__(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Dense Aff[rows][:, cols], float64 (len(rows), len(cols))."""
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        return self._far(rows[:, None], cols[None, :]) + self.correction[rows][:, cols].toarray()

    def pair_values(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Aff[rows[t], cols[t]] elementwise, any (broadcast) shape, float64."""
        rows, cols = np.broadcast_arrays(np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))
        values = self._far(rows, cols)
        if len(self._entry_keys):
            keys = (rows * self.n + cols).ravel()
            where = np.searchsorted(self._entry_keys, keys).clip(max=len(self._entry_keys) - 1)
            hit = self._entry_keys[where] == keys
            flat = values.reshape(-1)
            flat[hit] += self.correction.data[where[hit]]
        return values

    def _within_correction(self, members: np.ndarray) -> sp.csr_matrix:
        inside = np.zeros(self.n, dtype=bool)
        inside[members] = True
        block = self.correction[members]
        block.data = np.where(inside[block.indices], block.data, 0.0)
        return block

    def within_row_means(self, members: np.ndarray) -> np.ndarray:
        """Mean of Aff[m, members] for each member m, (|C|,) float64."""
        members = np.asarray(members, dtype=np.int64)
        cell = self.cells[members]
        per_cell = np.bincount(cell, minlength=self.n_cells).astype(np.float64)
        rows = self.background[members].astype(np.float64)
        far = rows @ per_cell - rows[np.arange(len(members)), cell] + 1.0  # diagonal is 1
        sums = np.asarray(self._within_correction(members).sum(axis=1)).ravel()
        return (far + sums) / len(members)

    def within_mean(self, members: np.ndarray) -> float:
        """m_c = mean(Aff[members][:, members]), the diagonal (1) included."""
        members = np.asarray(members, dtype=np.int64)
        if len(members) == 0:
            return float("nan")
        return float(self.within_row_means(members).mean())

    def member_neighbourhoods(self, members: np.ndarray, size: int) -> np.ndarray | None:
        """Candidate grid blocks for a large cluster: (c, size) global indices, anchor first.

        The candidates are the members whose top-K list holds at least ``size - 1`` other members: their
        ``size`` nearest members are then exactly the first ones in that list (the list is in global
        distance order). Members with fewer cluster-mates among their K nearest images sit at the
        cluster's fringe and are not candidates. When no member qualifies, the
        ``FALLBACK_ANCHORS`` members with the most cluster-mates in their lists are the candidates and
        their blocks are found exactly from the features (``len(anchors) x |C|`` distances).

        Returns None (the strategy then works on a dense |C| x |C| block, exactly) for clusters up to
        ``dense_cluster_limit`` or without neighbour lists.
        """
        members = np.asarray(members, dtype=np.int64)
        if self.neighbours is None or len(members) <= self.dense_cluster_limit or size < 2:
            return None
        inside = np.zeros(self.n, dtype=bool)
        inside[members] = True
        lists = self.neighbours[members]
        mates = inside[lists]
        counts = mates.sum(axis=1)
        candidates = np.flatnonzero(counts >= size - 1)
        if len(candidates):
            first = np.argsort(~mates[candidates], axis=1, kind="stable")[:, : size - 1]
            chosen = np.take_along_axis(lists[candidates], first, axis=1)
            return np.concatenate([members[candidates, None], chosen], axis=1)
        if self.features is None:
            raise ValueError("no member has enough cluster-mates among its neighbours, and no features")
        anchors = np.sort(np.lexsort((np.arange(len(members)), -counts))[:FALLBACK_ANCHORS])
        return members[_nearest_of_anchors(self.features[members], anchors, size)]


# ------------------------------------------------------------------------------------------------
# spectral clustering with the implicit background
# ------------------------------------------------------------------------------------------------


class BackgroundOperator:
    """The normalised adjacency D^-1/2 W D^-1/2 of the symmetrised affinity, without forming W.

    W = (Aff + Aff^T) / 2 with a zero diagonal, for the ``SparseAffinity`` model of Aff:
        W = (R P^T + P R^T) / 2 - diag(R[i, cell_i]) + C_sym,
    with R the (N, m) far-field background, P the (N, m) cell-membership matrix and C_sym = (C + C^T) / 2
    of the sparse correction. With one cell and R all ones this is W = (J - I) + S_sym, J the all-ones
    matrix. One product costs O(nnz + N m), on ``device`` (numpy/scipy on the CPU, torch on CUDA).

    Attributes:
        degree: (N,) float64 row sums of W.
    """

    def __init__(
        self, affinity: SparseAffinity, device: str | torch.device | None = "cpu", backend: str | None = None
    ) -> None:
        correction = affinity.correction
        symmetric = ((correction + correction.T) * 0.5).tocsr()
        symmetric.setdiag(0.0)  # union pairs never include i = i; guards against input with a diagonal
        symmetric.eliminate_zeros()
        self.n = affinity.n
        self.cells = affinity.cells
        self.n_cells = affinity.n_cells
        self.background = np.asarray(affinity.background, dtype=np.float64)  # R, (N, m)
        self.self_loops = self.background[np.arange(self.n), self.cells]
        self.membership_T = sp.csr_matrix(  # P^T, (m, N): sums over each cell's members
            (np.ones(self.n), (self.cells, np.arange(self.n))), shape=(self.n_cells, self.n)
        )
        self.symmetric = symmetric
        self.device = resolve_device(device)
        # backend: "numpy" (scipy sparse, the CPU default) or "torch" (any device, the default off the CPU)
        self.backend = backend or ("numpy" if self.device.type == "cpu" else "torch")
        if self.backend not in ("numpy", "torch"):
            raise ValueError(f"unknown backend {backend!r}; choose 'numpy' or 'torch'")
        if self.backend == "torch":
            with warnings.catch_warnings():  # "sparse CSR tensor support is in beta": products are all we use
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                matrix = torch.sparse_csr_tensor(
                    torch.as_tensor(symmetric.indptr, dtype=torch.int64),
                    torch.as_tensor(symmetric.indices, dtype=torch.int64),
                    torch.as_tensor(symmetric.data, dtype=torch.float64),
                    size=symmetric.shape,
                ).to(self.device)
            self._torch = {
                "matrix": matrix,
                "cells": torch.as_tensor(self.cells, device=self.device),
                "background": torch.as_tensor(self.background, device=self.device),
                "self_loops": torch.as_tensor(self.self_loops, device=self.device),
            }
            self.background = None  # the device holds it
        self.degree = self.adjacency_product(np.ones(self.n))
        if np.any(self.degree <= 0):
            raise ValueError("the affinity graph has points of zero degree; spectral clustering fails")
        self.scale = 1.0 / np.sqrt(self.degree)
        self.n_products = 0

    def adjacency_product(self, x: np.ndarray) -> np.ndarray:
        """W x for (N,) or (N, k) x, float64."""
        x = np.asarray(x, dtype=np.float64)
        matrix_x = x if x.ndim == 2 else x[:, None]
        if self.backend == "numpy":
            R = self.background
            far = 0.5 * (R @ (self.membership_T @ matrix_x) + (R.T @ matrix_x)[self.cells])
            product = far - self.self_loops[:, None] * matrix_x + self.symmetric @ matrix_x
            return product if x.ndim == 2 else product[:, 0]
        u = torch.as_tensor(np.ascontiguousarray(matrix_x), device=self.device)
        product = self._torch_adjacency_product(u).cpu().numpy()
        return product if x.ndim == 2 else product[:, 0]

    def _torch_adjacency_product(self, u: torch.Tensor) -> torch.Tensor:
        """W u for (N, k) float64 u on the device (the torch backend)."""
        t = self._torch
        per_cell = torch.zeros((self.n_cells, u.shape[1]), dtype=torch.float64, device=self.device)
        per_cell.index_add_(0, t["cells"], u)
        R = t["background"]
        far = 0.5 * (R @ per_cell + (R.T @ u)[t["cells"]])
        return far - t["self_loops"][:, None] * u + t["matrix"] @ u

    def matmat(self, x: np.ndarray) -> np.ndarray:
        """D^-1/2 W D^-1/2 x for (N,) or (N, k) x, float64."""
        x = np.asarray(x, dtype=np.float64)
        self.n_products += 1 if x.ndim == 1 else x.shape[1]
        scale = self.scale if x.ndim == 1 else self.scale[:, None]
        return scale * self.adjacency_product(scale * x)

    def tensor_matmat(self, x: torch.Tensor) -> torch.Tensor:
        """D^-1/2 W D^-1/2 x for (N, k) float64 x, a tensor on the operator's device (what
        ``eigensolvers.leading_eigenvectors`` applies; with the torch backend nothing leaves the device)."""
        if self.backend == "numpy":
            return torch.from_numpy(self.matmat(x.cpu().numpy())).to(x.device)
        self.n_products += x.shape[1]
        scale = self._torch.setdefault("scale", torch.as_tensor(self.scale, device=self.device)[:, None])
        return scale * self._torch_adjacency_product(scale * x)

    def as_linear_operator(self) -> LinearOperator:
        return LinearOperator((self.n, self.n), matvec=self.matmat, matmat=self.matmat, dtype=np.float64)


def sparse_spectral_labels(
    affinity: SparseAffinity,
    n_clusters: int,
    random_state: int,
    eigensolver: str = "lanczos",
    device: str | torch.device | None = "cpu",
    tol: float = 1e-8,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Spectral clustering of a ``SparseAffinity``, as ``spectral_labels`` does on a dense matrix.

    Same conventions as the dense ``rdx.methods.rdx.spectral_labels``: symmetrise, zero diagonal, the
    leading ``n_clusters`` eigenvectors of the normalised adjacency, embedding = vectors * D^-1/2, and
    k-means (10 initialisations) with one ``RandomState(random_state)`` that first draws the Lanczos start
    vector, so with equal graphs the labels are equal.

    Args:
        affinity: the direction's affinity model (``SparseAffinity``).
        eigensolver: "lanczos" (ARPACK ``eigsh`` on the operator), "lobpcg" (scipy, block solver) or
            "block_lanczos" (``eigensolvers.leading_eigenvectors``, on the operator's device).
        tol: eigensolver tolerance (relative residual).

    Returns:
        (labels (N,) int64, {"eigensolver", "eigenvalues", "operator_products", "residual"}).
    """
    if eigensolver not in EIGENSOLVERS:
        raise ValueError(f"unknown eigensolver {eigensolver!r}; choose one of {list(EIGENSOLVERS)}")
    operator = BackgroundOperator(affinity, device)
    n = operator.n
    generator = np.random.RandomState(random_state)
    start = generator.uniform(-1, 1, n)
    if n_clusters >= n - 1 or eigensolver == "lanczos":
        from rdx.methods.rdx import leading_eigenpairs  # here: rdx imports this module

        values, vectors = leading_eigenpairs(operator.as_linear_operator(), n_clusters, start, tol)
    elif eigensolver == "block_lanczos":
        # the torch solver on the operator's device (products, basis and Ritz vectors stay there); its
        # start block begins with ARPACK's start vector, so the generator stays in step for k-means
        block = start_block(n, block_size(n_clusters), start, random_state)
        found = leading_eigenvectors(
            operator.tensor_matmat,
            n,
            n_clusters,
            torch.from_numpy(block).to(operator.device),
            tol=tol,
        )
        values, vectors = found.values.cpu().numpy(), found.vectors.cpu().numpy()
    else:
        # a block wider than needed converges faster; its own seeded start, so the generator above
        # stays in step with the dense path for k-means
        width = min(n_clusters + 2, n - 1)
        initial = np.random.default_rng(random_state).standard_normal((n, width))
        initial[:, 0] = np.sqrt(operator.degree)  # close to the leading eigenvector
        values, vectors = lobpcg(operator.as_linear_operator(), initial, largest=True, tol=tol, maxiter=500)
        order = np.argsort(values)[-n_clusters:]
        values, vectors = values[order], vectors[:, order]
    residual = operator.matmat(vectors) - vectors * values
    info = {
        "eigensolver": eigensolver,
        "eigenvalues": [float(v) for v in values],
        "operator_products": int(operator.n_products),
        "residual": float(np.linalg.norm(residual, axis=0).max()),
    }
    embedding = vectors * operator.scale[:, None]
    _, labels, _ = k_means(embedding, n_clusters, random_state=generator, n_init=10)
    return labels.astype(np.int64), info


# ------------------------------------------------------------------------------------------------
# the sparse path's graph of both directions
# ------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class SparseGraph:
    """The sparse path as ``rdx.methods.rdx.DifferenceGraph``: per difference, joint cells, the union
    of both top-K graphs with both ranks and the far field (``union_neighbour_ranks``), D_10 on the union
    pairs; per direction a ``SparseAffinity`` and spectral clustering of it (``sparse_spectral_labels``).

    The parameters are ``RDX``'s of the same names (``gamma`` the resolved temperature, ``n_clusters``
    the clusters per direction); ``features`` ({"A": (N, d_A), "B": (N, d_B)}) are the explained
    models' features, for the grids of large clusters.
    """

    features: dict[str, np.ndarray] = field(repr=False)
    n_neighbors: int
    rank_estimate: str
    rank_sample_size: int
    background_cells: int | None
    eigensolver: str
    gamma: float
    beta: float
    n_clusters: int
    dtype: str
    device: str
    random_state: int
    differences: dict[str, tuple[sp.csr_matrix, float]] = field(default_factory=dict, init=False, repr=False)
    unions: dict[str, UnionRanks] = field(default_factory=dict, init=False, repr=False)
    cells: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)
    affinities: dict[str, SparseAffinity] = field(default_factory=dict, init=False, repr=False)
    spectral: dict[str, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)

    def add_difference(self, X_A: np.ndarray, X_B: np.ndarray, directions: tuple[str, ...]) -> None:
        """D_10 of one pair on the union of its two top-K graphs, (N, N) CSR; the union's ranks and
        cells are kept for the directions (their grids' neighbour lists and far field)."""
        n_cells = self.background_cells or default_cells(X_A.shape[0])
        cells = joint_cells(X_A, X_B, n_cells, random_state=self.random_state, device=self.device)
        union = union_neighbour_ranks(
            X_A,
            X_B,
            n_neighbors=self.n_neighbors,
            rank_estimate=self.rank_estimate,
            sample_size=self.rank_sample_size,
            far_field=FarField(cells, self.gamma, self.beta),
            dtype=self.dtype,
            device=self.device,
            random_state=self.random_state,
        )
        components, _ = union_graph_components(union)
        union.info["union_components"] = int(components)
        if components > 1:
            log.warning(
                "RDX sparse path: the union of the two %d-neighbour graphs has %d connected components; "
                "images in different components are linked only through the far-field model (mean "
                "affinities between cells), so clusters tend to follow the components. Raise "
                "n_neighbors to connect them.",
                union.n_neighbors,
                components,
            )
        difference = sparse_locally_biased_difference(union, self.gamma)
        for direction in directions:
            self.differences[direction] = (difference, 1.0 if direction == "10" else -1.0)
            self.unions[direction], self.cells[direction] = union, cells

    def has_difference(self) -> bool:
        return any(np.any(matrix.data) for matrix, _ in self.differences.values())

    def cluster(self, direction: str) -> np.ndarray:
        labels, self.spectral[direction] = sparse_spectral_labels(
            self.affinity_block(direction),
            self.n_clusters,
            self.random_state,
            eigensolver=self.eigensolver,
            device=self.device,
        )
        return labels

    def affinity_block(self, direction: str) -> SparseAffinity:
        """The direction's ``SparseAffinity`` (built once)."""
        if direction not in self.affinities:
            matrix, sign = self.differences[direction]
            side = DIRECTION_TO_SIDE[direction]
            union = self.unions[direction]
            # unaligned, D_01 = -D_10 on the same pairs; aligned, each direction has its own D_10 and
            # takes the background of its sign
            self.affinities[direction] = SparseAffinity(
                matrix,
                self.beta,
                sign,
                cells=self.cells[direction],
                background=union.background["10" if sign > 0 else "01"],
                neighbours=union.neighbours_B if side == "B" else union.neighbours_A,
                features=self.features[side],
            )
        return self.affinities[direction]

    def difference_graph(self, direction: str) -> sp.csr_matrix:
        matrix, sign = self.differences[direction]
        return (matrix * sign).tocsr()

    def difference_matrix(self, direction: str) -> np.ndarray:
        """Dense, with far pairs at 0 (only for N that fits)."""
        return self.difference_graph(direction).toarray()

    def affinity_matrix(self, direction: str) -> np.ndarray:
        """Dense, far pairs from the far-field model (only for N that fits)."""
        everyone = np.arange(self.differences[direction][0].shape[0])
        return self.affinity_block(direction)(everyone, everyone)

    def info(self) -> dict[str, Any]:
        """{"sparse": the union graph per difference ("both" when the directions share one) and the
        eigensolver's record per direction}."""
        graphs = {}
        for direction, union in self.unions.items():
            key = "both" if self.unions.get("10") is self.unions.get("01") else direction
            graphs.setdefault(key, dict(union.info))
        return {"sparse": {"graphs": graphs, "spectral": dict(self.spectral)}}


# ------------------------------------------------------------------------------------------------
# choosing the path
# ------------------------------------------------------------------------------------------------

AUTO_EXACT_MAX_N = (
    20000  # on the CPU, above this the exact path is slow (O(N^2 log N) sorts) even where it fits
)
EXACT_MATRICES = 4.5  # peak of the exact path in N x N matrices of 4 bytes (measured 3.0-4.0 at N = 20,000)
# On a GPU the exact path holds the difference and one direction's graph (N x N each) and row blocks of
# at most DEFAULT_BLOCK_BYTES beside them; the third matrix is headroom (allocator, the grids' blocks).
DEVICE_EXACT_MATRICES = 3.0
DEVICE_MEMORY_FRACTION = 0.9  # of the free GPU memory the auto choice plans to use
EXACT_OVERHEAD_BYTES = 1.0 * 1024**3  # imports, features, the eigensolver's vectors


def exact_path_peak_bytes(n: int, dtype: str = "float32", device_type: str = "cpu") -> float:
    """Estimated peak memory of the exact path on N images (bytes), in host memory on the CPU
    (``EXACT_MATRICES`` N x N matrices) or in the GPU's memory (``DEVICE_EXACT_MATRICES``), of ``dtype``
    (rank matrices are int32 whatever the dtype), plus a fixed overhead."""
    item = np.dtype(dtype).itemsize
    matrices = EXACT_MATRICES if device_type == "cpu" else DEVICE_EXACT_MATRICES
    return matrices * n * n * max(item, 4) + EXACT_OVERHEAD_BYTES


def device_memory_bytes(device: torch.device) -> float:
    """Memory the auto choice may plan for on a GPU: ``DEVICE_MEMORY_FRACTION`` of its free memory now."""
    free, _ = torch.cuda.mem_get_info(device)
    return DEVICE_MEMORY_FRACTION * float(free)


def available_memory_bytes() -> float:
    """Memory this process can still use: MemAvailable of /proc/meminfo (Linux), else total RAM / 2."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) / 2
    except (ValueError, OSError, AttributeError):
        return float("inf")
