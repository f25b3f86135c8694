"""NLMCD baseline: UMAP + HDBSCAN per model, concepts chosen by cross-model disagreement.

The first UMAP fit of the session compiles numba code (~15 s on 2 cores); the module-scoped fit below
pays it once, every later fit takes about a second at N=300.
"""

from __future__ import annotations

import numpy as np
import pytest

from rdx.methods import build_method
from rdx.methods.baselines.nlmcd import (
    NLMCDBaseline,
    cross_model_disagreement,
    most_disagreeing_clusters,
    noise_as_singletons,
)
from rdx.methods.explanation import Concept, Explanation

N_PER_GROUP = 50


def two_models(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Six groups of 50 images. Model A (16-d) merges groups 0 and 1, which model B (12-d) separates;
    model B merges groups 4 and 5, which model A separates. Groups 2 and 3 are separate in both."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(6), N_PER_GROUP)
    centres_A = rng.normal(size=(6, 16)) * 8
    centres_B = rng.normal(size=(6, 12)) * 8
    centres_A[1] = centres_A[0]
    centres_B[5] = centres_B[4]
    X_A = centres_A[groups] + rng.normal(size=(len(groups), 16))
    X_B = centres_B[groups] + rng.normal(size=(len(groups), 12))
    return X_A, X_B, groups


@pytest.fixture(scope="module")
def fitted() -> tuple[NLMCDBaseline, np.ndarray, np.ndarray, np.ndarray]:
    X_A, X_B, groups = two_models()
    return NLMCDBaseline(n_concepts=3, random_state=0).fit(X_A, X_B), X_A, X_B, groups


# ------------------------------------------------------------------------------------------------
# the small functions
# ------------------------------------------------------------------------------------------------


def test_noise_as_singletons_gives_each_noise_point_its_own_label():
    relabelled = noise_as_singletons(np.array([0, -1, 1, -1, 0]))
    np.testing.assert_array_equal(relabelled, [0, 2, 1, 3, 0])
    np.testing.assert_array_equal(noise_as_singletons(np.array([-1, -1])), [0, 1])


def test_cross_model_disagreement_counts_separated_pairs():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, -1])
    other = np.array([5, 5, 6, 6, 7, 7, 7, 7, 7])
    scores = cross_model_disagreement(labels, other)
    assert set(scores) == {0, 1}  # noise gets no score
    assert scores[1] == 0.0  # kept together (the other model adding a point does not count)
    assert scores[0] == pytest.approx(1 - 4 / 12)  # split 2 + 2: 4 of 12 ordered pairs together


def test_cross_model_disagreement_treats_other_noise_as_singletons():
    labels = np.array([0, 0, 0, 0])
    assert cross_model_disagreement(labels, np.array([-1, -1, -1, -1]))[0] == 1.0
    assert cross_model_disagreement(labels, np.array([3, 3, -1, -1]))[0] == pytest.approx(1 - 2 / 12)


def test_most_disagreeing_clusters_breaks_ties_by_size_then_label():
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 2, 3, 3])
    disagreement = {0: 0.5, 1: 0.2, 2: 0.2, 3: 0.9}
    assert most_disagreeing_clusters(labels, disagreement, 4) == [3, 0, 1, 2]
    assert most_disagreeing_clusters(labels, {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0}, 2) == [1, 2]


# ------------------------------------------------------------------------------------------------
# end to end
# ------------------------------------------------------------------------------------------------


def test_each_side_leads_with_the_cluster_the_other_model_splits(fitted):
    model, _, _, groups = fitted
    for side, merged in (("A", {0, 1}), ("B", {4, 5})):
        top = model.explanation_.concepts[side][0]
        assert set(groups[top.members].tolist()) == merged
        assert top.size == 2 * N_PER_GROUP
        assert top.score == pytest.approx(1 - 2 * 50 * 49 / (100 * 99))  # split in halves
        assert all(c.score < top.score for c in model.explanation_.concepts[side][1:])


