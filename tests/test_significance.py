"""Significance of concepts: the tight-group null equals the plain BSR, calibrated p-values, power on a
planted group, Benjamini-Hochberg, stability under refits, settings that fail with clear messages."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kstest

import rdx.metrics.significance as significance
from rdx.methods import build_method
from rdx.methods.explanation import Concept, Explanation
from rdx.methods.neighbourhoods import neighbour_ranks_of_rows
from rdx.metrics.bsr import grid_pair_distances, grid_scores
from rdx.metrics.significance import (
    SignificanceSettings,
    bh_qvalues,
    concept_tests,
    null_anchors,
    null_bsr,
    p_value,
    significance_settings,
    stability,
    tight_group_bsr,
    tight_group_ranks,
    tight_groups,
)
from rdx.record import MethodResult


def plain_tight_group_bsr(X_M: np.ndarray, X_O: np.ndarray, anchors: np.ndarray, size: int):
    """The pseudo-grids from the anchors' full rank rows (stable order) and their BSR from the metric's
    own functions, one grid at a time."""
    grids, scores = [], []
    for anchor in anchors:
        ranks = neighbour_ranks_of_rows(X_M, np.array([anchor]))[0]
        grid = np.argsort(ranks, kind="stable")[:size]
        grids.append(grid)
        scores.append(grid_scores(grid_pair_distances(X_M, grid), grid_pair_distances(X_O, grid))["bsr"])
    return np.array(grids), np.array(scores)


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    n, d = 200, 5
    continuous = rng.normal(size=(n, d))
    integers = rng.integers(0, 3, size=(n, d)).astype(np.float64)  # many exactly tied distances
    duplicated = rng.normal(size=(60, d))[rng.integers(0, 60, n)]  # duplicate points: ties at 0
    return {
        "continuous": (continuous, continuous + 0.3 * rng.normal(size=(n, d))),
        "integer ties": (integers, rng.integers(0, 3, size=(n, 3)).astype(np.float64)),
        "duplicates": (duplicated, np.round(duplicated + rng.normal(size=(n, d)), 1)),
    }


@pytest.mark.parametrize("share", [0.0, 1.0], ids=["passes", "candidates"])
@pytest.mark.parametrize("name", list(datasets()))
def test_null_bsr_equals_the_plain_bsr_of_the_same_pseudo_grids(name, share, monkeypatch):
    monkeypatch.setattr(significance, "CANDIDATE_SHARE", share)  # both counting paths
    X_M, X_O = datasets()[name]
    anchors = null_anchors(len(X_M), 60, seed=1)
    for size in (2, 9, 13):
        grids, expected = plain_tight_group_bsr(X_M, X_O, anchors, size)
        np.testing.assert_array_equal(tight_groups(X_M, anchors, size), grids)
        # small batches: several of them, the last one partial
        np.testing.assert_array_equal(tight_group_bsr(X_M, X_O, anchors, size, block_bytes=100_000), expected)
    np.testing.assert_array_equal(
        null_bsr(X_M, X_O, 9, n_null=60, seed=1), plain_tight_group_bsr(X_M, X_O, anchors, 9)[1]
    )


@pytest.mark.parametrize("name", list(datasets()))
def test_tight_group_ranks_are_the_grids_silb_distances_minus_one_in_both_models(name):
    """The ranks the null is built from give the metric's own SILB distances of each pseudo-grid, so any
    statistic of them (BSR, TSD) equals the metric's."""
    X_M, X_O = datasets()[name]
    anchors = null_anchors(len(X_M), 40, seed=2)
    ranks_M, ranks_O = tight_group_ranks(X_M, X_O, anchors, 9, block_bytes=100_000)
    for grid, rank_M, rank_O in zip(tight_groups(X_M, anchors, 9), ranks_M, ranks_O, strict=True):
        D_M, D_O = grid_pair_distances(X_M, grid), grid_pair_distances(X_O, grid)
        np.testing.assert_array_equal(rank_M + 1, D_M)
        np.testing.assert_array_equal(rank_O + 1, D_O)
        off_diagonal = ~np.eye(9, dtype=bool)
        assert np.mean((rank_O - rank_M)[off_diagonal]) == pytest.approx(
            grid_scores(D_M, D_O)["tsd"], abs=1e-12
        )


