"""BSR / TSD / EQ on hand-made cases with known answers, and the metric's basic properties."""

import numpy as np
import pytest

from rdx.methods.explanation import Concept, Explanation
from rdx.methods.neighbourhoods import neighbour_ranks_from_features
from rdx.metrics import binary_success_rate, explanation_scores, grid_pair_distances


def explanation_with(grids: dict[str, list[list[int]]]) -> Explanation:
    concepts = {
        side: [Concept(i + 1, np.array(g), np.array(g), 1.0) for i, g in enumerate(side_grids)]
        for side, side_grids in grids.items()
    }
    return Explanation("test", concepts)


# Four points on a line. In A, point 1 is 0's nearest neighbour; in B it is 0's farthest.
X_A = np.array([[0.0], [1.0], [2.0], [10.0]])
X_B = np.array([[0.0], [7.0], [5.0], [6.0]])


def test_silb_is_rank_plus_one_with_ties_by_index():
    D = grid_pair_distances(X_A, np.array([0, 1, 2]), "silb")
    # row 1: points 0 and 2 are both at distance 1; the tie goes to the lower index
    np.testing.assert_array_equal(D, [[1, 2, 3], [2, 1, 3], [3, 2, 1]])
    X = np.random.default_rng(0).normal(size=(40, 3))
    ranks = neighbour_ranks_from_features(X, dtype="float64")
    grid = np.array([5, 17, 3, 30])
    np.testing.assert_array_equal(grid_pair_distances(X, grid, "silb"), ranks[np.ix_(grid, grid)] + 1)


def test_bsr_tsd_eq_on_a_four_point_case():
    explanation = explanation_with({"A": [[0, 1]], "B": [[0, 1]]})
    scores = explanation_scores(explanation, X_A, X_B, ("silb",))["silb"]
    # SILB_A(0,1) = 2, SILB_A(1,0) = 2; SILB_B(0,1) = 4, SILB_B(1,0) = 4
    assert scores["bsr"] == {"A": 1.0, "B": 0.0, "mean": 0.5}
    assert scores["tsd"] == {"A": 2.0, "B": -2.0, "mean": 0.0}
    assert scores["eq"]["A"] == 0.0


def test_mned_and_lsed_values():
    grid = np.array([0, 1])
    np.testing.assert_allclose(grid_pair_distances(X_A, grid, "mned"), [[0, 0.1], [0.1, 0]])
    X = np.arange(10, dtype=float)[:, None]  # sigma_i = 7th-neighbour distance on a line
    D = grid_pair_distances(X, np.array([0, 9]), "lsed")
    np.testing.assert_allclose(D[0, 1], 81.0 / (7.0 * 7.0))


def test_identical_models_give_zero_tsd_and_only_ties():
    X = np.random.default_rng(1).normal(size=(50, 4))
    explanation = explanation_with({"A": [[1, 2, 3, 4]], "B": [[5, 6, 7]]})
    for scores in explanation_scores(explanation, X, X.copy()).values():
        assert scores["tsd"]["mean"] == 0.0 and scores["bsr"]["mean"] == 0.0 and scores["eq"]["mean"] == 1.0
    # ranks ignore scale: a scaled copy ties exactly under SILB
    silb = explanation_scores(explanation, X, X * 3.0, ("silb",))["silb"]
    assert silb["tsd"]["mean"] == 0.0 and silb["eq"]["mean"] == 1.0


def test_ignoring_the_other_model_scores_about_half_on_random_data():
    rng = np.random.default_rng(2)
    X_1, X_2 = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    grids = [rng.choice(300, 9, replace=False).tolist() for _ in range(40)]
    explanation = explanation_with({"A": grids[:20], "B": grids[20:]})
    assert binary_success_rate(explanation, X_1, X_2)["mean"] == pytest.approx(0.5, abs=0.06)


def test_unknown_distance_is_rejected():
    with pytest.raises(ValueError, match="unknown distance"):
        grid_pair_distances(X_A, np.array([0, 1]), "cosine")