def test_explanation_types_and_shapes(fitted):
    model, X_A, _, _ = fitted
    explanation = model.explanation_
    assert isinstance(explanation, Explanation) and explanation.method == "nlmcd"
    n = X_A.shape[0]
    for side in ("A", "B"):
        concepts = explanation.concepts[side]
        assert [c.index for c in concepts] == [1, 2, 3]
        scores = [c.score for c in concepts]
        assert scores == sorted(scores, reverse=True)
        for concept in concepts:
            assert isinstance(concept, Concept) and isinstance(concept.score, float)
            assert concept.members.dtype == np.int64 and concept.grid.dtype == np.int64
            assert len(concept.grid) == 9 and set(concept.grid) <= set(concept.members)
            assert np.all(model.labels_[side][concept.members] == model.labels_[side][concept.members[0]])
        assert model.labels_[side].shape == (n,)
        info = explanation.info[side]
        assert info["embedding_dim"] == {"A": 16, "B": 12}[side]  # min(50, d, N - 2)
        assert info["n_concepts_returned"] == 3 and "note" not in info
    explanation.to_dict(labels=np.zeros(n, dtype=np.int64))  # serialisable


def test_grid_is_the_members_nearest_the_cluster_mean(fitted):
    model, X_A, _, _ = fitted
    concept = model.explanation_.concepts["A"][0]
    distances = np.linalg.norm(X_A[concept.members] - X_A[concept.members].mean(axis=0), axis=1)
    np.testing.assert_array_equal(concept.grid, concept.members[np.argsort(distances, kind="stable")[:9]])


def test_deterministic_for_a_fixed_random_state(fitted):
    model, X_A, X_B, _ = fitted
    again = NLMCDBaseline(n_concepts=3, random_state=0).fit(X_A, X_B)
    for side in ("A", "B"):
        np.testing.assert_array_equal(again.labels_[side], model.labels_[side])
        for first, second in zip(
            model.explanation_.concepts[side], again.explanation_.concepts[side], strict=True
        ):
            np.testing.assert_array_equal(first.members, second.members)
            np.testing.assert_array_equal(first.grid, second.grid)
            assert first.score == second.score


def test_inputs_are_not_modified():
    X_A, X_B, _ = two_models(seed=1)
    X_A, X_B = X_A.astype(np.float32), X_B.astype(np.float32)  # the dtype UMAP works in: no silent copy
    copies = X_A.copy(), X_B.copy()
    NLMCDBaseline(n_concepts=2).fit(X_A, X_B)
    np.testing.assert_array_equal(X_A, copies[0])
    np.testing.assert_array_equal(X_B, copies[1])


def test_fewer_clusters_than_requested_returns_those_there_are():
    rng = np.random.default_rng(2)
    groups = np.repeat([0, 1], 60)
    X_A = np.array([[0.0] * 8, [20.0] * 8])[groups] + rng.normal(size=(120, 8))
    X_B = np.array([[0.0] * 6, [20.0] * 6])[groups] + rng.normal(size=(120, 6))
    explanation = NLMCDBaseline(n_concepts=3).fit(X_A, X_B).explanation_
    for side in ("A", "B"):
        assert len(explanation.concepts[side]) == 2
        assert explanation.info[side]["n_concepts_returned"] == 2
        assert "only 2 cluster" in explanation.info[side]["note"]


def test_no_clusters_raises_with_advice():
    X_A, X_B, _ = two_models(seed=3)
    # no cluster can hold 200 of 300 images, and HDBSCAN never returns the whole set as one cluster
    with pytest.raises(ValueError, match="smaller min_cluster_size"):
        NLMCDBaseline(min_cluster_size=200).fit(X_A, X_B)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_concepts": 301}, "larger than the number of samples"),
        ({"n_concepts": 0}, "n_concepts must be a positive integer"),
        ({"n_components": 1}, "n_components must be an integer >= 2"),
        ({"min_cluster_size": 1}, "min_cluster_size must be an integer >= 2"),
        ({"min_cluster_size": 301}, "min_cluster_size=301 is larger than the number of images"),
        ({"n_neighbors": 1}, "n_neighbors must be an integer >= 2"),
        ({"grid_size": 0}, "grid_size must be a positive integer"),
    ],
)
def test_bad_parameters_raise_before_any_fitting(params, match):
    X_A, X_B, _ = two_models()
    with pytest.raises(ValueError, match=match):
        NLMCDBaseline(**params).fit(X_A, X_B)


def test_bad_inputs_raise():
    X_A, X_B, _ = two_models()
    with pytest.raises(ValueError, match="same images"):
        NLMCDBaseline().fit(X_A, X_B[:-1])


def test_registered_under_its_name():
    model = build_method("nlmcd", n_concepts=2, min_cluster_size=5)
    assert isinstance(model, NLMCDBaseline) and model.name == "nlmcd"
    assert model.n_concepts == 2 and model.min_cluster_size == 5 and model.n_components == 50