def test_null_anchors_are_seeded_and_repeat_only_beyond_n():
    anchors = null_anchors(50, 50, seed=3)
    assert sorted(anchors.tolist()) == list(range(50))
    np.testing.assert_array_equal(anchors, null_anchors(50, 50, seed=3))
    assert len(np.unique(null_anchors(50, 200, seed=3))) < 200
    with pytest.raises(ValueError, match="2..N"):
        null_bsr(np.zeros((5, 2)), np.zeros((5, 2)), size=6)


def test_p_values_of_fresh_tight_groups_are_uniform_when_the_other_model_is_only_noise():
    """O = M + isotropic noise at 0.3 of the feature spread (8-d, N = 1,500): BSR then takes ~45 values
    with no atom above ~6 %, so the discreteness of p stays below the KS test's resolution at n = 200.
    Measured over seeds 0..9 this test rejects at 0.01 once (seed 2): the 200 groups overlap and share
    neighbourhoods with the null's, which the KS test's independence assumption ignores."""
    rng = np.random.default_rng(0)
    X_M = rng.normal(size=(1500, 8))
    X_O = X_M + 0.3 * rng.normal(size=X_M.shape)
    anchors = null_anchors(1500, 1000, seed=0)
    null = tight_group_bsr(X_M, X_O, anchors, 9)
    fresh = np.random.default_rng(100).choice(np.setdiff1d(np.arange(1500), anchors), 200, replace=False)
    p = np.array([p_value(observed, null) for observed in tight_group_bsr(X_M, X_O, fresh, 9)])
    assert kstest(p, "uniform").pvalue > 0.01
    assert np.mean(p <= 0.05) <= 0.1


def planted_group(seed: int = 0, n: int = 1500, d: int = 8, group: int = 9):
    """Model A gathers ``group`` images (0.6 % of N) into one tight spot that model B leaves scattered;
    elsewhere B is A plus small noise. (The make_pair data of scripts/bench_rdx.py do not serve here: its
    planted merge and split cover half of the images, so tight groups there fill the null's upper tail.)"""
    rng = np.random.default_rng(seed)
    X_A = 3.0 * rng.normal(size=(n, d))
    X_B = X_A + 0.05 * rng.normal(size=(n, d))
    X_A[:group] = X_A[0] + 0.05 * rng.normal(size=(group, d))
    return X_A, X_B


def test_a_planted_group_is_significant_and_an_ordinary_tight_group_is_not():
    X_A, X_B = planted_group()
    ordinary = tight_groups(X_A, np.array([700]), 9)[0]
    explanation = Explanation(
        "hand",
        {"A": [Concept(1, np.arange(9), np.arange(9), 1.0), Concept(2, ordinary, ordinary, 0.5)], "B": []},
    )
    tests = concept_tests(explanation, X_A, X_B, n_null=1000, seed=0)
    planted, plain = tests["concepts"]["A", 1], tests["concepts"]["A", 2]
    # the null's own anchors inside the planted group (~0.6 % of 1,000) score as high: p cannot go much
    # below the group's share of the images
    assert planted["bsr"] > 0.95 and planted["p"] < 0.02 and planted["q"] < 0.05
    assert plain["p"] > 0.05 and plain["q"] > 0.05


def ten_clusters_one_merge_each_way(seed: int = 0, per_cluster: int = 40, d: int = 8):
    """Ten clusters; model A merges clusters 0 and 1 (same centre), model B merges 2 and 3. Within a
    cluster both models place the images identically, so the only differences are the two merges."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(10), per_cluster)
    centres_A, centres_B = 8.0 * rng.normal(size=(2, 10, d))
    centres_B[:] = centres_A
    centres_A[1], centres_B[3] = centres_A[0], centres_B[2]
    within = rng.normal(size=(len(truth), d))
    return centres_A[truth] + within, centres_B[truth] + within, truth


def test_a_merge_grid_scores_at_most_its_share_of_cross_pairs_so_the_test_misses_it():
    """What the specified test gets wrong (docs/significance.md): a grid of a merge that A makes and B
    does not scores at most its share of pairs across the merged clusters, since a pair from one cluster
    has at least as many images before it in A (both clusters) as in B (its own cluster). Tight groups
    where B splits what A keeps apart score near 1, so the merge is not significant; the split-type
    grid, one of the clusters B merges, is."""
    X_A, X_B, truth = ten_clusters_one_merge_each_way()
    merge = np.concatenate([np.flatnonzero(truth == 0)[:5], np.flatnonzero(truth == 1)[:4]])
    split = np.flatnonzero(truth == 3)[:9]
    explanation = Explanation(
        "hand", {"A": [Concept(1, merge, merge, 1.0), Concept(2, split, split, 1.0)], "B": []}
    )
    tests = concept_tests(explanation, X_A, X_B, n_null=400, seed=0)
    merged, split_type = tests["concepts"]["A", 1], tests["concepts"]["A", 2]
    assert merged["bsr"] <= 2 * 5 * 4 / (9 * 8)
    assert merged["p"] > 0.1 and merged["q"] > 0.1
    assert split_type["bsr"] > 0.9 and split_type["p"] < merged["p"]


def merged_and_split(seed: int = 0, per_cluster: int = 40):
    """As in test_rdx: model B separates clusters 0 and 1, model A merges them."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 2], per_cluster)
    centres_B = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 12.0]])
    centres_A = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 12.0]])
    return centres_A[truth] + rng.normal(size=(120, 2)), centres_B[truth] + rng.normal(size=(120, 2)), truth


