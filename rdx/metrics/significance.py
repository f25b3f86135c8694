"""Is a concept more than noise? A difference test and a stability score per shown concept.

**Difference test.** A grid explaining model M against the other model O has a BSR with SILB distances
(``rdx.metrics.bsr``: over the g (g - 1) ordered pairs of the grid, the fraction whose neighbour rank in
M is below the one in O). Any tight group of M scores above 0.5 on this, by selection alone (its ranks
in M are small because the group was picked in M). So the observed BSR is compared with a null
distribution of *tight groups in M*: ``n_null`` pseudo-grids, each a random anchor and its g - 1 nearest
neighbours in M (the anchor's own neighbour order: self first, ties by index), scored exactly as a grid
is. Anchors are drawn with ``numpy.random.default_rng(seed)``, without replacement when
n_null <= N and with replacement otherwise (then some pseudo-grids repeat). The p-value is
(1 + #{null BSR >= observed}) / (n_null + 1), so it is never 0 and at least 1 / (n_null + 1); BSR is
discrete (at most g (g - 1) + 1 values), so p-values are discrete and conservative. The null asks "is
this grid more M-specific than a typical tight group of M?", not "do the models differ at all": where
the models differ everywhere, tight groups everywhere score high and no concept stands out.

Pseudo-grids are scored in batches: the distances of the batch's members to all N images (b g x N
rows, float64, computed exactly as ``rdx.methods.neighbourhoods.distance_rows`` does) and each needed
rank by counting (#{l : d(i, l) < d(i, j)} plus #{l < j : d(i, l) = d(i, j)}), never an N x N matrix
and never a sort of whole rows.

**Stability.** RDX is refitted on ``n_refits`` random subsamples of the images; a concept's stability
is the median over refits of its best Jaccard overlap with any refitted concept of the same side
(members restricted to the subsample). Concept codes follow the members file (``rdx.record``): 1..k a
shown concept, 0 a null cluster, -1 none.

Everything here is a plain function over arrays; the settings object checks the ``significance`` config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from rdx.methods.explanation import SIDES, Explanation
from rdx.methods.neighbourhoods import centred_features, top_neighbours
from rdx.metrics.bsr import OTHER_SIDE, grid_scores, model_pair_distances
from rdx.sections import settings_from_config

# Rows of distances held per batch of pseudo-grids, in bytes (float64 keys of both models plus a
# boolean comparison buffer): small enough to stay near the CPU caches, large enough for fast BLAS.
NULL_BLOCK_BYTES = 32 * 1024**2
STABILITY_CHOICES = ("rdx", "all", "none")
# Ranks are counted among the candidates of a row (the images up to its farthest fellow member) while
# they are at most this share of the rows' entries, by comparison passes over whole rows beyond it.
CANDIDATE_SHARE = 1 / 8


# ------------------------------------------------------------------------------------------------
# difference test: the null distribution of tight groups
# ------------------------------------------------------------------------------------------------


def null_anchors(n_images: int, n_null: int, seed: int = 0) -> np.ndarray:
    """The anchors of the null's pseudo-grids, (n_null,) int64: ``default_rng(seed)``, without
    replacement when n_null <= n_images, with replacement otherwise."""
    if n_images < 1 or n_null < 1:
        raise ValueError(f"need at least one image and one anchor, got {n_images} images, {n_null} anchors")
    rng = np.random.default_rng(seed)
    return rng.choice(n_images, size=n_null, replace=n_null > n_images).astype(np.int64)


def _squared_distances(features: torch.Tensor, squared_norms: torch.Tensor, rows: torch.Tensor) -> np.ndarray:
    """Squared distances of ``rows`` to all N points, (len(rows), N) float64, by the same floating-point
    operations as ``distance_rows`` before its clamp and square root, (|x|^2 + |y|^2) - 2 x.y, so ranks
    agree with ``grid_pair_distances`` bit for bit. Not clamped at 0 (callers treat values <= 0 as 0);
    each row's own entry is -inf (the image comes first even among duplicates)."""
    products = (features[rows] @ features.T).numpy()
    products *= 2.0  # exact, so the subtraction below rounds exactly as (a + b) - 2 x does
    norms = squared_norms.numpy()
    out = np.add(norms[rows.numpy(), None], norms[None, :])
    out -= products
    out[np.arange(len(rows)), rows.numpy()] = -np.inf
    return out


