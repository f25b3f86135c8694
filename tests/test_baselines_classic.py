"""Classic baselines (KMeans, PCA, NMF, convex NMF): result shapes, determinism, planted clusters they
must show, clear errors, untouched inputs; convex NMF against the paper's plain dense formulas."""

import itertools

import numpy as np
import pytest

from rdx.methods.baselines.decompositions import (
    ConvexNMFBaseline,
    NMFBaseline,
    PCABaseline,
    convex_nmf,
    convex_nmf_objective,
)
from rdx.methods.baselines.kmeans import KMeansBaseline, clusters_by_size, kmeans_clusters
from rdx.methods.explanation import Explanation

BASELINES = [KMeansBaseline, PCABaseline, NMFBaseline, ConvexNMFBaseline]


def blobs(truth: np.ndarray, centres: np.ndarray, seed: int, noise: float = 0.5) -> np.ndarray:
    """Images of cluster ``truth[i]`` at ``centres[truth[i]]`` plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    return centres[truth] + noise * rng.normal(size=(len(truth), centres.shape[1]))


def two_groupings(sizes=(40, 30, 20), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster labels of the same images under model A and (a different grouping) model B."""
    truth_A = np.repeat(np.arange(len(sizes)), sizes)
    truth_B = np.random.default_rng(seed).permutation(truth_A)
    return truth_A, truth_B


def grouped_features(truth: np.ndarray, n_features: int, seed: int) -> np.ndarray:
    """Non-negative features where cluster j lives on its own block of coordinates (plus faint noise):
    the parts-based structure NMF recovers."""
    rng = np.random.default_rng(seed)
    k = truth.max() + 1
    X = 0.05 * np.abs(rng.normal(size=(len(truth), n_features)))
    blocks = np.array_split(np.arange(n_features), k)
    for j in range(k):
        members = np.flatnonzero(truth == j)
        X[np.ix_(members, blocks[j])] += rng.uniform(1.0, 2.0, size=(len(members), len(blocks[j])))
    return X


def signed_centres(k: int, n_features: int, seed: int, distance: float = 8.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, n_features))
    centres -= centres.mean(axis=0)  # signed features around 0
    return distance * centres / np.linalg.norm(centres, axis=1, keepdims=True)


def nonnegative_pair(seed: int = 0):
    truth_A, truth_B = two_groupings(seed=seed)
    return grouped_features(truth_A, 12, seed + 1), grouped_features(truth_B, 9, seed + 2), truth_A, truth_B


def grid_labels(explanation: Explanation, side: str, truth: np.ndarray) -> list[set[int]]:
    return [set(truth[c.grid].tolist()) for c in explanation.concepts[side]]


def assert_pure_and_covering(explanation: Explanation, truths: dict[str, np.ndarray], k: int) -> None:
    for side, truth in truths.items():
        labels = grid_labels(explanation, side, truth)
        assert all(len(s) == 1 for s in labels), (side, labels)
        assert set().union(*labels) == set(range(k)), (side, labels)


# --- shared contract --------------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", BASELINES)
def test_result_types_and_shapes(baseline):
    X_A, X_B, _, _ = nonnegative_pair()
    model = baseline(n_concepts=3, random_state=0)
    assert model.fit(X_A, X_B) is model
    explanation = model.explanation_
    assert isinstance(explanation, Explanation) and explanation.method == baseline.name
    assert set(explanation.concepts) == {"A", "B"}
    for side in ("A", "B"):
        concepts = explanation.concepts[side]
        assert [c.index for c in concepts] == [1, 2, 3]
        for concept in concepts:
            assert concept.grid.dtype == np.int64 and concept.grid.shape == (9,)
            assert len(np.unique(concept.grid)) == 9
            assert ((concept.grid >= 0) & (concept.grid < len(X_A))).all()
            assert concept.members.dtype == np.int64 and concept.members.ndim == 1
            assert np.isfinite(concept.score)
        assert isinstance(explanation.info[side], dict)
    explanation.to_dict(np.zeros(len(X_A), dtype=np.int64))  # serialisable with labels


@pytest.mark.parametrize("baseline", BASELINES)
def test_deterministic_for_fixed_random_state(baseline):
    X_A, X_B, _, _ = nonnegative_pair()
    first = baseline(random_state=3).fit(X_A, X_B).explanation_
    second = baseline(random_state=3).fit(X_A, X_B).explanation_
    assert first.to_dict() == second.to_dict()
    for side in ("A", "B"):
        for a, b in zip(first.concepts[side], second.concepts[side], strict=True):
            np.testing.assert_array_equal(a.members, b.members)


@pytest.mark.parametrize("baseline", BASELINES)
def test_inputs_unchanged_and_read_only_accepted(baseline):
    X_A, X_B, _, _ = nonnegative_pair()
    X_A = X_A.astype(np.float32)  # a dtype the libraries would convert
    originals = X_A.copy(), X_B.copy()
    X_A.flags.writeable = False
    X_B.flags.writeable = False
    baseline().fit(X_A, X_B)
    np.testing.assert_array_equal(X_A, originals[0])
    np.testing.assert_array_equal(X_B, originals[1])


