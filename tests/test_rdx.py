"""RDX core: identities of the paper's formulas, a planted split it must find, clear errors."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from rdx.methods import RDX, build_method
from rdx.methods.grids import maximize_total_neighborhood_affinity
from rdx.methods.rdx import (
    affinity_from_difference,
    locally_biased_difference,
    neighbour_ranks,
    order_clusters,
    pairwise_distances,
    resolve_gamma,
)


def plain_ranks(X: np.ndarray) -> np.ndarray:
    """Slow reference: double argsort of scipy distances, diagonal forced first."""
    E = cdist(X, X)
    np.fill_diagonal(E, -1.0)
    return np.argsort(np.argsort(E, axis=1, kind="stable"), axis=1, kind="stable")


def merged_and_split(seed: int = 0, per_cluster: int = 40):
    """Model B separates clusters 0 and 1; model A merges them. Cluster 2 is separate in both."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 2], per_cluster)
    centres_B = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 12.0]])
    centres_A = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 12.0]])
    X_B = centres_B[truth] + rng.normal(size=(len(truth), 2))
    X_A = centres_A[truth] + rng.normal(size=(len(truth), 2))
    return X_A, X_B, truth


def test_pairwise_distances_match_scipy():
    X = np.random.default_rng(1).normal(size=(60, 7)) * 3 + 100  # offset: tests the centring
    E = pairwise_distances(X)
    np.testing.assert_allclose(E, cdist(X, X), atol=1e-9)
    assert np.all(np.diag(E) == 0) and np.array_equal(E, E.T)


def test_neighbour_ranks_equal_double_argsort_and_zero_diagonal():
    X = np.random.default_rng(2).normal(size=(50, 4))
    R = neighbour_ranks(pairwise_distances(X))
    np.testing.assert_array_equal(R, plain_ranks(X))
    assert np.all(np.diag(R) == 0)
    assert np.all(np.sort(R, axis=1) == np.arange(50))


def test_ranks_with_duplicates_keep_self_first_and_are_stable():
    X = np.array([[0.0], [0.0], [1.0], [0.0]])
    R = neighbour_ranks(pairwise_distances(X))
    assert np.all(np.diag(R) == 0)
    # point 1's ties at distance 0 (points 0 and 3) ordered by index
    assert R[1].tolist() == [1, 0, 3, 2]


def test_difference_and_affinity_identities():
    rng = np.random.default_rng(3)
    X_A, X_B = rng.normal(size=(40, 5)), rng.normal(size=(40, 3))
    R_A, R_B = neighbour_ranks(pairwise_distances(X_A)), neighbour_ranks(pairwise_distances(X_B))
    gamma = 0.05
    D_10 = locally_biased_difference(R_A, R_B, gamma)
    D_01 = locally_biased_difference(R_B, R_A, gamma)
    np.testing.assert_allclose(D_01, -D_10)
    expected = np.tanh(gamma * (R_B - R_A) / (np.minimum(R_A, R_B) + 1))
    np.testing.assert_allclose(D_10, expected)
    assert np.all(np.diag(D_10) == 0)
    beta = 5.0
    aff_10, aff_01 = affinity_from_difference(D_10, beta), affinity_from_difference(D_01, beta)
    np.testing.assert_allclose(aff_01, 1.0 / aff_10)
    assert aff_10.min() >= np.exp(-beta) and aff_10.max() <= np.exp(beta)


def test_affinity_direction_meaning():
    # j = 1 is i = 0's nearest neighbour in B but its farthest in A → Aff_10[0, 1] > 1
    X_A = np.array([[0.0], [10.0], [1.0], [2.0]])
    X_B = np.array([[0.0], [0.5], [3.0], [4.0]])
    model = RDX(n_concepts=1, gamma=1.0).fit(X_A, X_B)
    assert model.affinity_["10"][0, 1] > 1.0 > model.affinity_["01"][0, 1]


def test_gamma_defaults_to_scale_over_n():
    assert resolve_gamma(None, 80.0, 1600) == pytest.approx(0.05)
    assert resolve_gamma(0.1, 80.0, 1600) == 0.1
    with pytest.raises(ValueError):
        resolve_gamma(-1.0, 80.0, 10)


