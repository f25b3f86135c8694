"""Low-dimensional embeddings of one representation: PCA and UMAP, each written once.

PCA gives the figures' scatters (``rdx.viz.scatter``) and the report's maps; UMAP gives the NLMCD
baseline its clustering space and the report its second map. Light on purpose (numpy and scikit-learn;
umap-learn is imported on first use): the report builds maps without importing matplotlib.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA

from rdx.methods.explanation import SIDES


def pca_2d(X: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Project X (N, d) on its first two principal components.

    Returns:
        coordinates (N, 2) and the explained variance ratio of each component (2,).
    """
    X = np.asarray(X, dtype=np.float64)
    n_components = min(2, *X.shape)
    pca = PCA(n_components=n_components, random_state=seed)
    coordinates = pca.fit_transform(X)
    ratios = pca.explained_variance_ratio_
    if n_components < 2:  # degenerate input (one sample or one feature): pad with a zero axis
        coordinates = np.pad(coordinates, ((0, 0), (0, 2 - n_components)))
        ratios = np.pad(ratios, (0, 2 - n_components))
    return coordinates, ratios


def pca_embedding(
    X_A: np.ndarray, X_B: np.ndarray, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per side ("A", "B"): the 2-D PCA coordinates (N, 2) of its representation and the explained
    variance ratios (2,), as ``rdx.viz.scatter.pca_scatter`` draws them."""
    return {side: pca_2d(X, seed) for side, X in zip(SIDES, (X_A, X_B), strict=True)}


def umap_available() -> bool:
    """Whether umap-learn imports (it is a dependency, but an install may lack it or its numba)."""
    try:
        import umap  # noqa: F401
    except ImportError:
        return False
    return True


def umap_embedding(
    X: np.ndarray, n_components: int, n_neighbors: int, random_state: int, min_dist: float = 0.1
) -> np.ndarray:
    """UMAP embedding of one representation, seeded and single-threaded (deterministic).

    With a seed UMAP runs its optimisation single-threaded and reproduces its embedding exactly on the
    same machine and library versions. The first call of a process compiles numba code (seconds).

    Args:
        X: (N, d) features; not modified (UMAP gets a float32 copy).
        n_components: requested dimension; the embedding has min(n_components, d, N - 2) columns.
        n_neighbors: UMAP's neighbourhood size, capped at N - 1.
        random_state: UMAP's seed.
        min_dist: UMAP's minimum distance between embedded points (umap-learn's default 0.1 spreads
            points for viewing; 0.0 packs them for clustering).

    Returns:
        (N, min(n_components, d, N - 2)) float32 embedding.

    Raises:
        ImportError: umap-learn is not installed.
    """
    try:
        import umap  # imported here: a second or two of import, paid only by callers that embed
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("UMAP embeddings need umap-learn: pip install umap-learn") from error
    n, d = X.shape
    reducer = umap.UMAP(
        n_components=min(n_components, d, n - 2),
        n_neighbors=min(n_neighbors, n - 1),
        min_dist=min_dist,
        random_state=int(random_state),
        n_jobs=1,  # what a seed implies anyway; said explicitly so UMAP does not warn
    )
    return reducer.fit_transform(np.array(X, dtype=np.float32, copy=True))
