"""Matrix-decomposition baselines: PCA, NMF and convex NMF, each fitted on each model separately.

Each turns its (N, k) score/coefficient matrix into concepts with ``concepts_from_activations``:
concept i is column i, its grid the ``grid_size`` images with the highest value, its members the images
whose largest (positive) value is in column i, its score the column's mean (RDX_METHOD.md section 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.decomposition import NMF, PCA

from rdx.methods.baselines.base import (
    PerModelBaseline,
    concepts_from_activations,
)
from rdx.methods.baselines.kmeans import kmeans_clusters
from rdx.methods.checks import NotApplicableError, check_positive_int, check_positive_number
from rdx.methods.explanation import Concept

# Added to the k-means cluster indicators when initialising convex NMF, as in Ding, Li & Jordan (2010):
# multiplicative updates can never move an entry away from zero, so no entry may start there.
CONVEX_NMF_INIT_OFFSET = 0.2
_TINY = np.finfo(np.float64).tiny


@dataclass(repr=False, eq=False, kw_only=True)
class PCABaseline(PerModelBaseline):
    """PCA per model: concept i is principal component i, shown by the images with the highest scores.

    Sign convention: a component's sign is arbitrary, so scikit-learn fixes it deterministically
    (``svd_flip(u_based_decision=False)``, every solver): each component's loading of largest absolute
    value is positive. The grid shows the most positive scores along that orientation; the opposite end
    of the component is not shown.

    Args:
        n_concepts: k components per model (k <= min(N, d)).
        grid_size: images per concept grid.
        random_state: seeds the randomized SVD scikit-learn picks for large inputs.
    """

    name = "pca"
    needs_features = True

    def concepts_for(self, X: np.ndarray) -> tuple[list[Concept], dict[str, Any]]:
        model = PCA(n_components=self.n_concepts, random_state=self.random_state)
        scores = model.fit_transform(np.array(X, dtype=np.float64))  # (N, k), centred projections
        info = {"explained_variance_ratio": [float(r) for r in model.explained_variance_ratio_]}
        return concepts_from_activations(scores, self.grid_size), info


@dataclass(repr=False, eq=False, kw_only=True)
class NMFBaseline(PerModelBaseline):
    """scikit-learn NMF per model, X (N, d) >= 0 approximated by W H with W (N, k), H (k, d) >= 0.

    Concept i is component i (scikit-learn's order); its activations are column i of W, rescaled so that
    every component (row of H) has unit norm: W H is unchanged and coefficients are comparable across
    concepts, which decides the members (grids do not depend on the scale).

    Args:
        n_concepts: k components per model (k <= min(N, d)).
        grid_size: images per concept grid.
        random_state: passed to scikit-learn (``init="nndsvda"`` is deterministic; kept for API parity).
        max_iter: the solver's iteration limit.
        tol: the solver's stopping tolerance.
    """

    name = "nmf"
    needs_features = True

    max_iter: int = 500
    tol: float = 1e-4

    def check_params(self) -> None:
        super().check_params()
        check_positive_int("max_iter", self.max_iter)
        check_positive_number("tol", self.tol)

    def validate(self, X: np.ndarray) -> None:
        n_negative = int(np.count_nonzero(X < 0))
        if n_negative:
            raise NotApplicableError(
                f"NMF needs non-negative features, but {n_negative} of {X.size} values are negative "
                f"(min {float(X.min()):.4g}); for signed features use convex NMF (baseline 'cnmf')"
            )

    def concepts_for(self, X: np.ndarray) -> tuple[list[Concept], dict[str, Any]]:
        model = NMF(
            n_components=self.n_concepts,
            init="nndsvda",
            random_state=self.random_state,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        coefficients = model.fit_transform(np.array(X, dtype=np.float64))
        norms = np.linalg.norm(model.components_, axis=1)
        coefficients = coefficients * np.where(norms > 0, norms, 1.0)
        info = {"reconstruction_error": float(model.reconstruction_err_), "n_iter": int(model.n_iter_)}
        return concepts_from_activations(coefficients, self.grid_size), info


@dataclass
class ConvexNMFResult:
    """A convex NMF of X (N, d): X^T ~ X^T W G^T.

    Attributes:
        weights: W (N, k) >= 0; column j sums to 1, so X^T W[:, j] is a weighted mean of images (the
            j-th centroid), a convex combination as the method's name says.
        coefficients: G (N, k) >= 0; image i ~ sum_j G[i, j] * centroid j (cluster-indicator-like).
        objective: ||X^T - X^T W G^T||_F^2 at the end, in squared feature units.
        objectives: the objective before each update and at the end (non-increasing, per the paper).
        n_iter: updates done.
        converged: whether the relative change of the objective fell to ``tol`` before ``max_iter``.
    """

    weights: np.ndarray
    coefficients: np.ndarray
    objective: float
    objectives: list[float]
    n_iter: int
    converged: bool


def sign_split_products(
    features: np.ndarray, absolute_gram: np.ndarray, matrix: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(Y^+ M, Y^- M) for Y = X X^T split as Y^+ = (|Y| + Y) / 2, Y^- = (|Y| - Y) / 2, both >= 0.

    Only |Y| (N, N) is stored; Y M = X (X^T M) costs O(N d k). So each call reads one N x N array
    instead of two, and Y^+ and Y^- never exist. Rounding can leave a product that is exactly 0 in the
    dense formula (e.g. Y^- M for non-negative X) at about 1e-16 * |Y| M, so both are clipped at 0.

    Args:
        features: X (N, d).
        absolute_gram: |X X^T| (N, N).
        matrix: M (N, k).
    """
    absolute = absolute_gram @ matrix
    signed = features @ (features.T @ matrix)
    return np.maximum(0.5 * (absolute + signed), 0.0), np.maximum(0.5 * (absolute - signed), 0.0)


def convex_nmf_objective(
    squared_norm: float, gram_times_weights: np.ndarray, weights: np.ndarray, coefficients: np.ndarray
) -> float:
    """||X^T - X^T W G^T||_F^2 = tr(Y) - 2 tr(G^T Y W) + tr(W^T Y W G^T G), with Y = X X^T (N, N).

    Args:
        squared_norm: tr(Y) = ||X||_F^2.
        gram_times_weights: Y W (N, k).
        weights: W (N, k).
        coefficients: G (N, k).
    """
    cross = float(np.sum(gram_times_weights * coefficients))
    quadratic = float(np.sum((weights.T @ gram_times_weights) * (coefficients.T @ coefficients)))
    return max(squared_norm - 2.0 * cross + quadratic, 0.0)


def convex_nmf(
    X: np.ndarray, initial_clusters: list[np.ndarray], max_iter: int = 200, tol: float = 1e-4
) -> ConvexNMFResult:
    """Convex NMF (Ding, Li & Jordan 2010, section 4) of signed X (N, d) by the paper's updates.

    The paper factors its data matrix (d x N, images as columns) as X W G^T; here images are rows, so
    X^T ~ X^T W G^T with W, G (N, k) >= 0. With Y = X X^T (N, N) split as Y = Y^+ - Y^-:

        G <- G * sqrt((Y^+ W + G W^T Y^- W) / (Y^- W + G W^T Y^+ W))
        W <- W * sqrt((Y^+ G + Y^- W G^T G) / (Y^- G + Y^+ W G^T G))

    (elementwise), G first, then W with the new G. Initialisation, as in the paper, from a clustering
    with indicators H (N, k) and sizes n_j: G = H + 0.2, W = (H + 0.2) diag(1 / n_j). The loop stops
    after ``max_iter`` updates or when the objective's relative change is at most ``tol``. At the end
    each column of W is divided by its sum and G's column multiplied by it, leaving W G^T unchanged.

    Memory and time: |Y| is the only N x N array (float64, 8 N^2 bytes: 0.2 GB at N = 5000, which is
    fine here); Y^+ M and Y^- M come from |Y| M and X (X^T M) (``sign_split_products``), two N x N
    products per update, O(N^2 k). X is not modified.

    Args:
        X: (N, d) features, any sign.
        initial_clusters: k arrays of member indices (a partition of range(N), e.g. k-means clusters).
        max_iter: the most updates (>= 0).
        tol: relative objective change at which to stop (>= 0; 0 stops only on an unchanged objective).
    """
    if max_iter < 0 or tol < 0:
        raise ValueError(f"max_iter and tol must be >= 0, got max_iter={max_iter}, tol={tol}")
    features = np.asarray(X, dtype=np.float64)
    n_images = features.shape[0]
    indicators = np.zeros((n_images, len(initial_clusters)))
    for column, members in enumerate(initial_clusters):
        indicators[members, column] = 1.0
    sizes = np.maximum(indicators.sum(axis=0), 1.0)
    coefficients = indicators + CONVEX_NMF_INIT_OFFSET
    weights = (indicators + CONVEX_NMF_INIT_OFFSET) / sizes

    gram = features @ features.T
    absolute_gram = np.abs(gram, out=gram)  # in place: the only N x N array
    squared_norm = float(np.sum(features * features))
    objectives: list[float] = []
    n_iter, converged = 0, False
    while True:
        positive_w, negative_w = sign_split_products(features, absolute_gram, weights)
        objective = convex_nmf_objective(squared_norm, positive_w - negative_w, weights, coefficients)
        if objectives and abs(objectives[-1] - objective) <= tol * max(objectives[-1], _TINY):
            converged = True
        objectives.append(objective)
        if converged or n_iter == max_iter:
            break
        numerator = positive_w + coefficients @ (weights.T @ negative_w)
        denominator = negative_w + coefficients @ (weights.T @ positive_w)
        coefficients = coefficients * np.sqrt(numerator / np.maximum(denominator, _TINY))
        coefficients_gram = coefficients.T @ coefficients
        positive_g, negative_g = sign_split_products(features, absolute_gram, coefficients)
        numerator = positive_g + negative_w @ coefficients_gram
        denominator = negative_g + positive_w @ coefficients_gram
        weights = weights * np.sqrt(numerator / np.maximum(denominator, _TINY))
        n_iter += 1

    column_sums = weights.sum(axis=0)
    scale = np.where(column_sums > 0, column_sums, 1.0)
    return ConvexNMFResult(weights / scale, coefficients * scale, objective, objectives, n_iter, converged)


@dataclass(repr=False, eq=False, kw_only=True)
class ConvexNMFBaseline(PerModelBaseline):
    """Convex NMF per model (``convex_nmf``), for signed features: concept j is column j of G.

    Initialised from k-means (seeded by ``random_state``, clusters ordered by size as in the KMeans
    baseline), so concept j starts as the j-th largest k-means cluster. Activations are the coefficients
    G (N, k), with W's columns summing to 1 so that columns of G are comparable.

    Args:
        n_concepts: k components per model (k <= min(N, d)).
        grid_size: images per concept grid.
        random_state: seeds the k-means initialisation; the updates themselves are deterministic.
        max_iter: the most multiplicative updates.
        tol: stop when the objective's relative change is at most this.
        n_init: k-means restarts for the initialisation.
    """

    name = "cnmf"
    needs_features = True

    max_iter: int = 200
    tol: float = 1e-4
    n_init: int = 10

    def check_params(self) -> None:
        super().check_params()
        check_positive_int("max_iter", self.max_iter)
        check_positive_number("tol", self.tol)
        check_positive_int("n_init", self.n_init)

    def concepts_for(self, X: np.ndarray) -> tuple[list[Concept], dict[str, Any]]:
        clusters, _ = kmeans_clusters(X, self.n_concepts, self.random_state, self.n_init)
        result = convex_nmf(X, clusters, self.max_iter, self.tol)
        info = {"objective": result.objective, "n_iter": result.n_iter, "converged": result.converged}
        return concepts_from_activations(result.coefficients, self.grid_size), info
