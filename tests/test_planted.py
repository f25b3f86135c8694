"""rdx.metrics.planted: the planted-difference recovery score on hand-made grids with answers worked out
by hand in the comments, and the label-pair separability probe on features with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from rdx.methods.explanation import Concept, Explanation
from rdx.metrics.planted import check_pairs, grid_mixes, pair_separability, recovery_scores

# Image i has label LABELS[i]: images 0-3 are 3s, 4-7 are 5s, 8-11 are 8s.
LABELS = np.array([3, 3, 3, 3, 5, 5, 5, 5, 8, 8, 8, 8])


def concept(index: int, grid: list[int]) -> Concept:
    """A concept whose members are its grid (the recovery score reads only the grid)."""
    return Concept(index, np.array(grid, dtype=np.int64), np.array(grid, dtype=np.int64), 1.0)


def explanation(A: list[list[int]], B: list[list[int]], null: dict | None = None) -> Explanation:
    def side(grids: list[list[int]]) -> list[Concept]:
        return [concept(i + 1, grid) for i, grid in enumerate(grids)]

    concepts = {"A": side(A), "B": side(B)}
    return Explanation("hand", concepts, null or {"A": None, "B": None})


# ------------------------------------------------------------------------------------------------
# check_pairs
# ------------------------------------------------------------------------------------------------


def test_check_pairs_keeps_valid_pairs_as_integer_tuples():
    assert check_pairs([[3, 5], (8, 3)]) == [(3, 5), (8, 3)]
    assert check_pairs([np.array([np.int64(4), np.int64(9)])]) == [(4, 9)]
    assert check_pairs(np.array([[3, 5]])) == [(3, 5)]  # a 2-D array of pairs
    assert check_pairs(None) == [] and check_pairs([]) == []
    (pair,) = check_pairs([np.array([3, 5])])
    assert all(type(v) is int for v in pair)  # plain ints: JSON-ready for the record


@pytest.mark.parametrize(
    "pairs",
    [
        [[3, 3]],  # not distinct
        [[3]],  # one label
        [[3, 5, 8]],  # three labels
        [[3, 5], [5, 5]],  # a bad pair after a good one
        [3, 5],  # a flat list: the likely slip for [[3, 5]]
        [[3.5, 5]],  # not an integer: must not be truncated to (3, 5)
        ["35"],  # a string is not a pair of labels
        [["3", "5"]],
        [[3, None]],
    ],
)
def test_check_pairs_rejects_anything_but_two_distinct_integers_naming_the_setting(pairs):
    with pytest.raises(ValueError, match=r"planted\.mix_A must hold pairs of two distinct"):
        check_pairs(pairs, "planted.mix_A")


# ------------------------------------------------------------------------------------------------
# grid_mixes
# ------------------------------------------------------------------------------------------------


def test_a_grid_mixes_a_pair_with_min_each_images_of_both_labels():
    # two 3s and two 5s: mixes (3, 5) at min_each 2, in either order of the pair
    assert grid_mixes(np.array([3, 3, 5, 5, 8]), [(3, 5)]) is True
    assert grid_mixes(np.array([3, 3, 5, 5, 8]), [(5, 3)]) is True
    # three 3s, one 5: not at min_each 2, yes at min_each 1
    assert grid_mixes(np.array([3, 3, 3, 5, 8, 8]), [(3, 5)]) is False
    assert grid_mixes(np.array([3, 3, 3, 5, 8, 8]), [(3, 5)], min_each=1) is True
    # one label only (even a full grid of it) never mixes
    assert grid_mixes(np.array([3] * 9), [(3, 5)], min_each=1) is False
    # the labels that mix are another pair's: not this one
    assert grid_mixes(np.array([5, 5, 8, 8]), [(3, 5)]) is False


def test_any_listed_pair_is_enough():
    grid = np.array([3, 5, 8, 8, 5])  # (3, 5): one 3 -> no; (5, 8): two 5s, two 8s -> yes
    assert grid_mixes(grid, [(3, 5)]) is False
    assert grid_mixes(grid, [(3, 5), (5, 8)]) is True
    assert grid_mixes(grid, [(5, 8), (3, 5)]) is True


def test_min_each_edge_cases():
    five_threes_four_fives = np.array([3] * 5 + [5] * 4)
    assert grid_mixes(five_threes_four_fives, [(3, 5)], min_each=4) is True  # 5 >= 4 and 4 >= 4
    assert grid_mixes(five_threes_four_fives, [(3, 5)], min_each=5) is False  # 4 fives < 5
    # min_each above half a 9-image grid: no 9-image grid can mix
    assert grid_mixes(np.array([3] * 4 + [5] * 5), [(3, 5)], min_each=5) is False
    # nothing to mix: an empty grid, or no pairs
    assert grid_mixes(np.array([], dtype=np.int64), [(3, 5)], min_each=1) is False
    assert grid_mixes(np.array([3, 3, 5, 5]), []) is False
    for bad in (0, -1):
        with pytest.raises(ValueError, match="min_each must be at least 1"):
            grid_mixes(np.array([3, 5]), [(3, 5)], min_each=bad)


# ------------------------------------------------------------------------------------------------
# recovery_scores
# ------------------------------------------------------------------------------------------------


def test_both_sides_specific():
    # A should mix (3, 5), B should mix (5, 8).
    # A: [0,1,4,5] = 3,3,5,5 mixes (3,5); [0,1,2,8] = 3,3,3,8 no; [4,5,8,9] = 5,5,8,8 mixes only B's pair
    #    -> A = 1/3
    # B: [4,5,8,9] = 5,5,8,8 mixes (5,8); [0,4,8] = one of each, not at min_each 2 -> B = 1/2
    # score = (1/3 + 1/2) / 2 = 5/12
    result = recovery_scores(
        explanation(A=[[0, 1, 4, 5], [0, 1, 2, 8], [4, 5, 8, 9]], B=[[4, 5, 8, 9], [0, 4, 8]]),
        LABELS,
        mix_A=[[3, 5]],
        mix_B=[[5, 8]],
    )
    assert result["kind"] == {"A": "specific", "B": "specific"}
    assert result["grids_mixing"] == {"A": [True, False, False], "B": [True, False]}
    assert result["A"] == pytest.approx(1 / 3) and result["B"] == pytest.approx(1 / 2)
    assert result["score"] == pytest.approx(5 / 12)
    assert result["min_each"] == 2


@pytest.mark.parametrize("listed", ["A", "B"])
def test_a_side_without_pairs_is_clean_when_it_mixes_none_of_the_other_sides(listed):
    # The listed side should mix (3, 5); the other side is "clean" and is watched for (3, 5) too.
    # listed side: [0,1,4,5] mixes; [0,4,5,6] = 3,5,5,5 has one 3, no -> 1/2
    # clean side: [0,1,4,5] mixes (bad); [8,9,10] = 8s (good); [0,1,2] = 3s (good) -> 2/3
    # score = (1/2 + 2/3) / 2 = 7/12
    clean = "B" if listed == "A" else "A"
    grids = {listed: [[0, 1, 4, 5], [0, 4, 5, 6]], clean: [[0, 1, 4, 5], [8, 9, 10], [0, 1, 2]]}
    pairs = {"mix_A": None, "mix_B": None, f"mix_{listed}": [[3, 5]]}
    result = recovery_scores(explanation(A=grids["A"], B=grids["B"]), LABELS, **pairs)
    assert result["kind"] == {listed: "specific", clean: "clean"}
    # grids_mixing says which grids mix a watched pair, on both kinds of side (not negated for clean)
    assert result["grids_mixing"][listed] == [True, False]
    assert result["grids_mixing"][clean] == [True, False, False]
    assert result[listed] == pytest.approx(1 / 2) and result[clean] == pytest.approx(2 / 3)
    assert result["score"] == pytest.approx(7 / 12)


def test_the_clean_side_is_not_judged_by_pairs_of_its_own():
    # Only A lists pairs, (3, 5). B's grid [4,5,8,9] = 5,5,8,8 mixes (5, 8), which nobody listed: clean.
    result = recovery_scores(explanation(A=[[0, 1, 4, 5]], B=[[4, 5, 8, 9]]), LABELS, [[3, 5]], None)
    assert result["B"] == 1.0 and result["score"] == 1.0


def test_sides_without_concepts_score_zero():
    # A should mix (3, 5) and shows nothing: 0. B (clean) shows [8,9,10]: 1. score = 1/2.
    result = recovery_scores(explanation(A=[], B=[[8, 9, 10]]), LABELS, [[3, 5]], None)
    assert result["A"] == 0.0 and result["grids_mixing"]["A"] == []
    assert result["B"] == 1.0 and result["score"] == 0.5
    # a clean side that shows nothing also scores 0 (documented: it has a kind but no concepts)
    result = recovery_scores(explanation(A=[[0, 1, 4, 5]], B=[]), LABELS, [[3, 5]], None)
    assert (result["A"], result["B"], result["score"]) == (1.0, 0.0, 0.5)
    # a side missing from the explanation altogether counts as no concepts
    missing_B = Explanation("hand", {"A": [concept(1, [0, 1, 4, 5])]})
    result = recovery_scores(missing_B, LABELS, [[3, 5]], [[5, 8]])
    assert result["grids_mixing"]["B"] == []
    assert (result["A"], result["B"], result["score"]) == (1.0, 0.0, 0.5)


def test_the_null_cluster_is_never_scored():
    # A's null cluster mixes (3, 5) but is not shown; the one shown grid, 8s only, does not mix: A = 0.
    null = {"A": concept(0, [0, 1, 4, 5]), "B": None}
    result = recovery_scores(explanation(A=[[8, 9, 10]], B=[], null=null), LABELS, [[3, 5]], [[5, 8]])
    assert result["grids_mixing"]["A"] == [False] and result["A"] == 0.0


def test_min_each_reaches_every_grid():
    # [0,1,2,4,5,6] = three 3s and three 5s: mixes (3, 5) at min_each 3, not at 4
    grids = explanation(A=[[0, 1, 2, 4, 5, 6]], B=[])
    assert recovery_scores(grids, LABELS, [[3, 5]], None, min_each=3)["A"] == 1.0
    at_four = recovery_scores(grids, LABELS, [[3, 5]], None, min_each=4)
    assert at_four["A"] == 0.0 and at_four["min_each"] == 4
    with pytest.raises(ValueError, match="min_each must be at least 1"):
        recovery_scores(grids, LABELS, [[3, 5]], None, min_each=0)


def test_grids_are_read_through_the_labels_of_their_images():
    # the same grid scores differently when the labels say otherwise: the score follows labels[grid]
    grids = explanation(A=[[0, 1, 2, 3]], B=[])
    assert recovery_scores(grids, LABELS, [[3, 5]], None)["A"] == 0.0  # four 3s
    relabelled = LABELS.copy()
    relabelled[[2, 3]] = 5  # images 2 and 3 are now 5s: 3,3,5,5
    assert recovery_scores(grids, relabelled.tolist(), [[3, 5]], None)["A"] == 1.0


def test_bad_planted_pairs_are_rejected():
    grids = explanation(A=[[0, 1, 4, 5]], B=[])
    with pytest.raises(ValueError, match="at least one side"):
        recovery_scores(grids, LABELS, None, None)
    with pytest.raises(ValueError, match="at least one side"):
        recovery_scores(grids, LABELS, [], [])
    with pytest.raises(ValueError, match="mix_A must hold pairs"):
        recovery_scores(grids, LABELS, [[3, 3]], None)
    with pytest.raises(ValueError, match="mix_B must hold pairs"):
        recovery_scores(grids, LABELS, [[3, 5]], [[5, 8, 3]])


# ------------------------------------------------------------------------------------------------
# pair_separability
# ------------------------------------------------------------------------------------------------


def separability_data() -> tuple[np.ndarray, np.ndarray]:
    """15 images of 3, 10 of 5, 10 of 8 on one feature: 5s sit at 1, 3s and 8s both at 0, so a probe
    separates 3 from 5 perfectly and cannot tell 3 from 8 at all."""
    labels = np.array([3] * 15 + [5] * 10 + [8] * 10)
    X = (labels == 5).astype(np.float64)[:, None]
    return X, labels


def test_pair_separability_on_known_features():
    X, labels = separability_data()
    result = pair_separability(X, labels, [[3, 5], (3, 8)])
    # 3 vs 5: one threshold separates them, every out-of-fold prediction is right: 1.0.
    # 3 vs 8: identical features; each stratified training fold holds 12 3s and 8 8s, so the probe
    # always predicts the majority 3: right on the 15 3s of 25 images = 0.6.
    # The 5s are not in the 3-vs-8 probe's data (else it would have a third class to predict).
    assert result["pairs"] == {"3-5": pytest.approx(1.0), "3-8": pytest.approx(0.6)}
    assert result["mean"] == pytest.approx(0.8)


def test_pair_separability_rejects_missing_labels_and_bad_pairs():
    X, labels = separability_data()
    with pytest.raises(ValueError, match="no images of label 7"):
        pair_separability(X, labels, [[3, 7]])
    with pytest.raises(ValueError, match="no images of label 7"):
        pair_separability(X, labels, [[7, 3]])
    with pytest.raises(ValueError, match="pairs must hold pairs"):
        pair_separability(X, labels, [[3, 3]])
    assert np.isnan(pair_separability(X, labels, [])["mean"])