def _root(squared: np.ndarray) -> np.ndarray:
    """The square root as the metric takes it (``distance_rows``: torch's ``sqrt``), float64. Not numpy's:
    torch's vectorised float64 square root is not always correctly rounded (on AVX-512 it returns
    2.846049894151541 for 8.1, numpy 2.8460498941515415), and ranks must tie exactly where the metric's do."""
    return torch.from_numpy(np.ascontiguousarray(squared, dtype=np.float64)).sqrt().numpy()


def _same_root_bounds(squared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest float64 x >= 0 with root(x) == root(s) for each s of ``squared``
    (negative s count as 0, and the lower bound of 0 is the most negative finite float).

    Ranks are defined on square roots, which map neighbouring floats to one value; comparing squared
    distances against these bounds reproduces the comparisons of the roots exactly."""
    squared = np.maximum(squared, 0.0)
    root = _root(squared)
    low, high = squared.copy(), squared.copy()
    for _ in range(8):  # sqrt merges at most a few neighbouring floats; the loop ends after 2-3 steps
        below, above = np.nextafter(low, -np.inf), np.nextafter(high, np.inf)
        step_down = (below >= 0) & (_root(np.maximum(below, 0)) == root)
        step_up = _root(above) == root
        if not (step_down.any() or step_up.any()):
            break
        low[step_down], high[step_up] = below[step_down], above[step_up]
    # the rows are not clamped: below a zero distance lies only the image itself (-inf), and every value
    # <= 0 ties with it
    low[low == 0.0] = np.finfo(np.float64).min
    return low, high


def _group_ranks(
    features: torch.Tensor,
    squared_norms: torch.Tensor,
    groups: torch.Tensor,
    squared: np.ndarray | None = None,
) -> np.ndarray:
    """Neighbour ranks among each group's members, (b, g, g) int64: entry [p, a, c] is the 0-based rank
    of member c in member a's neighbour list over all N images (self first, ties by index), the
    convention of ``neighbour_ranks_of_rows``.

    Counting, not sorting: rank = #{l : d(a, l) < d(a, c)} + #{l < c : d(a, l) = d(a, c)}. One pass over
    each row keeps the candidates, the images no farther than the row's farthest fellow member; the
    counts run over those only (a tight group's members are near each other, so they are few).

    Args:
        groups: (b, g) image indices.
        squared: the members' squared-distance rows when already computed, (b g, N).
    """
    b, g = groups.shape
    rows = groups.reshape(-1)
    if squared is None:
        squared = _squared_distances(features, squared_norms, rows)
    others = np.array([[c for c in range(g) if c != a] for a in range(g)], dtype=np.int64)  # (g, g - 1)
    columns = groups.numpy()[:, others].reshape(b * g, g - 1)  # the other members of each row's group
    low, high = _same_root_bounds(np.take_along_axis(squared, columns, axis=1))
    within = squared <= high.max(axis=1, keepdims=True)
    if np.count_nonzero(within) <= within.size * CANDIDATE_SHARE:
        ranks_of_others = _ranks_among_candidates(squared, within, columns, low, high)
    else:
        ranks_of_others = _ranks_by_passes(squared, columns, low, high)
    ranks = np.zeros((b * g, g), dtype=np.int64)  # each member's rank of itself is 0
    np.put_along_axis(ranks, np.tile(others, (b, 1)), ranks_of_others, axis=1)
    return ranks.reshape(b, g, g)


def _nearest(
    features: torch.Tensor, squared_norms: torch.Tensor, anchors: torch.Tensor, size: int
) -> np.ndarray:
    """Each anchor and its ``size`` - 1 nearest neighbours, (len(anchors), size) int64, ordered by
    distance (the square root, as ``neighbour_ranks_of_rows`` orders), ties by index, anchor first."""
    squared = _squared_distances(features, squared_norms, anchors)
    own = (np.arange(len(anchors)), anchors.numpy())
    squared[own] = 0.0
    keys = _root(np.maximum(squared, 0.0, out=squared))
    keys[own] = -np.inf
    return top_neighbours(torch.from_numpy(keys), size).numpy()


def _ranks_among_candidates(
    squared: np.ndarray, within: np.ndarray, columns: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """Ranks (rows, t) of the images ``columns`` in each row, counted among the entries ``within``
    (every entry up to the largest threshold): below the threshold's bounds, or tied with it and earlier."""
    candidate_row, candidate_column = np.nonzero(within)
    values = squared[candidate_row, candidate_column]
    ranks = np.empty(columns.shape, dtype=np.int64)
    for t in range(columns.shape[1]):
        earlier = (values < low[candidate_row, t]) | (
            (values <= high[candidate_row, t]) & (candidate_column < columns[candidate_row, t])
        )
        ranks[:, t] = np.bincount(candidate_row[earlier], minlength=len(squared))
    return ranks


def _ranks_by_passes(
    squared: np.ndarray, columns: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """The same ranks by two comparison passes over whole rows per threshold (#{below the lower bound},
    #{up to the upper bound}); the earlier tied images are counted only where there are ties."""
    below = np.empty(squared.shape, dtype=bool)
    less = np.empty(columns.shape, dtype=np.int64)
    at_most = np.empty(columns.shape, dtype=np.int64)
    for t in range(columns.shape[1]):
        np.less(squared, low[:, t : t + 1], out=below)
        less[:, t] = np.count_nonzero(below, axis=1)
        np.less_equal(squared, high[:, t : t + 1], out=below)
        at_most[:, t] = np.count_nonzero(below, axis=1)
    tied_row, tied_column = np.nonzero(at_most - less > 1)  # another image at the same distance
    for start in range(0, len(tied_row), 1024):
        row, column = tied_row[start : start + 1024], tied_column[start : start + 1024]
        values = squared[row]
        tied = (values >= low[row, column][:, None]) & (values <= high[row, column][:, None])
        earlier = np.arange(squared.shape[1])[None, :] < columns[row, column][:, None]
        less[row, column] += np.count_nonzero(tied & earlier, axis=1)
    return less


def tight_groups(X: np.ndarray, anchors: np.ndarray, size: int) -> np.ndarray:
    """Each anchor and its ``size`` - 1 nearest neighbours in X, (len(anchors), size) int64, anchor first,
    then by distance, ties by index (distances as ``distance_rows`` computes them)."""
    X = np.asarray(X)
    _check_size(size, X.shape[0])
    features, squared_norms = centred_features(X, torch.float64, torch.device("cpu"))
    anchors = torch.as_tensor(np.asarray(anchors, dtype=np.int64))
    out = np.empty((len(anchors), size), dtype=np.int64)
    batch = _batch_size(X.shape[0], size)
    for start in range(0, len(anchors), batch):
        part = anchors[start : start + batch]
        out[start : start + len(part)] = _nearest(features, squared_norms, part, size)
    return out


def tight_group_ranks(
    X_M: np.ndarray, X_O: np.ndarray, anchors: np.ndarray, size: int, block_bytes: int = NULL_BLOCK_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """The neighbour ranks inside the tight group of M around each anchor, in both models:
    (ranks in M, ranks in O), each (len(anchors), size, size) int64, entry [p, a, c] the 0-based rank
    of member c in member a's neighbour list over all N images (SILB = rank + 1), members in the order
    of ``tight_groups(X_M, anchors, size)``. Computed in batches of pseudo-grids without an N x N matrix.

    Args:
        X_M, X_O: (N, d_M), (N, d_O) features of the same images in the explained and the other model.
        anchors: (R,) image indices.
        size: g, the pseudo-grid size (at least 2).
        block_bytes: rough memory of one batch's distance rows.
    """
    X_M, X_O = np.asarray(X_M), np.asarray(X_O)
    if X_M.ndim != 2 or X_O.ndim != 2 or X_M.shape[0] != X_O.shape[0]:
        raise ValueError(f"X_M and X_O must be 2-D with the same images, got {X_M.shape} and {X_O.shape}")
    n = X_M.shape[0]
    _check_size(size, n)
    cpu = torch.device("cpu")
    explained = centred_features(X_M, torch.float64, cpu)
    other = centred_features(X_O, torch.float64, cpu)
    anchors = torch.as_tensor(np.asarray(anchors, dtype=np.int64))
    ranks_M = np.empty((len(anchors), size, size), dtype=np.int64)
    ranks_O = np.empty_like(ranks_M)
    batch = _batch_size(n, size, block_bytes)
    for start in range(0, len(anchors), batch):
        part = anchors[start : start + batch]
        groups = torch.from_numpy(_nearest(*explained, part, size))
        ranks_M[start : start + len(part)] = _group_ranks(*explained, groups)
        ranks_O[start : start + len(part)] = _group_ranks(*other, groups)
    return ranks_M, ranks_O


def tight_group_bsr(
    X_M: np.ndarray, X_O: np.ndarray, anchors: np.ndarray, size: int, block_bytes: int = NULL_BLOCK_BYTES
) -> np.ndarray:
    """BSR (SILB) of the tight group of M around each anchor, explaining M against O, (len(anchors),).

    Equal to ``grid_scores(*grid_pair_distances ...)["bsr"]`` of ``tight_groups(X_M, anchors, size)``
    (arguments as :func:`tight_group_ranks`)."""
    ranks_M, ranks_O = tight_group_ranks(X_M, X_O, anchors, size, block_bytes)
    return (ranks_M < ranks_O)[:, ~np.eye(size, dtype=bool)].mean(axis=1)


def null_bsr(
    X_M: np.ndarray,
    X_O: np.ndarray,
    size: int,
    n_null: int = 1000,
    seed: int = 0,
    block_bytes: int = NULL_BLOCK_BYTES,
) -> np.ndarray:
    """The null distribution of a grid of ``size`` images explaining M against O, (n_null,): the BSR
    (SILB) of the tight groups of M around ``null_anchors(N, n_null, seed)``."""
    anchors = null_anchors(np.asarray(X_M).shape[0], n_null, seed)
    return tight_group_bsr(X_M, X_O, anchors, size, block_bytes)


def _check_size(size: int, n_images: int) -> None:
    if not 2 <= size <= n_images:
        raise ValueError(f"a pseudo-grid needs 2..N images (N = {n_images}), got size {size}")


def _batch_size(n_images: int, size: int, block_bytes: int = NULL_BLOCK_BYTES) -> int:
    """Pseudo-grids per batch: their b g rows of float64 keys plus a boolean buffer fit ``block_bytes``."""
    return max(1, block_bytes // (size * n_images * 9))


# ------------------------------------------------------------------------------------------------
# difference test: p-values and q-values
# ------------------------------------------------------------------------------------------------


def p_value(observed: float, null: np.ndarray) -> float:
    """(1 + #{null >= observed}) / (len(null) + 1); NaN when ``observed`` is NaN."""
    null = np.asarray(null, dtype=np.float64)
    if np.isnan(observed):
        return float("nan")
    if null.ndim != 1 or len(null) == 0 or np.isnan(null).any():
        raise ValueError(f"the null must be a non-empty 1-D array without NaN, got shape {null.shape}")
    return float((1 + np.count_nonzero(null >= observed)) / (len(null) + 1))


def bh_qvalues(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values, same shape as ``p_values``.

    q_(i) = min over j >= i of p_(j) m / j (p sorted ascending, m = the number of non-NaN p-values),
    capped at 1; q is monotone in p. A NaN p-value stays NaN and does not count in m.
    """
    p = np.asarray(p_values, dtype=np.float64)
    q = np.full(p.shape, np.nan)
    flat_p, flat_q = p.reshape(-1), q.reshape(-1)
    present = np.flatnonzero(~np.isnan(flat_p))
    m = len(present)
    if m == 0:
        return q
    if np.any((flat_p[present] < 0) | (flat_p[present] > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    order = present[np.argsort(flat_p[present], kind="stable")]
    scaled = flat_p[order] * m / np.arange(1, m + 1)
    flat_q[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return q


def concept_tests(
    explanation: Explanation,
    X_A: np.ndarray,
    X_B: np.ndarray,
    n_null: int = 1000,
    seed: int = 0,
    nulls: dict[tuple[str, int], np.ndarray] | None = None,
) -> dict[str, Any]:
    """The difference test of every shown concept of an explanation (both sides; null clusters never).

    Side A's grids explain A against B, side B's explain B against A. One null per (side, grid size),
    shared by the side's grids of that size, each drawn with ``seed``. The null depends only on the
    features, the side, the size, ``n_null`` and ``seed``, not on the method: pass the same ``nulls``
    dict for every method of a run and each null is drawn once (the dict is filled in place).

    Returns:
        {"concepts": {(side, index): {"bsr": observed BSR (SILB), "p": , "q": , "grid_size": g}},
         "nulls": {(side, g): (n_null,) null BSRs},
         "settings": {"n_null": , "seed": , "distance": "silb"}}.
        q is the Benjamini-Hochberg q-value over all concepts of both sides. Grids of fewer than two
        images get BSR, p and q NaN and draw no null.
    """
    features = {"A": X_A, "B": X_B}
    concepts: dict[tuple[str, int], dict[str, Any]] = {}
    nulls = {} if nulls is None else nulls
    for side in SIDES:
        for concept in explanation.concepts.get(side, []):
            grid = np.asarray(concept.grid, dtype=np.int64)
            entry: dict[str, Any] = {"bsr": float("nan"), "p": float("nan"), "grid_size": len(grid)}
            if len(grid) >= 2:
                pair = model_pair_distances(X_A, X_B, grid, "silb")
                entry["bsr"] = grid_scores(pair[side], pair[OTHER_SIDE[side]])["bsr"]
                if (side, len(grid)) not in nulls:
                    nulls[side, len(grid)] = null_bsr(
                        features[side], features[OTHER_SIDE[side]], len(grid), n_null, seed
                    )
                entry["p"] = p_value(entry["bsr"], nulls[side, len(grid)])
            concepts[side, int(concept.index)] = entry
    keys = list(concepts)
    q = bh_qvalues(np.array([concepts[key]["p"] for key in keys], dtype=np.float64))
    for key, value in zip(keys, q, strict=True):
        concepts[key]["q"] = float(value)
    return {
        "concepts": concepts,
        "nulls": nulls,
        "settings": {"n_null": int(n_null), "seed": int(seed), "distance": "silb"},
    }


# ------------------------------------------------------------------------------------------------
# stability under refits on subsamples
# ------------------------------------------------------------------------------------------------


def best_jaccard(members: np.ndarray, codes: np.ndarray) -> float:
    """The largest Jaccard overlap of the images ``members`` (bool, (n,)) with any concept of ``codes``
    ((n,) ints, concepts are codes >= 1): 0 when ``codes`` has no concept, NaN when ``members`` is empty."""
    size = int(np.count_nonzero(members))
    if size == 0:
        return float("nan")
    shown = codes >= 1
    if not shown.any():
        return 0.0
    concept_sizes = np.bincount(codes[shown])
    overlaps = np.bincount(codes[shown & members], minlength=len(concept_sizes))
    union = size + concept_sizes - overlaps
    present = concept_sizes > 0
    return float(np.max(overlaps[present] / union[present]))


def stability(
    members: Mapping[str, np.ndarray],
    refit: Callable[[np.ndarray], Mapping[str, np.ndarray]],
    n_refits: int = 20,
    fraction: float = 0.8,
    seed: int = 0,
) -> dict[str, Any]:
    """How well each concept survives refitting on subsamples.

    ``n_refits`` subsamples of round(fraction N) images are drawn without replacement from
    ``default_rng(seed)`` (sorted indices); ``refit(indices)`` returns, per side, each subsampled image's
    concept code in the refit ((n_sub,) ints, in the order of ``indices``). For each original concept
    (code >= 1) and refit, the best Jaccard overlap with a refit concept of the same side, the original
    members restricted to the subsample; NaN when none of its members is in the subsample. Its stability
    is the median over refits, NaN-ignoring (all NaN: NaN).

    Args:
        members: per side, each image's concept code (N,): 1..k shown, 0 null cluster, -1 none.
        refit: fits the method again on the images ``indices`` (sorted, (n_sub,)).

    Returns:
        {"concepts": {(side, index): stability}, "per_refit": {(side, index): (n_refits,) Jaccards},
         "subsamples": (n_refits, n_sub) int64 indices, "settings": {"n_refits", "fraction", "seed"}}.
    """
    codes = {side: np.asarray(values, dtype=np.int64) for side, values in members.items()}
    sizes = {len(values) for values in codes.values()}
    if len(sizes) != 1 or any(values.ndim != 1 for values in codes.values()):
        raise ValueError(f"members must be 1-D codes of the same images per side, got sizes {sorted(sizes)}")
    n = sizes.pop()
    n_sub = int(round(fraction * n))
    if not 1 <= n_sub <= n or n_refits < 1:
        raise ValueError(f"need 1 <= round(fraction * N) <= N and n_refits >= 1, got {fraction}, {n_refits}")
    rng = np.random.default_rng(seed)
    subsamples = np.stack([np.sort(rng.choice(n, size=n_sub, replace=False)) for _ in range(n_refits)])
    concepts = [(side, int(index)) for side in codes for index in np.unique(codes[side]) if index >= 1]
    per_refit = {key: np.full(n_refits, np.nan) for key in concepts}
    for r, indices in enumerate(subsamples):
        refitted = refit(indices)
        for side in codes:
            new = np.asarray(refitted[side], dtype=np.int64)
            if new.shape != (n_sub,):
                raise ValueError(f"refit must return ({n_sub},) codes for side {side}, got shape {new.shape}")
            old = codes[side][indices]
            for key in concepts:
                if key[0] == side:
                    per_refit[key][r] = best_jaccard(old == key[1], new)
    return {
        "concepts": {key: _nan_median(values) for key, values in per_refit.items()},
        "per_refit": per_refit,
        "subsamples": subsamples,
        "settings": {"n_refits": int(n_refits), "fraction": float(fraction), "seed": int(seed)},
    }


def _nan_median(values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    return float(np.median(present)) if len(present) else float("nan")


# ------------------------------------------------------------------------------------------------
# settings
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignificanceSettings:
    """The ``significance`` config of rdx-compare: the difference test of every method's concepts and
    the stability of the methods chosen by ``stability`` ("rdx": registry names starting with rdx)."""

    enabled: bool = True
    n_null: int = 1000
    stability: str = "rdx"
    n_refits: int = 20
    fraction: float = 0.8
    alpha: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_null < 10:
            raise ValueError(f"significance.n_null must be at least 10, got {self.n_null}")
        if self.stability not in STABILITY_CHOICES:
            raise ValueError(
                f"significance.stability must be one of {STABILITY_CHOICES}, got {self.stability!r}"
            )
        if self.n_refits < 2:
            raise ValueError(f"significance.n_refits must be at least 2, got {self.n_refits}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"significance.fraction must lie in (0, 1], got {self.fraction}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"significance.alpha must lie in (0, 1), got {self.alpha}")

    def wants_stability(self, method_name: str) -> bool:
        """Whether the method registered as ``method_name`` gets the (refitting) stability score."""
        if self.stability == "all":
            return True
        return self.stability == "rdx" and method_name.startswith("rdx")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def significance_settings(config: Mapping[str, Any] | None) -> SignificanceSettings:
    """The checked ``significance`` config (None: the defaults); a bad value fails before any work."""
    return settings_from_config(SignificanceSettings, config, "significance")
