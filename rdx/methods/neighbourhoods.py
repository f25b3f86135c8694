"""Distances, neighbour ranks and the other per-model dissimilarities RDX compares.

Heavy work runs in torch (CUDA when present, CPU otherwise) in row blocks, so the peak memory stays a
small multiple of one N x N matrix; results come back as numpy arrays. Each function states shapes.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from rdx.devices import resolve_device
from rdx.methods.eigensolvers import single_thread

# Rows per block are chosen so one block's temporaries (distances, sort keys, int64 sort indices) stay
# under this many bytes.
DEFAULT_BLOCK_BYTES = 256 * 1024**2
# On the CPU count_below makes one pass over a row block per threshold up to this many thresholds (a
# dozen neighbours' ranks), and bins keys among sorted thresholds beyond it (the histogram costs about as
# much as ~60-100 passes on 2 CPU cores).
PASSES_MAX_THRESHOLDS = 64
SIMILARITIES = ("neighborhood", "max_normalized_distance", "zp_local_scaling")
BLOCK_ELEMENTS = 1 << 21  # float64 temporaries per block of the grids' member distances (16 MB)
PAIR_BLOCK_ELEMENTS = 1 << 16  # float64 entries per gathered block of the grids' candidate pairs (512 KB)
NEAREST_KEPT = 64  # nearest neighbours per image the exact path keeps from its rank pass for the grids


def torch_dtype(dtype: str | np.dtype | type) -> torch.dtype:
    name = np.dtype(dtype).name
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {name}")
    return torch.float32 if name == "float32" else torch.float64


def row_blocks(n_rows: int, n_cols: int, bytes_per_entry: int, block_bytes: int) -> Iterator[slice]:
    """Consecutive row slices whose (rows x n_cols x bytes_per_entry) fits in ``block_bytes``."""
    rows = max(1, block_bytes // max(1, n_cols * bytes_per_entry))
    for start in range(0, n_rows, rows):
        yield slice(start, min(start + rows, n_rows))


def centred_features(
    X: np.ndarray, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features shifted by their column means rounded to integers, and their squared norms.

    The shift keeps |x|^2 + |y|^2 - 2 x.y well conditioned for data far from the origin (distances are
    translation invariant); rounding it keeps exact data exact, so exactly tied distances (integer or
    quantised features) stay tied and are broken by index.
    """
    features = torch.tensor(np.asarray(X), dtype=dtype, device=device)  # a copy, converted once
    features -= torch.round(features.mean(dim=0, keepdim=True))
    return features, (features * features).sum(dim=1)


def _squared_distance_block(
    features: torch.Tensor,
    squared_norms: torch.Tensor,
    rows: slice,
    out: torch.Tensor | None = None,
    scratch: torch.Tensor | None = None,
    clamp: bool = True,
) -> torch.Tensor:
    """Squared distances of the points in ``rows`` to all points, (rows, N), clamped at 0: the rounded
    (|x_i|^2 + |x_j|^2) - 2 x_i . x_j, worked in the product's memory (-2 x.y is exact, and adding it is
    subtracting 2 x.y); ``out`` and ``scratch`` (rows, N) are used instead of new memory when given.
    Without ``clamp`` rounding may leave small negative values (``_order_of_rows`` clamps its keys)."""
    block = torch.matmul(features[rows], features.T, out=out)
    norm_sums = torch.add(squared_norms[rows, None], squared_norms[None, :], out=scratch)
    block = torch.add(norm_sums, block, alpha=-2.0, out=block)  # one rounding, as adding -2 x.y
    if clamp:
        block.clamp_(min=0.0)
    local = torch.arange(block.shape[0], device=block.device)
    block[local, local + rows.start] = 0.0
    return block