@pytest.fixture(scope="module")
def fitted_rdx():
    X_A, X_B, truth = merged_and_split()
    explanation = build_method("rdx", n_concepts=2, random_state=0).fit(X_A, X_B).explanation_
    return explanation, X_A, X_B, truth


def test_concept_tests_cover_every_shown_concept_with_one_null_per_side_and_size(fitted_rdx, monkeypatch):
    explanation, X_A, X_B, _ = fitted_rdx
    draws = []
    original = significance.null_bsr
    monkeypatch.setattr(significance, "null_bsr", lambda *a, **k: draws.append(a[2]) or original(*a, **k))
    tests = concept_tests(explanation, X_A, X_B, n_null=200, seed=4)
    assert set(tests["concepts"]) == {("A", 1), ("A", 2), ("B", 1), ("B", 2)}  # the null clusters never
    assert sorted(tests["nulls"]) == [("A", 9), ("B", 9)] and draws == [9, 9]
    assert tests["settings"] == {"n_null": 200, "seed": 4, "distance": "silb"}
    for (side, index), entry in tests["concepts"].items():
        grid = explanation.concepts[side][index - 1].grid
        other = {"A": X_B, "B": X_A}[side]
        own = {"A": X_A, "B": X_B}[side]
        assert (
            entry["bsr"]
            == grid_scores(grid_pair_distances(own, grid), grid_pair_distances(other, grid))["bsr"]
        )
        assert entry["p"] == p_value(entry["bsr"], tests["nulls"][side, 9])
    q = bh_qvalues(np.array([entry["p"] for entry in tests["concepts"].values()]))
    np.testing.assert_array_equal([entry["q"] for entry in tests["concepts"].values()], q)


def test_a_one_image_grid_gets_nan_and_does_not_count_in_the_q_values():
    X = np.random.default_rng(1).normal(size=(40, 3))
    explanation = Explanation(
        "hand",
        {
            "A": [Concept(1, np.array([3]), np.array([3]), 1.0)],
            "B": [Concept(1, np.arange(5), np.arange(5), 1.0)],
        },
    )
    tests = concept_tests(explanation, X, X + 0.1, n_null=20)
    assert np.isnan(tests["concepts"]["A", 1]["p"]) and np.isnan(tests["concepts"]["A", 1]["q"])
    assert tests["concepts"]["B", 1]["q"] == tests["concepts"]["B", 1]["p"]  # m = 1
    assert list(tests["nulls"]) == [("B", 5)]


def test_p_value_formula_on_a_tiny_null():
    null = np.array([0.1, 0.5, 0.5, 0.9])
    assert p_value(0.5, null) == 4 / 5  # 1 + three null values >= 0.5
    assert p_value(0.95, null) == 1 / 5
    assert p_value(0.0, null) == 1.0
    assert np.isnan(p_value(float("nan"), null))


def test_bh_qvalues_by_hand_monotone_capped_and_nan_tolerant():
    p = np.array([0.01, 0.04, 0.03, 0.20, np.nan])
    # m = 4: sorted 0.01, 0.03, 0.04, 0.20 -> 0.04, 0.06, 0.0533, 0.20 -> running min from the top
    expected = [0.04, 0.16 / 3, 0.16 / 3, 0.20, np.nan]
    np.testing.assert_allclose(bh_qvalues(p), expected)
    rng = np.random.default_rng(0)
    many = rng.uniform(size=300) ** 2
    q = bh_qvalues(many)
    order = np.argsort(many)
    assert np.all(np.diff(q[order]) >= 0) and np.all(q >= many * (1 - 1e-12)) and q.max() <= 1.0
    assert bh_qvalues(np.array([0.9, 0.95])).tolist() == [0.95, 0.95]
    assert np.isnan(bh_qvalues(np.array([np.nan]))).all()


