"""Distances, neighbour ranks and the other per-model dissimilarities RDX compares.

Heavy work runs in torch (CUDA when present, CPU otherwise) in row blocks, so the peak memory stays a
small multiple of one N x N matrix; results come back as numpy arrays. Each function states shapes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from rdx.devices import resolve_device

# Rows per block are chosen so one block's temporaries (distances, sort keys, int64 sort indices) stay
# under this many bytes.
DEFAULT_BLOCK_BYTES = 256 * 1024**2
# On the CPU count_below makes one pass over a row block per threshold up to this many thresholds (a
# dozen neighbours' ranks), and bins keys among sorted thresholds beyond it (the histogram costs about as
# much as ~60-100 passes on 2 CPU cores).
PASSES_MAX_THRESHOLDS = 64
SIMILARITIES = ("neighborhood", "max_normalized_distance", "zp_local_scaling")


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
    features = torch.tensor(np.array(X, copy=True), device=device).to(dtype)
    features -= torch.round(features.mean(dim=0, keepdim=True))
    return features, (features * features).sum(dim=1)


def _squared_distance_block(features: torch.Tensor, squared_norms: torch.Tensor, rows: slice) -> torch.Tensor:
    """Squared distances of the points in ``rows`` to all points, (rows, N), clamped at 0."""
    block = squared_norms[rows, None] + squared_norms[None, :] - 2.0 * (features[rows] @ features.T)
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
    device = resolve_device(device)
    features, squared_norms = centred_features(X, torch_dtype(dtype), device)
    n = features.shape[0]
    out = np.empty((n, n), dtype=np.dtype(dtype))
    for rows in row_blocks(n, n, 8, block_bytes):
        out[rows] = _squared_distance_block(features, squared_norms, rows).sqrt_().cpu().numpy()
    symmetrise_in_place(out)
    return out


def neighbour_ranks_from_features(
    X: np.ndarray,
    dtype: str | type = "float32",
    device: str | torch.device | None = "auto",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> np.ndarray:
    """Neighbour ranks straight from features, never holding the N x N distance matrix.

    R[i, j] is the 0-based position of j in i's neighbour list by Euclidean distance; R[i, i] = 0 even
    among duplicate points; ties are broken by index (stable sort). One sort per row, inverted by a
    scatter (no second argsort).

    Returns:
        (N, N) int32 ranks; each row is a permutation of 0..N-1.
    """
    device = resolve_device(device)
    features, squared_norms = centred_features(X, torch_dtype(dtype), device)
    n = features.shape[0]
    ranks = np.empty((n, n), dtype=np.int32)
    positions = torch.arange(n, device=device, dtype=torch.int32)
    on_cpu = device.type == "cpu"
    for rows in row_blocks(n, n, 4 + 8 + 4, block_bytes):
        keys = _squared_distance_block(features, squared_norms, rows)
        # scatter straight into the result's memory on the CPU; copy back from a GPU
        out = torch.from_numpy(ranks[rows]) if on_cpu else None
        block_ranks = _ranks_of_block(keys, rows, positions, out=out)
        if not on_cpu:
            ranks[rows] = block_ranks.cpu().numpy()
    return ranks


def _ranks_of_block(
    keys: torch.Tensor, rows: slice, positions: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Ranks within each row of a block of non-negative sort keys (rows = the block's global rows)."""
    keys.add_(0.0)  # -0.0 -> +0.0, so the integer view below orders every key correctly
    # Non-negative IEEE floats order like their bit patterns read as integers, and integer sorts are
    # faster; a point's own key becomes -1 so it is its own nearest neighbour even among duplicates.
    integer_keys = keys.view(torch.int32 if keys.dtype == torch.float32 else torch.int64)
    local = torch.arange(keys.shape[0], device=keys.device)
    integer_keys[local, local + rows.start] = -1
    order = torch.argsort(integer_keys, dim=1, stable=True)
    block_ranks = out if out is not None else torch.empty(keys.shape, dtype=torch.int32, device=keys.device)
    block_ranks.scatter_(1, order, positions.expand(keys.shape[0], -1))
    return block_ranks


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


def symmetrise_in_place(matrix: np.ndarray, block: int = 2048) -> np.ndarray:
    """matrix <- (matrix + matrix^T) / 2 block by block, without an N x N temporary."""
    n = matrix.shape[0]
    for i in range(0, n, block):
        rows = slice(i, min(i + block, n))
        diagonal = matrix[rows, rows]
        diagonal += diagonal.T.copy()
        diagonal /= 2
        for j in range(i + block, n, block):
            cols = slice(j, min(j + block, n))
            mean = (matrix[rows, cols] + matrix[cols, rows].T) / 2
            matrix[rows, cols] = mean
            matrix[cols, rows] = mean.T
    return matrix
