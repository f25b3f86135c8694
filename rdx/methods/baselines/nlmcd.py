"""NLMCD baseline: UMAP + HDBSCAN per model, concepts chosen by cross-model disagreement.

Each model's representation is embedded by UMAP (at most 50-d) and clustered by HDBSCAN; noise points
(label -1) never form concepts. Of each model's clusters, the k that the *other* model splits the most
are shown: the same question RDX answers ("what does this model group together that the other one does
not?"), asked of density clusters fitted on each model alone.

Cross-model disagreement of a cluster C of model M (``cross_model_disagreement``): the fraction of the
pairs of C's members that the other model puts in different clusters, the other model's noise points
each counting as a cluster of their own:

    disagreement(C) = 1 - sum_c' n_c' (n_c' - 1) / (|C| (|C| - 1)),   n_c' = |C ∩ c'|

over the other model's clusters c' (noise as singletons). 0: the other model keeps all of C in one
cluster (it may add more images to it: that is the other side's concept). 1: the other model groups no
two members of C together. A cluster split in halves scores about 0.5. The pair count matches the
metrics (BSR counts pairs of a grid), and unlike "1 - largest share" it tells a split in two from a
split in many.

Determinism: UMAP is given an integer ``random_state`` and ``n_jobs=1`` (with a seed UMAP runs its
optimisation single-threaded and reproduces its embedding exactly on the same machine and library
versions); HDBSCAN has no randomness. The first UMAP call of a process compiles numba code (about 15 s
on 2 CPU cores); later calls are fast.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import HDBSCAN

from rdx.methods.baselines.base import Baseline, check_n_concepts, per_model_fit
from rdx.methods.checks import check_positive_int
from rdx.methods.embedding import umap_embedding
from rdx.methods.explanation import Concept, Explanation
from rdx.methods.grids import select_grid
from rdx.methods.rdx import check_representations

log = logging.getLogger(__name__)

NOISE = -1
# UMAP's setting for clustering: points packed tightly around their neighbours give HDBSCAN dense groups.
UMAP_MIN_DIST = 0.0
MIN_SAMPLES = 4  # UMAP's spectral initialisation needs at least 2 dimensions below N - 1


def density_clusters(embedding: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN labels (N,) int64 of an embedding: clusters 0..c-1, noise -1."""
    labels = HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(embedding)
    return np.asarray(labels, dtype=np.int64)


def noise_as_singletons(labels: np.ndarray) -> np.ndarray:
    """Labels with every noise point (-1) given a cluster of its own (new labels above the largest)."""
    labels = np.array(labels, dtype=np.int64, copy=True)
    noise = np.flatnonzero(labels == NOISE)
    labels[noise] = labels.max(initial=NOISE) + 1 + np.arange(len(noise))
    return labels


def cross_model_disagreement(labels: np.ndarray, other_labels: np.ndarray) -> dict[int, float]:
    """Per cluster of ``labels``: the fraction of its member pairs that ``other_labels`` separates.

    Args:
        labels: (N,) cluster labels of the explained model, -1 = noise (noise gets no score).
        other_labels: (N,) cluster labels of the other model for the same images, -1 = noise; each
            noise point counts as its own cluster.

    Returns:
        {cluster label: disagreement in [0, 1]}, see the module docstring. Computed from integer pair
        counts, so equal fractions give equal floats (ties stay ties).
    """
    labels = np.asarray(labels, dtype=np.int64)
    other = noise_as_singletons(other_labels)
    scores: dict[int, float] = {}
    for cluster in np.unique(labels[labels != NOISE]):
        _, counts = np.unique(other[labels == cluster], return_counts=True)
        size = int(counts.sum())
        if size < 2:  # no pairs: nothing the other model could split
            scores[int(cluster)] = 0.0
            continue
        together = int((counts * (counts - 1)).sum())
        scores[int(cluster)] = 1.0 - together / (size * (size - 1))
    return scores


def most_disagreeing_clusters(labels: np.ndarray, disagreement: dict[int, float], k: int) -> list[int]:
    """The (up to) k cluster labels with the highest disagreement; ties by larger size, then lower label."""
    labels = np.asarray(labels, dtype=np.int64)
    clusters = sorted(disagreement)
    sizes = {cluster: int((labels == cluster).sum()) for cluster in clusters}
    return sorted(clusters, key=lambda c: (-disagreement[c], -sizes[c], c))[:k]