def test_all_methods_in_any_order_give_identical_explanations():
    X_A, X_B, _, _ = nonnegative_pair()
    reference = {cls.name: cls().fit(X_A, X_B).explanation_.to_dict() for cls in BASELINES}
    snapshot = X_A.copy(), X_B.copy()
    for order in list(itertools.permutations(BASELINES))[1::8]:  # 3 orders besides the reference
        for cls in order:
            assert cls().fit(X_A, X_B).explanation_.to_dict() == reference[cls.name], cls.name
    np.testing.assert_array_equal(X_A, snapshot[0])
    np.testing.assert_array_equal(X_B, snapshot[1])


@pytest.mark.parametrize("baseline", BASELINES)
def test_more_concepts_than_samples_is_a_clear_error(baseline):
    X = np.abs(np.random.default_rng(0).normal(size=(5, 8)))
    with pytest.raises(ValueError, match="n_concepts=6 is larger than the number of samples N=5"):
        baseline(n_concepts=6).fit(X, X)


@pytest.mark.parametrize("baseline", [PCABaseline, NMFBaseline, ConvexNMFBaseline])
def test_more_concepts_than_features_is_a_clear_error(baseline):
    X = np.abs(np.random.default_rng(0).normal(size=(30, 2)))
    with pytest.raises(ValueError, match="n_concepts=3 is larger than the number of features d=2"):
        baseline(n_concepts=3).fit(X, X)


def test_kmeans_allows_more_concepts_than_features():
    X = blobs(np.repeat([0, 1, 2], 10), 10.0 * np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), seed=0)
    explanation = KMeansBaseline(n_concepts=3).fit(X, X).explanation_
    assert len(explanation.concepts["A"]) == 3


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_non_positive_or_fractional_concepts_rejected(bad):
    X = np.ones((10, 4))
    with pytest.raises(ValueError, match="positive integer"):
        PCABaseline(n_concepts=bad).fit(X, X)


def test_nmf_rejects_negative_features_and_points_to_cnmf():
    X_A, X_B, _, _ = nonnegative_pair()
    X_B = X_B.copy()
    X_B[:2, :3] = -1.0
    with pytest.raises(ValueError, match=r"6 of \d+ values are negative.*'cnmf'"):
        NMFBaseline().fit(X_A, X_B)


# --- KMeans ------------------------------------------------------------------------------------------


def test_clusters_by_size_orders_largest_first_ties_by_label():
    labels = np.array([2, 0, 1, 1, 3, 3, 0])
    clusters = clusters_by_size(labels, 5)
    assert [c.tolist() for c in clusters] == [[1, 6], [2, 3], [4, 5], [0], []]
    assert all(c.dtype == np.int64 for c in clusters)


def test_kmeans_grids_are_pure_cover_all_clusters_and_follow_size():
    truth_A, truth_B = two_groupings(sizes=(40, 30, 20))
    X_A = blobs(truth_A, 10.0 * np.eye(3, 5), seed=1)
    X_B = blobs(truth_B, 10.0 * np.eye(3, 4)[::-1], seed=2)
    explanation = KMeansBaseline().fit(X_A, X_B).explanation_
    assert_pure_and_covering(explanation, {"A": truth_A, "B": truth_B}, 3)
    for side, truth in (("A", truth_A), ("B", truth_B)):
        concepts = explanation.concepts[side]
        assert [c.size for c in concepts] == [40, 30, 20]
        assert [c.score for c in concepts] == pytest.approx([40 / 90, 30 / 90, 20 / 90])
        for concept in concepts:
            assert len(set(truth[concept.members].tolist())) == 1


def test_kmeans_grid_is_nearest_the_centroid_of_the_whole_set():
    truth = np.repeat([0, 1], 20)
    X = blobs(truth, np.array([[0.0, 0.0], [3.0, 0.0]]), seed=4, noise=1.0)
    concept = KMeansBaseline(n_concepts=2).fit(X, X).explanation_.concepts["A"][0]
    distances = np.linalg.norm(X - X[concept.members].mean(axis=0), axis=1)
    np.testing.assert_array_equal(concept.grid, np.argsort(distances, kind="stable")[:9])


# --- PCA and NMF -------------------------------------------------------------------------------------


def test_pca_top_scores_come_from_the_cluster_on_the_positive_end():
    # two clusters along the first PC; the largest loading of PC1 is feature 0, so sklearn's sign
    # convention makes it positive and the top-score grid is the +8 cluster
    truth_A, truth_B = two_groupings(sizes=(45, 45))
    X_A = blobs(truth_A, np.array([[8.0, 0, 0, 0, 0], [-8.0, 0, 0, 0, 0]]), seed=1, noise=1.0)
    X_B = blobs(truth_B, np.array([[0, 0, 0, -8.0], [0, 0, 0, 8.0]]), seed=2, noise=1.0)
    explanation = PCABaseline(n_concepts=2).fit(X_A, X_B).explanation_
    assert grid_labels(explanation, "A", truth_A)[0] == {0}
    assert grid_labels(explanation, "B", truth_B)[0] == {1}
    ratios = explanation.info["A"]["explained_variance_ratio"]
    assert len(ratios) == 2 and ratios[0] > 0.9