def test_stability_is_one_when_the_refit_reproduces_the_concepts():
    rng = np.random.default_rng(0)
    members = {"A": rng.integers(-1, 4, size=300), "B": rng.integers(0, 3, size=300)}
    result = stability(members, lambda indices: {side: codes[indices] for side, codes in members.items()})
    assert set(result["concepts"]) == {("A", 1), ("A", 2), ("A", 3), ("B", 1), ("B", 2)}
    assert all(value == 1.0 for value in result["concepts"].values())
    assert result["subsamples"].shape == (20, 240)
    assert all(np.all(np.diff(row) > 0) for row in result["subsamples"])


def test_stability_of_random_refits_is_low():
    """Three concepts of ~100 of 300 images against a random refit into three: the best Jaccard is about
    (1/9) / (1/3 + 1/3 - 1/9) = 0.2, a little more as the best of three; 0.35 leaves a wide margin."""
    rng = np.random.default_rng(0)
    members = {"A": rng.integers(1, 4, size=300), "B": rng.integers(1, 4, size=300)}
    refits = np.random.default_rng(1)
    result = stability(members, lambda indices: {s: refits.integers(1, 4, size=len(indices)) for s in "AB"})
    values = np.array(list(result["concepts"].values()))
    assert np.all(values < 0.35) and np.all(values > 0.1)
    assert all(len(v) == 20 for v in result["per_refit"].values())


def test_stability_ignores_refits_without_the_concept_and_checks_the_refit():
    members = {"A": np.array([1] + [2] * 9)}  # concept 1 has one image: absent from some subsamples
    result = stability(members, lambda idx: {"A": members["A"][idx]}, n_refits=10, fraction=0.5)
    per_refit = result["per_refit"]["A", 1]
    assert np.isnan(per_refit).any() and result["concepts"]["A", 1] == 1.0
    with pytest.raises(ValueError, match="refit must return"):
        stability(members, lambda idx: {"A": np.ones(3)}, n_refits=2)


def test_stability_with_rdx_refits_on_a_planted_merge(fitted_rdx):
    explanation, X_A, X_B, _ = fitted_rdx
    n = len(X_A)

    def codes(fitted, size):
        return MethodResult.from_explanation(
            "rdx", "rdx", fitted, np.zeros(size, dtype=np.int64), metrics={}
        ).members

    def refit(indices):
        model = build_method("rdx", n_concepts=2, random_state=0).fit(X_A[indices], X_B[indices])
        return codes(model.explanation_, len(indices))

    result = stability(codes(explanation, n), refit, n_refits=3)
    assert set(result["concepts"]) == {("A", 1), ("A", 2), ("B", 1), ("B", 2)}
    # B's two concepts are the two clusters A merges: every refit finds them again
    assert result["concepts"]["B", 1] > 0.8 and result["concepts"]["B", 2] > 0.8


def test_settings_defaults_and_stability_choice():
    settings = significance_settings(None)
    assert settings == SignificanceSettings() and settings.n_null == 1000 and settings.alpha == 0.05
    assert settings.wants_stability("rdx") and settings.wants_stability("rdx_aligned")
    assert not settings.wants_stability("kmeans")
    assert significance_settings({"stability": "all"}).wants_stability("kmeans")
    assert not significance_settings({"stability": "none"}).wants_stability("rdx")


@pytest.mark.parametrize(
    "config, message",
    [
        ({"n_null": 9}, "significance.n_null must be at least 10"),
        ({"n_refits": 1}, "significance.n_refits must be at least 2"),
        ({"fraction": 0.0}, r"significance.fraction must lie in \(0, 1\]"),
        ({"fraction": 1.5}, r"significance.fraction must lie in \(0, 1\]"),
        ({"alpha": 1.0}, r"significance.alpha must lie in \(0, 1\)"),
        ({"alpha": 0.0}, r"significance.alpha must lie in \(0, 1\)"),
        ({"stability": "some"}, "significance.stability must be one of"),
        ({"n_nul": 100}, r"significance: unknown setting\(s\) \['n_nul'\]"),
    ],
)
def test_bad_settings_fail_with_their_key(config, message):
    with pytest.raises(ValueError, match=message):
        significance_settings(config)
