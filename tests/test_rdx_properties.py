"""Properties RDX must have whatever the implementation: the two directions mirror each other, image
order does not matter, ranks ignore similarity transforms, a planted difference is found and scores
well on BSR, identical representations give nothing, fits are deterministic and leave inputs alone."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group
from sklearn.metrics import adjusted_rand_score

from rdx.methods import RDX
from rdx.methods.neighbourhoods import neighbour_ranks_from_features
from tests import plain_rdx as plain

SIMILARITIES = ("neighborhood", "max_normalized_distance", "zp_local_scaling")


def merged_and_split(seed: int = 0, per_cluster: int = 40, dim: int = 2):
    """Model B separates clusters 0 and 1, which share a centre in model A; cluster 2 is apart in both."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 2], per_cluster)
    centres_B = np.zeros((3, dim))
    centres_B[1, 0], centres_B[2, 1] = 6.0, 12.0
    centres_A = np.zeros((3, dim))
    centres_A[2, 1] = 12.0
    X_A = centres_A[truth] + rng.normal(size=(len(truth), dim))
    X_B = centres_B[truth] + rng.normal(size=(len(truth), dim))
    return X_A, X_B, truth


def blobs(seed: int = 3, per_cluster: int = 30):
    """Five clusters: A (6-D) merges {0, 1}, B (4-D) merges {3, 4}."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(5), per_cluster)
    centres_A = rng.normal(scale=6.0, size=(5, 6))
    centres_A[1] = centres_A[0]
    centres_B = rng.normal(scale=6.0, size=(5, 4))
    centres_B[4] = centres_B[3]
    return (
        centres_A[truth] + rng.normal(size=(len(truth), 6)),
        centres_B[truth] + rng.normal(size=(len(truth), 4)),
        truth,
    )


# ------------------------------------------------------------------------------------------------
# the two directions
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_directions_are_negated_differences_and_reciprocal_affinities(similarity, dtype, rtol):
    X_A, X_B, _ = merged_and_split(seed=1)
    model = RDX(n_concepts=2, similarity=similarity, clustering="pagerank", dtype=dtype, device="cpu")
    model.fit(X_A, X_B)
    D_10, D_01 = model.difference_matrix("10"), model.difference_matrix("01")
    np.testing.assert_array_equal(D_01, -D_10)
    np.testing.assert_allclose(model.affinity_matrix("01") * model.affinity_matrix("10"), 1.0, rtol=rtol)
    np.testing.assert_array_equal(np.diag(D_10), 0.0)
    # locally biased: |D| < 1, so the affinity lies in [e^-beta, e^beta]
    assert np.abs(D_10).max() <= 1.0
    for direction in ("10", "01"):
        affinity = model.affinity_matrix(direction)
        assert affinity.min() >= np.exp(-model.beta) * (1 - rtol) and affinity.max() <= np.exp(model.beta) * (
            1 + rtol
        )


def test_direction_10_affinity_is_large_where_B_is_closer():
    X_A, X_B, _ = merged_and_split(seed=2)
    model = RDX(n_concepts=2, clustering="pagerank", dtype="float64", device="cpu").fit(X_A, X_B)
    R_A, R_B = plain.ranks(X_A), plain.ranks(X_B)
    np.testing.assert_array_equal(np.sign(model.difference_matrix("10")), np.sign(R_B - R_A))
    affinity = model.affinity_matrix("10")
    assert np.all(affinity[R_B < R_A] > 1.0) and np.all(affinity[R_B > R_A] < 1.0)


def test_pairs_cross_label_in_both_models_are_neutral_under_guidance():
    X_A, X_B, truth = merged_and_split(seed=3)
    for similarity in ("neighborhood", "max_normalized_distance"):  # max(S) agrees between the models
        model = RDX(
            n_concepts=2, similarity=similarity, guidance="labels", clustering="pagerank", dtype="float64"
        )
        model.fit(X_A, X_B, truth)
        cross = truth[:, None] != truth[None, :]
        np.testing.assert_array_equal(model.difference_matrix("10")[cross], 0.0)
        np.testing.assert_array_equal(model.affinity_matrix("01")[cross], 1.0)


# ------------------------------------------------------------------------------------------------
# invariances
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clustering", ["spectral", "pagerank"])
def test_permuting_the_images_permutes_the_result(clustering):
    X_A, X_B, _ = blobs()
    perm = np.random.default_rng(0).permutation(len(X_A))
    inverse = np.argsort(perm)
    params = dict(n_concepts=3, clustering=clustering, dtype="float64", device="cpu")
    original = RDX(**params).fit(X_A, X_B)
    permuted = RDX(**params).fit(X_A[perm], X_B[perm])
    for direction, side in (("10", "B"), ("01", "A")):
        np.testing.assert_array_equal(
            permuted.difference_matrix(direction)[np.ix_(inverse, inverse)],
            original.difference_matrix(direction),
        )
        labels = permuted.labels_[direction][inverse]
        assert adjusted_rand_score(original.labels_[direction], labels) == pytest.approx(1.0)
        np.testing.assert_array_equal(labels, original.labels_[direction])  # same order: same m_c
        for before, after in zip(
            original.explanation_.concepts[side], permuted.explanation_.concepts[side], strict=True
        ):
            assert set(perm[after.members].tolist()) == set(before.members.tolist())
            assert set(perm[after.grid].tolist()) == set(before.grid.tolist())


@pytest.mark.parametrize(
    "transform",
    ["scale", "shrink", "translate", "rotate", "all"],
)
def test_ranks_ignore_scaling_translation_and_rotation(transform):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(200, 6))
    rotation = ortho_group.rvs(6, random_state=5)
    transformed = {
        "scale": X * 7.5,
        "shrink": X * 1e-3,
        "translate": X + 250.0,
        "rotate": X @ rotation,
        "all": (X @ rotation) * 3.0 - 40.0,
    }[transform]
    expected = neighbour_ranks_from_features(X, dtype="float64", device="cpu")
    np.testing.assert_array_equal(expected, plain.ranks(X))
    np.testing.assert_array_equal(
        neighbour_ranks_from_features(transformed, dtype="float64", device="cpu"), expected
    )


# ------------------------------------------------------------------------------------------------
# a planted difference
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed, dim", [(0, 2), (1, 2), (2, 5)])
def test_planted_split_is_found_and_scores_well_on_bsr(seed, dim):
    X_A, X_B, truth = merged_and_split(seed=seed, dim=dim)
    explanation = RDX(n_concepts=2, random_state=0).fit(X_A, X_B).explanation_
    grids = {side: [c.grid.tolist() for c in explanation.concepts[side]] for side in ("A", "B")}
    assert all(len(g) == 9 for side in grids for g in grids[side])
    # what B sees and A does not: each grid is one of the clusters B separates
    assert all(len(set(truth[g].tolist())) == 1 for g in grids["B"])
    # what A groups and B does not: some grid mixes clusters 0 and 1
    assert any(set(truth[g].tolist()) == {0, 1} for g in grids["A"])
    scores = plain.silb_bsr(grids, X_A, X_B)
    assert scores["mean"] >= 0.9 and min(scores["A"], scores["B"]) >= 0.85, scores


def test_binary_success_rate_equals_plain_silb():
    from rdx.metrics.bsr import binary_success_rate

    X_A, X_B, _ = merged_and_split(seed=4)
    explanation = RDX(n_concepts=2, random_state=0).fit(X_A, X_B).explanation_
    grids = {side: [c.grid.tolist() for c in explanation.concepts[side]] for side in ("A", "B")}
    got = binary_success_rate(explanation, X_A, X_B, distance="silb")
    expected = plain.silb_bsr(grids, X_A, X_B)
    assert set(got) == {"A", "B", "mean"}
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key  # null grids not scored


# ------------------------------------------------------------------------------------------------
# degenerate input, determinism, inputs left alone
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_identical_representations_have_no_difference(similarity):
    X = np.random.default_rng(6).normal(size=(40, 4))
    explanation = RDX(n_concepts=2, similarity=similarity).fit(X, X.copy()).explanation_
    assert explanation.info["no_difference"] is True
    assert explanation.concepts == {"A": [], "B": []}
    assert explanation.null == {"A": None, "B": None}


def test_same_neighbourhoods_under_a_similarity_transform_have_no_difference():
    X = np.random.default_rng(7).normal(size=(40, 4))
    moved = (X @ ortho_group.rvs(4, random_state=1)) * 2.5 + 10.0
    explanation = RDX(n_concepts=2, dtype="float64").fit(X, moved).explanation_
    assert explanation.info["no_difference"] is True
    assert explanation.concepts == {"A": [], "B": []}


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(clustering="pagerank", grid_strategy="random"),
        dict(clustering="eig_centrality", similarity="zp_local_scaling"),
        dict(null_cluster=False, grid_strategy="max_affinity", random_state=7),
    ],
)
def test_fits_are_deterministic(params):
    X_A, X_B, _ = merged_and_split(seed=5)
    first = RDX(n_concepts=2, **params).fit(X_A, X_B)
    second = RDX(n_concepts=2, **params).fit(X_A, X_B)
    assert first.explanation_.to_dict() == second.explanation_.to_dict()
    for direction in ("10", "01"):
        np.testing.assert_array_equal(first.labels_[direction], second.labels_[direction])
        np.testing.assert_array_equal(first.difference_matrix(direction), second.difference_matrix(direction))


@pytest.mark.parametrize("similarity", SIMILARITIES)
@pytest.mark.parametrize("guidance", [None, "labels"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_does_not_modify_its_inputs(similarity, guidance, dtype):
    X_A, X_B, truth = merged_and_split(seed=6)
    X_A, X_B = X_A.astype(dtype), np.asfortranarray(X_B.astype(dtype))
    copies = X_A.copy(), X_B.copy(), truth.copy()
    model = RDX(n_concepts=2, similarity=similarity, guidance=guidance, clustering="pagerank", dtype=dtype)
    model.fit(X_A, X_B, truth if guidance else None)
    # reading the matrices afterwards must not write back into anything the caller holds
    model.difference_matrix("01")
    model.affinity_matrix("01")
    np.testing.assert_array_equal(X_A, copies[0])
    np.testing.assert_array_equal(X_B, copies[1])
    np.testing.assert_array_equal(truth, copies[2])
    returned = model.difference_matrix("10")
    returned.fill(np.nan)  # the returned matrix is the caller's own copy
    assert np.isfinite(model.difference_matrix("10")).all()