def test_nmf_components_show_one_cluster_each():
    X_A, X_B, truth_A, truth_B = nonnegative_pair()
    explanation = NMFBaseline().fit(X_A, X_B).explanation_
    assert_pure_and_covering(explanation, {"A": truth_A, "B": truth_B}, 3)
    for side, truth in (("A", truth_A), ("B", truth_B)):
        for concept in explanation.concepts[side]:  # members follow the unit-norm-component coefficients
            assert set(truth[concept.members].tolist()) == set(truth[concept.grid].tolist())


# --- convex NMF --------------------------------------------------------------------------------------


def plain_convex_nmf(X: np.ndarray, clusters: list[np.ndarray], n_updates: int):
    """Frozen reference: the paper's updates verbatim, data as columns (d x N), dense Y^+ and Y^-."""
    data = X.T  # the paper's X: d x N
    n = data.shape[1]
    H = np.zeros((n, len(clusters)))
    for j, members in enumerate(clusters):
        H[members, j] = 1.0
    G = H + 0.2
    W = (H + 0.2) @ np.diag(1.0 / H.sum(axis=0))
    Y = data.T @ data
    Yp, Ym = (np.abs(Y) + Y) / 2, (np.abs(Y) - Y) / 2
    for _ in range(n_updates):
        G = G * np.sqrt((Yp @ W + G @ W.T @ Ym @ W) / (Ym @ W + G @ W.T @ Yp @ W))
        W = W * np.sqrt((Yp @ G + Ym @ W @ G.T @ G) / (Ym @ G + Yp @ W @ G.T @ G))
    return W, G


def signed_clusters(seed: int = 0, sizes=(30, 25, 20), n_features: int = 6):
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return blobs(truth, signed_centres(len(sizes), n_features, seed), seed + 1), truth


def test_convex_nmf_equals_the_papers_dense_updates():
    X, _ = signed_clusters(seed=3)
    clusters, _ = kmeans_clusters(X, 3, random_state=3)
    result = convex_nmf(X, clusters, max_iter=25, tol=0.0)
    W, G = plain_convex_nmf(X, clusters, 25)
    scale = W.sum(axis=0)  # the fast path normalises W's columns to sum 1 at the end
    np.testing.assert_allclose(result.weights, W / scale, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(result.coefficients, G * scale, rtol=1e-8, atol=1e-12)
    assert result.n_iter == 25 and not result.converged


def test_convex_nmf_objective_is_the_reconstruction_error_and_never_increases():
    X, _ = signed_clusters(seed=5)
    clusters, _ = kmeans_clusters(X, 3)
    result = convex_nmf(X, clusters, max_iter=60, tol=0.0)
    W, G = result.weights, result.coefficients
    assert (W >= 0).all() and (G >= 0).all()
    np.testing.assert_allclose(W.sum(axis=0), 1.0)
    dense = np.sum((X.T - X.T @ W @ G.T) ** 2)
    assert result.objective == pytest.approx(dense, rel=1e-9)
    assert convex_nmf_objective(float(np.sum(X * X)), X @ (X.T @ W), W, G) == pytest.approx(dense, rel=1e-9)
    objectives = np.array(result.objectives)
    assert len(objectives) == 61
    assert (np.diff(objectives) <= 1e-9 * objectives[0]).all()


def test_convex_nmf_stops_at_tolerance_and_rejects_bad_settings():
    X, _ = signed_clusters(seed=6)
    clusters, _ = kmeans_clusters(X, 3)
    result = convex_nmf(X, clusters, max_iter=10_000, tol=1e-3)
    assert result.converged and result.n_iter < 10_000
    last, before = result.objectives[-1], result.objectives[-2]
    assert abs(before - last) <= 1e-3 * before
    with pytest.raises(ValueError, match="max_iter and tol must be >= 0"):
        convex_nmf(X, clusters, max_iter=-1)


def test_convex_nmf_grids_are_pure_on_separated_signed_clusters():
    truth_A, truth_B = two_groupings(sizes=(40, 30, 20))
    X_A = blobs(truth_A, signed_centres(3, 6, seed=1), seed=2)
    X_B = blobs(truth_B, signed_centres(3, 5, seed=3), seed=4)
    assert (X_A < 0).any() and (X_B < 0).any()
    model = ConvexNMFBaseline().fit(X_A, X_B)
    assert_pure_and_covering(model.explanation_, {"A": truth_A, "B": truth_B}, 3)
    assert model.explanation_.info["A"]["objective"] >= 0
