"""KMeans baseline: k clusters per model; each concept's grid is the images nearest its centroid.

The size-ordered k-means clustering here is also the initialisation of convex NMF
(``rdx.methods.baselines.decompositions``), so both number their concepts the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans

from rdx.methods.baselines.base import PerModelBaseline
from rdx.methods.checks import check_positive_int
from rdx.methods.explanation import Concept
from rdx.methods.grids import select_grid


def clusters_by_size(labels: np.ndarray, n_clusters: int) -> list[np.ndarray]:
    """Member indices (int64) of clusters 0..n_clusters-1, largest cluster first, ties by label.

    Args:
        labels: (N,) cluster label in [0, n_clusters) of each image.
        n_clusters: the number of clusters; a label with no images gives an empty member array.
    """
    labels = np.asarray(labels, dtype=np.int64)
    sizes = np.bincount(labels, minlength=n_clusters)
    order = np.lexsort((np.arange(n_clusters), -sizes))
    return [np.flatnonzero(labels == label).astype(np.int64) for label in order]


def kmeans_clusters(
    X: np.ndarray, n_clusters: int, random_state: int = 0, n_init: int = 10
) -> tuple[list[np.ndarray], float]:
    """scikit-learn k-means on X (N, d): the clusters' members ordered by size (``clusters_by_size``)
    and the inertia (sum of squared distances to the nearest centroid, in X's units squared).

    X is copied to float64 first, so the caller's array is never touched (and may be read-only).
    """
    features = np.array(X, dtype=np.float64)
    model = KMeans(n_clusters=n_clusters, random_state=random_state, n_init=n_init).fit(features)
    return clusters_by_size(model.labels_, n_clusters), float(model.inertia_)


@dataclass(repr=False, eq=False, kw_only=True)
class KMeansBaseline(PerModelBaseline):
    """k-means on each model's features separately (RDX_METHOD.md section 2).

    Concept i (1-based) is the i-th largest cluster (ties by k-means label); its members are the
    cluster, its grid the ``grid_size`` images of the whole set nearest the cluster's mean (the shared
    "centroid" grid strategy; they need not be members), its score the cluster's share of the images.

    Args:
        n_concepts: k, the number of clusters per model (may exceed the feature dimension).
        grid_size: images per concept grid.
        random_state: seeds k-means++ initialisation; a fixed value gives identical explanations.
        n_init: k-means restarts; the run with the lowest inertia is kept.
    """

    name = "kmeans"
    needs_features = False

    n_init: int = 10

    def check_params(self) -> None:
        super().check_params()
        check_positive_int("n_init", self.n_init)

    def concepts_for(self, X: np.ndarray) -> tuple[list[Concept], dict[str, Any]]:
        clusters, inertia = kmeans_clusters(X, self.n_concepts, self.random_state, self.n_init)
        n_images = X.shape[0]
        concepts = [
            Concept(
                index=position + 1,
                members=members,
                grid=select_grid("centroid", members, X, None, self.grid_size),
                score=len(members) / n_images,
            )
            for position, members in enumerate(clusters)
        ]
        return concepts, {"inertia": inertia}