def test_order_clusters_ascending_mean_affinity():
    affinity = np.array(
        [[9.0, 9.0, 1.0, 1.0], [9.0, 9.0, 1.0, 1.0], [1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]]
    )
    labels, means = order_clusters(affinity, np.array([5, 5, 7, 7]))
    assert labels.tolist() == [1, 1, 0, 0]
    np.testing.assert_allclose(means, [2.0, 9.0])


def test_grid_picks_densest_neighbourhood_anchor_first():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 2))
    X[10:19] = X[10] + rng.normal(scale=1e-3, size=(9, 2))
    affinity = np.ones((30, 30))
    affinity[np.ix_(range(10, 19), range(10, 19))] = 5.0  # a block the grid must pick

    def block(rows, cols):
        return affinity[np.ix_(rows, cols)]

    grid = maximize_total_neighborhood_affinity(np.arange(30), X, block, grid_size=9)
    assert sorted(grid.tolist()) == list(range(10, 19))
    E = pairwise_distances(X)
    assert np.all(np.diff(E[grid[0], grid]) >= 0)  # anchor first, then by distance
    small = maximize_total_neighborhood_affinity(np.array([3, 7]), X, block, grid_size=9)
    assert len(small) == 2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rdx_finds_the_split_that_B_makes_and_A_merges(seed):
    X_A, X_B, truth = merged_and_split(seed=seed)
    model = RDX(n_concepts=2, random_state=0).fit(X_A, X_B)  # gamma = 80 / N
    explanation = model.explanation_
    assert len(explanation.concepts["A"]) == 2 and len(explanation.concepts["B"]) == 2
    # B-specific side: each grid is one of the clusters B separates and A merges; both show up.
    grid_truths = [set(truth[c.grid].tolist()) for c in explanation.concepts["B"]]
    assert sorted(grid_truths, key=min) == [{0}, {1}]
    # A-specific side: every grid mixes clusters 0 and 1, which only A confuses.
    assert all(set(truth[c.grid].tolist()) == {0, 1} for c in explanation.concepts["A"])
    # ordering: shown concepts ascend in mean affinity and beat the null cluster
    for side in "AB":
        scores = [explanation.null[side].score] + [c.score for c in explanation.concepts[side]]
        assert scores == sorted(scores)


@pytest.mark.parametrize("gamma", [0.05, 0.1, 0.5])
def test_rdx_B_side_grids_never_mix_what_B_separates(gamma):
    X_A, X_B, truth = merged_and_split(seed=0)
    explanation = RDX(n_concepts=2, gamma=gamma).fit(X_A, X_B).explanation_
    for concept in explanation.concepts["B"]:
        assert len(set(truth[concept.grid].tolist())) == 1


def test_rdx_is_deterministic_and_does_not_mutate_inputs():
    X_A, X_B, _ = merged_and_split(seed=5)
    copies = X_A.copy(), X_B.copy()
    first = RDX(n_concepts=2, gamma=0.1, random_state=3).fit(X_A, X_B).explanation_.to_dict()
    second = RDX(n_concepts=2, gamma=0.1, random_state=3).fit(X_A, X_B).explanation_.to_dict()
    assert first == second
    np.testing.assert_array_equal(X_A, copies[0])
    np.testing.assert_array_equal(X_B, copies[1])


def test_identical_representations_report_no_difference():
    X = np.random.default_rng(6).normal(size=(30, 4))
    explanation = RDX(n_concepts=2).fit(X, X * 2.0).explanation_
    assert explanation.info["no_difference"] is True
    assert explanation.concepts == {"A": [], "B": []}


@pytest.mark.parametrize(
    "X_A, X_B, message",
    [
        (np.zeros((10, 3)), np.zeros((11, 3)), "same images"),
        (np.zeros((3, 3)), np.zeros((3, 3)), "at least 5"),
        (np.array([[0.0, np.nan]] * 10), np.zeros((10, 2)), "NaN"),
        (np.zeros(10), np.zeros((10, 2)), "2-D"),
    ],
)
def test_bad_input_gets_clear_error(X_A, X_B, message):
    with pytest.raises(ValueError, match=message):
        RDX(n_concepts=3).fit(X_A, X_B)


def test_registry_builds_rdx_and_rejects_unknown():
    assert isinstance(build_method("rdx", n_concepts=3), RDX)
    with pytest.raises(ValueError, match="unknown method"):
        build_method("nope")
    with pytest.raises(ValueError, match="bad parameters"):
        build_method("rdx", not_a_parameter=1)