@dataclass(repr=False, eq=False, kw_only=True)
class NLMCDBaseline(Baseline):
    """UMAP + HDBSCAN per model; per side the k clusters the other model splits the most.

    Parameters:
        n_concepts: k, concepts per side (fewer when HDBSCAN finds fewer clusters; see ``info``).
        grid_size: images per grid: the members nearest the cluster's mean in the model's own features.
        n_components: UMAP dimension before HDBSCAN (capped at d and N - 2).
        n_neighbors: UMAP neighbourhood size (capped at N - 1).
        min_cluster_size: HDBSCAN's smallest cluster; smaller values find more, smaller clusters.
        random_state: UMAP's seed (HDBSCAN is deterministic).

    Attributes (after ``fit``):
        explanation_: concepts of side "A" (model A's clusters that B splits) and "B" (the converse),
            ordered by disagreement, highest first; a concept's score is its disagreement.
        labels_: {"A": (N,), "B": (N,)} HDBSCAN labels of each model (-1 = noise).
    """

    name = "nlmcd"

    n_components: int = 50
    n_neighbors: int = 15
    min_cluster_size: int = 10

    def check_params(self) -> None:
        super().check_params()
        check_positive_int("n_components", self.n_components, 2)
        check_positive_int("n_neighbors", self.n_neighbors, 2)
        check_positive_int("min_cluster_size", self.min_cluster_size, 2)

    def _check_params(self, n_samples: int) -> None:
        self.check_params()
        if self.min_cluster_size > n_samples:
            raise ValueError(
                f"min_cluster_size={self.min_cluster_size} is larger than the number of images N={n_samples}"
            )

    def _clusters(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One model's UMAP embedding and its HDBSCAN labels."""
        embedding = umap_embedding(
            X, self.n_components, self.n_neighbors, self.random_state, min_dist=UMAP_MIN_DIST
        )
        return embedding, density_clusters(embedding, self.min_cluster_size)

    def fit(self, X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray | None = None) -> NLMCDBaseline:
        """Cluster each model, score each cluster by how much the other model splits it, keep the top k.

        X_A (N, d_A), X_B (N, d_B): the two representations of the same images; never modified.
        y is ignored (accepted for a common interface).
        """
        self.check_params()
        X_A, X_B = check_representations(X_A, X_B, min_samples=MIN_SAMPLES)
        features = {"A": X_A, "B": X_B}
        n_samples = X_A.shape[0]
        self._check_params(n_samples)
        check_n_concepts(self.n_concepts, X_A, needs_features=False)

        labels: dict[str, np.ndarray] = {}
        info: dict[str, Any] = {
            "n_concepts": int(self.n_concepts),
            "random_state": int(self.random_state),
            "disagreement": "fraction of a cluster's member pairs the other model puts in different "
            "clusters (its noise points as singletons)",
        }
        for side, X in features.items():
            embedding, labels[side] = per_model_fit(self, "umap+hdbscan", X, lambda X=X: self._clusters(X))
            n_clusters = len(np.unique(labels[side][labels[side] != NOISE]))
            if n_clusters == 0:
                raise ValueError(
                    f"HDBSCAN found no clusters in model {side}'s UMAP embedding (all N={n_samples} images "
                    f"are noise); try a smaller min_cluster_size (now {self.min_cluster_size})"
                )
            info[side] = {
                "embedding_dim": int(embedding.shape[1]),
                "n_clusters": int(n_clusters),
                "n_noise": int((labels[side] == NOISE).sum()),
            }

        concepts: dict[str, list[Concept]] = {}
        for side, other in (("A", "B"), ("B", "A")):
            disagreement = cross_model_disagreement(labels[side], labels[other])
            chosen = most_disagreeing_clusters(labels[side], disagreement, self.n_concepts)
            concepts[side] = []
            for index, cluster in enumerate(chosen, start=1):
                members = np.flatnonzero(labels[side] == cluster).astype(np.int64)
                grid = select_grid("spectral_cluster_centroid", members, features[side], None, self.grid_size)
                concepts[side].append(Concept(index, members, grid, disagreement[cluster]))
            info[side]["cluster_disagreement"] = {str(c): float(s) for c, s in sorted(disagreement.items())}
            info[side]["n_concepts_returned"] = len(chosen)
            if len(chosen) < self.n_concepts:
                message = (
                    f"HDBSCAN found only {len(chosen)} cluster(s) in model {side}; returned {len(chosen)} "
                    f"of the {self.n_concepts} requested concepts"
                )
                info[side]["note"] = message
                log.warning(message)

        self.labels_ = labels
        self.explanation_ = Explanation(self.name, concepts, info=info)
        return self
