"""BSR / TSD / EQ on hand-made cases with known answers, and the metric's basic properties."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from rdx.methods.explanation import Concept, Explanation
from rdx.methods.neighbourhoods import neighbour_ranks_from_features
from rdx.metrics import (
    DISTANCES,
    BSRAccumulator,
    binary_success_rate,
    explanation_scores,
    grid_pair_distances,
    model_pair_distances,
)


def explanation_with(grids: dict[str, list[list[int]]]) -> Explanation:
    concepts = {
        side: [Concept(i + 1, np.array(g), np.array(g), 1.0) for i, g in enumerate(side_grids)]
        for side, side_grids in grids.items()
    }
    return Explanation("test", concepts)


# Four points on a line. In A, point 1 is 0's nearest neighbour; in B it is 0's farthest.
X_A = np.array([[0.0], [1.0], [2.0], [10.0]])
X_B = np.array([[0.0], [7.0], [5.0], [6.0]])
# SILB (rank + 1, ties to the lower index) by hand; "j:d" = neighbour j at distance d, nearest first:
#   A: row 0 -> 1:1, 2:2, 3:10; row 1 -> 0:1, 2:1 (tie, 0 first), 3:9; row 2 -> 1:1, 0:2, 3:8;
#      row 3 -> 2:8, 1:9, 0:10
#   B: row 0 -> 2:5, 3:6, 1:7; row 1 -> 3:1, 2:2, 0:7; row 2 -> 3:1, 1:2, 0:5;
#      row 3 -> 1:1, 2:1 (tie, 1 first), 0:6
SILB_A = np.array([[1, 2, 3, 4], [2, 1, 3, 4], [3, 2, 1, 4], [4, 3, 2, 1]])
SILB_B = np.array([[1, 4, 2, 3], [4, 1, 3, 2], [4, 3, 1, 2], [4, 2, 3, 1]])


def test_silb_is_rank_plus_one_with_ties_by_index():
    np.testing.assert_array_equal(grid_pair_distances(X_A, np.arange(4), "silb"), SILB_A)
    np.testing.assert_array_equal(grid_pair_distances(X_B, np.arange(4), "silb"), SILB_B)
    # a grid's rows keep ranks among all N points, in the grid's order
    np.testing.assert_array_equal(grid_pair_distances(X_B, np.array([2, 0]), "silb"), [[1, 4], [2, 1]])
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


def test_bsr_tsd_eq_on_three_and_four_image_grids():
    # grid [1, 2, 3], ordered pairs (A vs B): (1,2) 3=3, (1,3) 4>2, (2,1) 2<3, (2,3) 4>2, (3,1) 3>2, (3,2) 2<3
    #   explaining A: BSR 2/6, EQ 1/6, TSD = mean(B - A) = (0 - 2 + 1 - 2 - 1 + 1) / 6 = -1/2
    #   explaining B: BSR 3/6, EQ 1/6, TSD = +1/2
    # grid [0, 1, 2, 3], 12 pairs: A < B for (0,1) (1,0) (2,0) (2,1) (3,2); ties (1,2) (3,0); 5 with A > B.
    #   Off-diagonal SILB rows always sum to 2 + 3 + 4, so TSD = 0 on the whole set.
    explanation = explanation_with({"A": [[1, 2, 3]], "B": [[1, 2, 3], [3, 1, 0, 2]]})
    scores = explanation_scores(explanation, X_A, X_B, ("silb",))["silb"]
    assert scores["grids"]["A"] == [pytest.approx({"bsr": 2 / 6, "tsd": -0.5, "eq": 1 / 6})]
    assert scores["grids"]["B"] == [
        pytest.approx({"bsr": 3 / 6, "tsd": 0.5, "eq": 1 / 6}),
        pytest.approx({"bsr": 5 / 12, "tsd": 0.0, "eq": 2 / 12}),
    ]
    assert scores["bsr"] == pytest.approx(
        {"A": 1 / 3, "B": (1 / 2 + 5 / 12) / 2, "mean": (1 / 3 + 11 / 24) / 2}
    )
    assert scores["tsd"] == pytest.approx({"A": -0.5, "B": 0.25, "mean": -0.125})


def test_mned_and_lsed_values():
    grid = np.array([0, 1])
    np.testing.assert_allclose(grid_pair_distances(X_A, grid, "mned"), [[0, 0.1], [0.1, 0]])
    X = np.arange(10, dtype=float)[:, None]  # sigma_i = 7th-neighbour distance on a line
    D = grid_pair_distances(X, np.array([0, 9]), "lsed")
    np.testing.assert_allclose(D[0, 1], 81.0 / (7.0 * 7.0))


def lsed_by_hand(X_A, X_B, grid):
    """Dense LSED of both models, correct and reference-compat, restricted to the grid."""
    E_A, E_B = cdist(X_A, X_A), cdist(X_B, X_B)
    sigma_A, sigma_B = np.sort(E_A, axis=1)[:, 7], np.sort(E_B, axis=1)[:, 7]  # column 0 is the point itself
    block = np.ix_(grid, grid)
    scale_A, scale_B = np.outer(sigma_A, sigma_A)[block], np.outer(sigma_B, sigma_B)[block]
    return {
        "A": E_A[block] ** 2 / scale_A,
        "B": E_B[block] ** 2 / scale_B,
        "B_compat": E_B[block] * E_A[block] / scale_B,
        "E_A": E_A[block],
        "E_B": E_B[block],
    }


def test_lsed_reference_compat_changes_model_b_only_as_the_formula_says():
    X_line = np.arange(10, dtype=float)[:, None]  # sigma: 7 at both ends, 4 in the middle (point 4)
    X_other = np.random.default_rng(3).normal(size=(10, 2))
    grid = np.array([0, 4, 9])
    expected = lsed_by_hand(X_line, X_other, grid)
    np.testing.assert_allclose(expected["A"][0, 1], 16.0 / (7.0 * 4.0))  # |0 - 4|^2 / (sigma_0 sigma_4)

    correct = model_pair_distances(X_line, X_other, grid, "lsed")
    compat = model_pair_distances(X_line, X_other, grid, "lsed", reference_compat=True)
    np.testing.assert_allclose(correct["A"], expected["A"], rtol=1e-12)
    np.testing.assert_allclose(correct["B"], expected["B"], rtol=1e-12)
    np.testing.assert_allclose(compat["B"], expected["B_compat"], rtol=1e-12)
    # model A is untouched, and model B changes by exactly the factor E_A / E_B off the diagonal
    np.testing.assert_array_equal(compat["A"], correct["A"])
    np.testing.assert_array_equal(compat["A"], grid_pair_distances(X_line, grid, "lsed"))
    off = ~np.eye(len(grid), dtype=bool)
    np.testing.assert_allclose(
        compat["B"][off] / correct["B"][off], expected["E_A"][off] / expected["E_B"][off]
    )
    assert not np.allclose(compat["B"], correct["B"])
    # SILB and MNED ignore the switch
    for distance in ("silb", "mned"):
        plain = model_pair_distances(X_line, X_other, grid, distance)
        switched = model_pair_distances(X_line, X_other, grid, distance, reference_compat=True)
        for side in "AB":
            np.testing.assert_array_equal(plain[side], switched[side])


def test_explanation_scores_with_reference_compat():
    rng = np.random.default_rng(4)
    X_1, X_2 = rng.normal(size=(30, 3)), rng.normal(size=(30, 5))
    grids = {"A": [[0, 3, 7, 11]], "B": [[2, 5, 8, 20, 21]]}
    explanation = explanation_with(grids)
    correct = explanation_scores(explanation, X_1, X_2)
    compat = explanation_scores(explanation, X_1, X_2, reference_compat=True)
    assert correct["lsed"]["reference_compat"] is False and compat["lsed"]["reference_compat"] is True
    assert compat["silb"] == correct["silb"] and compat["mned"] == correct["mned"]
    # per-grid scores from the dense hand formulas: side A explains A (other = B), side B explains B
    for side in "AB":
        by_hand = lsed_by_hand(X_1, X_2, np.array(grids[side][0]))
        off = ~np.eye(len(grids[side][0]), dtype=bool)
        model_A, model_B = by_hand["A"][off], by_hand["B_compat"][off]
        explained, other = (model_A, model_B) if side == "A" else (model_B, model_A)
        assert compat["lsed"]["grids"][side][0] == pytest.approx(
            {
                "bsr": np.mean(explained < other),
                "tsd": np.mean(other - explained),
                "eq": np.mean(explained == other),
            }
        )
    assert binary_success_rate(explanation, X_1, X_2, "lsed", reference_compat=True) == compat["lsed"]["bsr"]


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
    X_1, X_2 = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    grids = [rng.choice(200, 9, replace=False).tolist() for _ in range(24)]
    explanation = explanation_with({"A": grids[:12], "B": grids[12:]})
    for distance, scores in explanation_scores(explanation, X_1, X_2).items():
        assert scores["bsr"]["mean"] == pytest.approx(0.5, abs=0.06), distance


def test_accumulator_equals_explanation_scores():
    rng = np.random.default_rng(5)
    X_1, X_2 = rng.normal(size=(60, 4)), rng.normal(size=(60, 6))
    grids = {
        "A": [rng.choice(60, 9, replace=False) for _ in range(3)],
        "B": [rng.choice(60, 5, replace=False)],
    }
    explanation = explanation_with({side: [g.tolist() for g in gs] for side, gs in grids.items()})
    for reference_compat in (False, True):
        scores = explanation_scores(explanation, X_1, X_2, reference_compat=reference_compat)
        for distance in DISTANCES:
            for side, other in (("A", "B"), ("B", "A")):
                accumulator = BSRAccumulator()
                for grid in grids[side]:
                    pair = model_pair_distances(X_1, X_2, grid, distance, reference_compat=reference_compat)
                    accumulator.update(pair[side], pair[other])
                computed = accumulator.compute()
                assert computed["n_grids"] == len(grids[side])
                for metric in ("bsr", "tsd", "eq"):
                    assert computed[metric] == scores[distance][metric][side], (distance, side, metric)
                assert accumulator.per_grid == scores[distance]["grids"][side]


def test_accumulator_merge_empty_and_bad_shapes():
    D_1, D_2 = np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([[1.0, 4.0], [4.0, 1.0]])
    first, second = BSRAccumulator().update(D_1, D_2), BSRAccumulator().update(D_2, D_1)
    whole = BSRAccumulator().update(D_1, D_2).update(D_2, D_1)
    assert (
        first.merge(second).compute() == whole.compute() == {"bsr": 0.5, "tsd": 0.0, "eq": 0.0, "n_grids": 2}
    )
    whole.reset()
    empty = whole.compute()
    assert empty["n_grids"] == 0 and all(np.isnan(empty[m]) for m in ("bsr", "tsd", "eq"))
    with pytest.raises(ValueError, match="same shape"):
        BSRAccumulator().update(D_1, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="square"):
        BSRAccumulator().update(np.zeros((2, 3)), np.zeros((2, 3)))


def test_unknown_distance_is_rejected():
    with pytest.raises(ValueError, match="unknown distance"):
        grid_pair_distances(X_A, np.array([0, 1]), "cosine")
    with pytest.raises(ValueError, match="unknown distance"):
        explanation_scores(explanation_with({"A": [[0, 1]]}), X_A, X_B, ("cosine",))