def neighbour_keys(features: torch.Tensor, squared_norms: torch.Tensor, rows: slice) -> torch.Tensor:
    """Sort keys of the rows' neighbours, (b, N): |x_j|^2 - 2 x_i . x_j, i.e. the squared distance less
    the row's own constant |x_i|^2, so within a row they order images exactly as distances do; the
    image itself gets -inf (first, even among duplicates).

    One matrix multiply that adds the column norms (``addmm``) and no other pass over the block: the
    neighbour search is memory-bound on the CPU apart from the multiply.
    """
    keys = torch.addmm(squared_norms[None, :], features[rows], features.T, alpha=-2.0)
    local = torch.arange(keys.shape[0], device=keys.device)
    keys[local, local + rows.start] = -torch.inf
    return keys


def top_neighbours(keys: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` smallest keys of each row, as column indices ordered by (key, index): the first
    ``count`` entries of a stable argsort, self first. (b, count) int64."""
    n = keys.shape[1]
    take = min(count + 1, n)
    values, index = torch.topk(keys, take, dim=1, largest=False, sorted=True)
    # order the selection by (key, index): topk does not promise an order among equal keys
    by_index = torch.argsort(index, dim=1)
    values, index = values.gather(1, by_index), index.gather(1, by_index)
    by_key = torch.argsort(values, dim=1, stable=True)
    values, index = values.gather(1, by_key), index.gather(1, by_key)
    if take > count:
        # a tie straddling the cut: which tied images are in must follow the index order, as a stable
        # sort would; such rows (rare) are redone with a full stable sort
        straddling = torch.nonzero(values[:, count - 1] == values[:, count]).flatten()
        if len(straddling):
            full = torch.argsort(keys[straddling], dim=1, stable=True)[:, :count]
            index[straddling, :count] = full
    return index[:, :count]


def count_below(keys: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """#{k : key[i, k] < threshold[i, t]} for every row i and threshold t, exactly; (b, t) int64.

    Exactly tied keys count as not below (the exact path would order them by index). On the CPU with
    at most ``PASSES_MAX_THRESHOLDS`` thresholds: one numpy comparison pass over the block per
    threshold. Otherwise one binary search of each key among its row's sorted thresholds and a
    histogram, O(N log t) per row. Both count exactly; the choice is speed only.
    """
    if keys.device.type == "cpu" and thresholds.shape[1] <= PASSES_MAX_THRESHOLDS:
        return _count_below_by_passes(keys, thresholds)
    sorted_thresholds, order = torch.sort(thresholds, dim=1)
    # p_k = #{t <= key_k}; key_k < t_j  <=>  j >= p_k (0-based, ascending thresholds)
    bucket = torch.searchsorted(sorted_thresholds, keys, right=True)
    rows, width = thresholds.shape[0], thresholds.shape[1] + 1
    bucket += torch.arange(rows, device=bucket.device)[:, None] * width  # one histogram per row
    histogram = torch.bincount(bucket.view(-1), minlength=rows * width).view(rows, width)
    below_sorted = torch.cumsum(histogram, dim=1)[:, :-1]
    below = torch.empty_like(below_sorted)
    below.scatter_(1, order, below_sorted)
    return below


def _count_below_by_passes(keys: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """``count_below`` for CPU tensors, one threshold at a time: numpy's comparison into a reused
    boolean buffer and its ``count_nonzero`` are several times faster on the CPU than torch's batched
    searchsorted or its boolean sums (measured: 12 thresholds over 838 x 20,000 keys in 0.13 s against
    0.5-0.7 s)."""
    key_array = keys.numpy()
    threshold_array = thresholds.numpy()
    below = np.empty(key_array.shape, dtype=bool)
    counts = np.empty(threshold_array.shape, dtype=np.int64)
    for column in range(threshold_array.shape[1]):
        np.less(key_array, threshold_array[:, column : column + 1], out=below)
        counts[:, column] = np.count_nonzero(below, axis=1)
    return torch.from_numpy(counts)


def pairwise_distances(
    X: np.ndarray,
    dtype: str | type = "float64",
    device: str | torch.device | None = "auto",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> np.ndarray:
    """Euclidean distances between all rows of X by matrix multiplication, in row blocks.

    Args:
        X: (N, d) points.
        dtype: float32 (fast) or float64 (exact to ~1e-12).
        device: torch device for the computation; the result is a numpy array.

    Returns:
        (N, N) distances, exactly 0 on the diagonal and exactly symmetric.
    """
    return pairwise_distance_tensor(X, dtype, device, block_bytes).cpu().numpy()


def pairwise_distance_tensor(
    X: np.ndarray,
    dtype: str | type = "float64",
    device: str | torch.device | None = "auto",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> torch.Tensor:
    """``pairwise_distances`` as an (N, N) tensor left on ``device``."""
    device = resolve_device(device)
    features, squared_norms = centred_features(X, torch_dtype(dtype), device)
    n = features.shape[0]
    out = torch.empty((n, n), dtype=features.dtype, device=device)
    for rows in row_blocks(n, n, 8, block_bytes):
        out[rows] = _squared_distance_block(features, squared_norms, rows).sqrt_()
    return symmetrise_in_place(out)


@dataclass
class NeighbourLists:
    """Each image's nearest other images in one model, kept from the rank pass: what the grids need to
    find a cluster member's nearest members without a |C| x |C| distance matrix (``nearest_members``).

    Attributes:
        indices: (N, L) int64, each row's L nearest other images, nearest first (ties by index).
        keys: (N, L) their squared distances as the rank pass computed them (its dtype).
        error: (N,) float64, a bound on |key - exact squared distance| for every key of the row.
    """

    indices: torch.Tensor
    keys: torch.Tensor
    error: torch.Tensor

    def nearest_members(self, features: np.ndarray, members: np.ndarray, size: int) -> np.ndarray:
        """Each member's ``size`` nearest members (itself first, then by float64 distance, ties by
        index), as global indices (|C|, size) in the order of ``members``: the same as
        ``grids.nearest_members`` on ``features[members]``.

        A member's list screens its candidates: the listed members whose key is within twice the keys'
        and the float64 distances' error bounds of the (size - 1)-th listed member's key. Only their
        float64 distances are computed, in the members' frame as ``grids.nearest_members`` does; a
        member whose list holds too few members, or whose margin runs past its list, gets its float64
        distances to every member. So the result is exact; the work is O(|C| x L) plus the fallbacks.
        """
        device = self.indices.device
        members = np.asarray(members, dtype=np.int64)
        m, n = len(members), self.indices.shape[0]
        size = min(size, m)
        points, norms = centred_features(features[members], torch.float64, device)
        local = torch.arange(m, device=device)
        nearest = local[:, None].repeat(1, size)
        need = size - 1  # nearest members besides the member itself
        if need > 0:
            member_index = torch.as_tensor(members, device=device)
            local_of = torch.full((n,), -1, dtype=torch.int64, device=device)
            local_of[member_index] = local
            listed = local_of[self.indices[member_index]]  # (m, L) local index, -1 for non-members
            keys = self.keys[member_index].to(torch.float64)
            count = (listed >= 0).cumsum(dim=1)
            position = (count < need).sum(dim=1).clamp_(max=keys.shape[1] - 1)
            kth = keys.gather(1, position[:, None])[:, 0]
            distance_error = float(_squared_distance_error(points.shape[1], torch.float64)) * (
                norms + norms.max()
            )
            threshold = kth + 2.0 * (self.error[member_index] + distance_error)
            screened = (count[:, -1] >= need) & (keys[:, -1] > threshold)
            rows = torch.nonzero(screened).flatten()
            candidates = torch.where(
                (listed[rows] >= 0) & (keys[rows] <= threshold[rows, None]), listed[rows], -1
            )
            if len(rows):
                nearest[rows, 1:] = _nearest_candidates(points, norms, rows, candidates, need)
            rest = torch.nonzero(~screened).flatten()
            chunk = max(1, BLOCK_ELEMENTS // m)
            for start in range(0, len(rest), chunk):
                anchors = rest[start : start + chunk]
                block = norms[anchors, None] + norms[None, :] - 2.0 * (points[anchors] @ points.T)
                block.clamp_(min=0.0).sqrt_()
                block[torch.arange(len(anchors), device=device), anchors] = -torch.inf  # itself first
                nearest[anchors] = top_neighbours(block, size)
        return members[nearest.cpu().numpy()]


def _squared_distance_error(dimension: int, dtype: torch.dtype) -> float:
    """c with |computed - exact squared distance| <= c (|x_i|^2 + |x_j|^2) for |x_i|^2 + |x_j|^2 -
    2 x_i . x_j in ``dtype`` with d-term dot products (the worst-case bound of a d-term sum, d u, with
    room for the norms, the additions and the centring)."""
    return 4.0 * (dimension + 8) * float(torch.finfo(dtype).eps)


def _nearest_candidates(
    points: torch.Tensor, norms: torch.Tensor, rows: torch.Tensor, candidates: torch.Tensor, need: int
) -> torch.Tensor:
    """For anchors ``rows`` (s,) and their candidate members (s, L) (local indices, -1 for none), the
    ``need`` nearest candidates by float64 distance, ties by index: (s, need) local indices."""
    absent = torch.iinfo(torch.int64).max
    in_order = torch.sort(torch.where(candidates >= 0, candidates, absent), dim=1).values
    width = int((candidates >= 0).sum(dim=1).max())
    in_order = in_order[:, :width]  # each row's candidates in index order, padding last
    pair_rows, pair_columns = torch.nonzero(in_order != absent, as_tuple=True)
    anchors, others = rows[pair_rows], in_order[pair_rows, pair_columns]
    dots = torch.empty(len(anchors), dtype=torch.float64, device=points.device)
    # the pairs' points gathered into two buffers of PAIR_BLOCK_ELEMENTS reused from chunk to chunk: they
    # stay in cache between the gathers, the product and the sum (measured 2x faster than 16 MB chunks)
    chunk = max(1, PAIR_BLOCK_ELEMENTS // points.shape[1])
    left, right = torch.empty(
        (2, min(chunk, len(anchors)), points.shape[1]), dtype=points.dtype, device=points.device
    )
    for start in range(0, len(anchors), chunk):
        part = slice(start, start + chunk)
        size = len(anchors[part])
        torch.index_select(points, 0, anchors[part], out=left[:size])
        torch.index_select(points, 0, others[part], out=right[:size])
        torch.sum(left[:size].mul_(right[:size]), dim=1, out=dots[part])
    distances = torch.full(in_order.shape, torch.inf, dtype=torch.float64, device=points.device)
    squared = norms[anchors] + norms[others] - 2.0 * dots
    distances[pair_rows, pair_columns] = squared.clamp_(min=0.0).sqrt_()
    order = torch.argsort(distances, dim=1, stable=True)[:, :need]
    return in_order.gather(1, order)


class NeighbourRanker:
    """Rows of one model's neighbour-rank matrix, block by block, on the torch device.

    ``ranker(rows)`` is R[rows], a (len(rows), N) int32 tensor on the device: R[i, j] is the 0-based
    position of j in i's neighbour list by Euclidean distance; R[i, i] = 0 even among duplicate points;
    ties are broken by index. One matrix multiply and one sort per block (``_order_of_rows``), inverted
    by a scatter; the N x N distance matrix is never held. With ``keep`` > 0 the ranker also fills
    ``lists`` (``NeighbourLists``) with each row's ``keep`` nearest others as the rows are ranked. Two
    rankers that take turns may share one ``workspace`` (an empty dict), so one set of block memory
    serves both.
    """

    def __init__(
        self,
        X: np.ndarray,
        dtype: str | type = "float32",
        device: str | torch.device | None = "auto",
        keep: int = 0,
        workspace: dict[str, torch.Tensor] | None = None,
    ) -> None:
        device = resolve_device(device)
        self.features, self.squared_norms = centred_features(X, torch_dtype(dtype), device)
        n = self.features.shape[0]
        self.positions = torch.arange(n, device=device, dtype=torch.int32)
        # the block's keys and sort keys: memory of this ranker's own, or shared with rankers of the
        # same N, dtype and device that run one at a time (a dict, filled on first use)
        self._work = {} if workspace is None else workspace
        self.lists: NeighbourLists | None = None
        keep = min(keep, n - 1)
        if keep > 0:
            error = _squared_distance_error(self.features.shape[1], self.features.dtype)
            self.lists = NeighbourLists(
                indices=torch.empty((n, keep), dtype=torch.int64, device=device),
                keys=torch.empty((n, keep), dtype=self.features.dtype, device=device),
                error=error * (self.squared_norms.to(torch.float64) + float(self.squared_norms.max())),
            )

    def __call__(self, rows: slice, out: torch.Tensor | None = None) -> torch.Tensor:
        """R[rows] (b, N) int32, in ``out`` when given. The block's keys and sort keys live in memory
        the ranker reuses from block to block (fresh block-sized memory costs page faults every time);
        pass ``out`` to do the same for the ranks."""
        b, n = rows.stop - rows.start, self.features.shape[0]
        if not self._work or self._work["keys"].shape[0] < b:
            self._work.update(
                keys=torch.empty((b, n), dtype=self.features.dtype, device=self.features.device),
                scratch=torch.empty((b, n), dtype=self.features.dtype, device=self.features.device),
                packed=torch.empty((b, n), dtype=torch.int64, device=self.features.device),
            )
        work = {name: buffer[:b] for name, buffer in self._work.items()}
        keys = _squared_distance_block(
            self.features, self.squared_norms, rows, out=work["keys"], scratch=work["scratch"], clamp=False
        )
        nearest = None if self.lists is None else (self.lists.indices[rows], self.lists.keys[rows])
        order = _order_of_rows(keys, rows, nearest, out=work["packed"])
        block_ranks = out if out is not None else torch.empty((b, n), dtype=torch.int32, device=keys.device)
        block_ranks.scatter_(1, order, self.positions.expand(b, -1))
        return block_ranks


def neighbour_ranks_from_features(
    X: np.ndarray,
    dtype: str | type = "float32",
    device: str | torch.device | None = "auto",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> np.ndarray:
    """Neighbour ranks straight from features, never holding the N x N distance matrix.

    R[i, j] is the 0-based position of j in i's neighbour list by Euclidean distance; R[i, i] = 0 even
    among duplicate points; ties are broken by index (``NeighbourRanker``).

    Returns:
        (N, N) int32 ranks; each row is a permutation of 0..N-1.
    """
    device = resolve_device(device)
    rank_rows = NeighbourRanker(X, dtype, device)
    n = X.shape[0]
    ranks = np.empty((n, n), dtype=np.int32)
    on_cpu = device.type == "cpu"
    for rows in row_blocks(n, n, ROW_BYTES_PER_ENTRY, block_bytes):
        # scatter straight into the result's memory on the CPU; copy back from a GPU
        if on_cpu:
            rank_rows(rows, out=torch.from_numpy(ranks[rows]))
        else:
            ranks[rows] = rank_rows(rows).cpu().numpy()
    return ranks


# bytes per entry of a row block while its ranks are made: keys (4), packed keys (8), ranks (4)
ROW_BYTES_PER_ENTRY = 4 + 8 + 4


def _ranks_of_block(
    keys: torch.Tensor, rows: slice, positions: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Ranks within each row of a block of non-negative sort keys (rows = the block's global rows);
    ``keys`` is used up."""
    order = _order_of_rows(keys, rows)
    block_ranks = out if out is not None else torch.empty(keys.shape, dtype=torch.int32, device=keys.device)
    block_ranks.scatter_(1, order, positions.expand(keys.shape[0], -1))
    return block_ranks


def _order_of_rows(
    keys: torch.Tensor,
    rows: slice,
    nearest: tuple[torch.Tensor, torch.Tensor] | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Each row's columns in ascending key order, the row's own point first, ties by index: (b, N)
    int64, what a stable argsort gives. ``keys`` (b, N) are used up; negative keys (squared distances
    rounded below 0) count as 0. With ``nearest`` = (indices (b, L), keys (b, L)), each row's L nearest
    other columns and their keys are written there; ``out`` (b, N) int64 is used instead of new memory
    for float32 keys.

    Non-negative IEEE floats order like their bit patterns read as integers. A float32 key and its
    column fit together in one int64, ((key bits + 1) << c) | column with c = bits of N - 1, with the
    own point at (0 << c) | column: these are distinct, so a plain (unstable) sort of them gives the
    stable order, and an integer sort of values alone is several times faster than a stable argsort
    (numpy's vectorised sort on the CPU, measured 0.27 s against torch's stable argsort 1.5 s for
    5,000 x 5,000). float64 keys leave no room for the column: stable argsort of their bit patterns.
    """
    # negative keys and -0.0 -> +0.0 (they read as negative integers), so the integer view orders every
    # key correctly: the clamp at 0 in one integer pass
    integer_keys = keys.view(torch.int64 if keys.dtype == torch.float64 else torch.int32).clamp_(min=0)
    n = keys.shape[1]
    local = torch.arange(keys.shape[0], device=keys.device)
    own = local + rows.start
    if keys.dtype == torch.float64:
        integer_keys[local, own] = -1  # its own nearest neighbour, even among duplicates
        order = torch.argsort(integer_keys, dim=1, stable=True)
        if nearest is not None:
            head = order[:, 1 : nearest[0].shape[1] + 1]
            nearest[0].copy_(head)
            nearest[1].copy_(integer_keys.gather(1, head).view(torch.float64))
        return order
    shift = max(1, (n - 1).bit_length())
    if shift > 32:
        raise ValueError(f"N = {n} is too large for packed sort keys (at most 2^32 images)")
    # ((key bits + 1) << c) | column in int64: a widening copy, then one multiply-add (two plain passes are
    # faster on the CPU than one mixed-type add)
    packed = integer_keys.to(torch.int64) if out is None else out.copy_(integer_keys)
    codes = torch.arange(1 << shift, (1 << shift) + n, device=keys.device)
    torch.add(codes, packed, alpha=1 << shift, out=packed)
    packed[local, own] = own
    sort_rows_in_place(packed)
    if nearest is not None:
        head = packed[:, 1 : nearest[0].shape[1] + 1]
        nearest[0].copy_(head.bitwise_and((1 << shift) - 1))
        nearest[1].copy_(head.bitwise_right_shift(shift).sub_(1).to(torch.int32).view(torch.float32))
    return packed.bitwise_and_((1 << shift) - 1)


def sort_rows_in_place(values: torch.Tensor) -> None:
    """Sort each row of an int64 tensor ascending, in place: numpy's vectorised sort on the CPU (in
    threads over rows; numpy releases the GIL while sorting), torch's sort elsewhere."""
    if values.device.type != "cpu":
        values.copy_(torch.sort(values, dim=1).values)
        return
    array = values.numpy()
    threads = max(1, min(torch.get_num_threads(), array.shape[0]))
    if threads == 1:
        array.sort(axis=1)
        return
    bounds = np.linspace(0, array.shape[0], threads + 1).astype(int)
    parts = [array[start:stop] for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
    list(_sort_pool(threads).map(lambda part: part.sort(axis=1), parts))


@functools.cache
def _sort_pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rdx-sort")


def distance_rows(
    X: np.ndarray,
    rows: np.ndarray,
    dtype: str | type = "float64",
    device: str | torch.device | None = "cpu",
) -> np.ndarray:
    """Distances from the points ``rows`` to all points, (len(rows), N); 0 at each point itself."""
    device = resolve_device(device)
    features, squared_norms = centred_features(X, torch_dtype(dtype), device)
    index = torch.as_tensor(np.asarray(rows, dtype=np.int64), device=device)
    block = squared_norms[index, None] + squared_norms[None, :] - 2.0 * (features[index] @ features.T)
    block.clamp_(min=0.0)
    block[torch.arange(len(index), device=device), index] = 0.0
    return block.sqrt_().cpu().numpy()


def neighbour_ranks_of_rows(
    X: np.ndarray,
    rows: np.ndarray,
    dtype: str | type = "float64",
    device: str | torch.device | None = "cpu",
) -> np.ndarray:
    """Rows of the neighbour-rank matrix for the points ``rows`` only, (len(rows), N) int32.

    Same convention as ``neighbour_ranks_from_features`` (self first, ties by index), without the
    N x N matrix: what metrics need for a 9-image grid.
    """
    keys = torch.from_numpy(distance_rows(X, rows, dtype, device)).to(torch.float64)
    rows = np.asarray(rows, dtype=np.int64)
    keys[torch.arange(len(rows)), torch.from_numpy(rows)] = -torch.inf  # self first
    order = torch.argsort(keys, dim=1, stable=True)
    ranks = torch.empty(keys.shape, dtype=torch.int32)
    ranks.scatter_(1, order, torch.arange(keys.shape[1], dtype=torch.int32).expand(keys.shape[0], -1))
    return ranks.numpy()


def max_pairwise_distance(
    X: np.ndarray,
    dtype: str | type = "float64",
    device: str | torch.device | None = "auto",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> float:
    """The largest distance between any two points, in row blocks (no N x N matrix)."""
    device = resolve_device(device)
    features, squared_norms = centred_features(X, torch_dtype(dtype), device)
    n = features.shape[0]
    largest = 0.0
    for rows in row_blocks(n, n, 8, block_bytes):
        largest = max(largest, float(_squared_distance_block(features, squared_norms, rows).max()))
    return largest**0.5


def neighbour_ranks(distances: np.ndarray, block_bytes: int = DEFAULT_BLOCK_BYTES) -> np.ndarray:
    """Neighbour ranks from a given (N, N) distance matrix (same convention as above).

    Returns:
        (N, N) int32 ranks.
    """
    n = distances.shape[0]
    if distances.shape != (n, n):
        raise ValueError(f"distances must be square, got shape {distances.shape}")
    if np.any(distances < 0):
        raise ValueError("distances must be non-negative")
    ranks = np.empty((n, n), dtype=np.int32)
    positions = torch.arange(n, dtype=torch.int32)
    for rows in row_blocks(n, n, 8 + 8 + 4, block_bytes):
        keys = torch.from_numpy(np.array(distances[rows], dtype=np.float64))
        _ranks_of_block(keys, rows, positions, out=torch.from_numpy(ranks[rows]))
    return ranks


def local_scales(distances: np.ndarray, neighbour: int = 7) -> np.ndarray:
    """Zelnik-Manor & Perona local scale: each point's distance to its ``neighbour``-th nearest other
    point (the 7th by default). Shape (N,). Needs N > neighbour."""
    n = distances.shape[0]
    if n <= neighbour:
        raise ValueError(f"local scaling with the {neighbour}th neighbour needs N > {neighbour}, got N={n}")
    keyed = np.array(distances, dtype=np.float64, copy=True)
    np.fill_diagonal(keyed, -np.inf)  # self first, so index `neighbour` is the neighbour-th other point
    return np.partition(keyed, neighbour, axis=1)[:, neighbour]


def similarity_matrices(
    X_A: np.ndarray,
    X_B: np.ndarray,
    kind: str = "neighborhood",
    dtype: str | type = "float32",
    device: str | torch.device | None = "auto",
    local_scaling_neighbour: int = 7,
    reference_compat: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """The per-model dissimilarities that RDX differences, (S_A, S_B), each (N, N).

    kind:
        "neighborhood": neighbour ranks (int32), the paper's method.
        "max_normalized_distance": E / max(E).
        "zp_local_scaling": E^2 / (sigma sigma^T) with sigma the 7th-neighbour distance. With
            ``reference_compat`` model B uses E_B * E_A / (sigma_B sigma_B^T), the public reference
            code's mix-up.
    """
    if kind == "neighborhood":
        return tuple(  # type: ignore[return-value]
            neighbour_ranks_from_features(X, dtype, device, block_bytes) for X in (X_A, X_B)
        )
    E_A = pairwise_distances(X_A, dtype, device, block_bytes)
    E_B = pairwise_distances(X_B, dtype, device, block_bytes)
    if kind == "max_normalized_distance":
        for E in (E_A, E_B):
            largest = E.max()
            if largest > 0:
                E /= largest
        return E_A, E_B
    if kind == "zp_local_scaling":
        sigma_A = local_scales(E_A, local_scaling_neighbour).astype(E_A.dtype)
        sigma_B = local_scales(E_B, local_scaling_neighbour).astype(E_B.dtype)
        for name, sigma in (("X_A", sigma_A), ("X_B", sigma_B)):
            if np.any(sigma <= 0):
                raise ValueError(
                    f"{name} has points whose {local_scaling_neighbour}th neighbour is at distance 0 "
                    "(duplicates); local scaling is undefined there"
                )
        if reference_compat:
            S_B = E_B * E_A
        else:
            S_B = np.square(E_B)
        S_B /= np.outer(sigma_B, sigma_B)
        S_A = np.square(E_A, out=E_A)
        S_A /= np.outer(sigma_A, sigma_A)
        return S_A, S_B
    raise ValueError(f"unknown similarity {kind!r}; choose one of {SIMILARITIES}")


def symmetrise_in_place(
    matrix: np.ndarray | torch.Tensor, block: int | None = None
) -> np.ndarray | torch.Tensor:
    """matrix <- (matrix + matrix^T) / 2 tile by tile, without an N x N temporary (an array or a
    tensor on any device; an array is worked through a tensor sharing its memory).

    On the CPU the tiles are small (256 rows and columns by default), so a tile and its transposed
    partner stay in cache, and they are worked on one thread (``single_thread``): one small
    multi-threaded operation per tile ends at a barrier that costs a time slice where other jobs hold
    the cores (measured at N = 5,000 with the exp pass before it: ~55 ms idle and ~85 ms beside two busy
    loops on one thread; multi-threaded, 256 and 512 tiles took 6.4 s and 1.7 s beside them). On a GPU
    the tiles are 8,192.
    """
    tensor = torch.from_numpy(matrix) if isinstance(matrix, np.ndarray) else matrix
    on_cpu = tensor.device.type == "cpu"
    block = block or (256 if on_cpu else 8192)
    n = tensor.shape[0]
    mean = torch.empty((min(block, n), min(block, n)), dtype=tensor.dtype, device=tensor.device)
    with single_thread() if on_cpu else contextlib.nullcontext():
        for i in range(0, n, block):
            rows = slice(i, min(i + block, n))
            for j in range(i, n, block):
                cols = slice(j, min(j + block, n))
                upper, lower = tensor[rows, cols], tensor[cols, rows]
                pair = torch.add(upper, lower.T, out=mean[: upper.shape[0], : upper.shape[1]]).div_(2)
                upper.copy_(pair)
                if j != i:
                    lower.copy_(pair.T)
    return matrix
