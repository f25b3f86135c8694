"""RDX against the plain float64 reference in ``tests/plain_rdx.py``, written from the spec.

Every variant (similarity x difference x guidance x reference_compat) must give the same difference and
affinity matrices; every clustering the same ordered labels; every grid strategy the same grids. The
float32 default must agree with float64 up to the rounding of near-tied neighbours.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from rdx.methods import RDX
from rdx.methods.neighbourhoods import neighbour_ranks, neighbour_ranks_from_features, similarity_matrices
from rdx.methods.rdx import MAX_EXPONENT, spectral_labels
from tests import plain_rdx as plain

RTOL, ATOL = 1e-9, 1e-12
SIDE_OF_DIRECTION = {"10": "B", "01": "A"}


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------


def planted(seed: int = 0, per_cluster: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-D, four clusters: B separates {0, 1} which A merges; A separates {2, 3} which B merges."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 2, 3], per_cluster)
    centres_A = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 12.0], [7.0, 12.0]])
    centres_B = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 12.0], [0.0, 12.0]])
    X_A = centres_A[truth] + rng.normal(size=(len(truth), 2))
    X_B = centres_B[truth] + rng.normal(size=(len(truth), 2))
    return X_A, X_B, truth


def blobs(seed: int = 1, per_cluster: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Five clusters in 6-D (A) and 4-D (B): A merges {0, 1}, B merges {3, 4}."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(5), per_cluster)
    centres_A = rng.normal(scale=6.0, size=(5, 6))
    centres_A[1] = centres_A[0]
    centres_B = rng.normal(scale=6.0, size=(5, 4))
    centres_B[4] = centres_B[3]
    X_A = centres_A[truth] + rng.normal(size=(len(truth), 6))
    X_B = centres_B[truth] + rng.normal(size=(len(truth), 4))
    return X_A, X_B, truth


def gaussian(seed: int = 2, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """No structure at all; three random labels for guidance."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)) * 3 + 50, rng.normal(size=(n, 3)), rng.integers(0, 3, n)


DATASETS = {"planted": planted, "blobs": blobs, "gaussian": gaussian}
# Per dataset: parameters that change between datasets, so gamma's default and explicit values both run.
DATASET_PARAMS = {"planted": {}, "blobs": {"gamma": 0.1}, "gaussian": {"gamma": 0.05, "beta": 2.0}}


@functools.cache
def data(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X_A, X_B, y = DATASETS[name]()
    for array in (X_A, X_B, y):
        array.setflags(write=False)  # a fit that writes into its inputs fails loudly
    return X_A, X_B, y


@functools.cache
def plain_fit(name: str, guided: bool = False, **params) -> plain.PlainRDX:
    X_A, X_B, y = data(name)
    return plain.PlainRDX(**{**DATASET_PARAMS[name], **params}).fit(X_A, X_B, y if guided else None)


@functools.cache
def fitted(name: str, guided: bool = False, **params) -> tuple[RDX, plain.PlainRDX]:
    """(RDX float64 fit, plain reference with the same parameters) on a dataset; cached per module."""
    X_A, X_B, y = data(name)
    model = RDX(
        dtype="float64",
        device="cpu",
        guidance="labels" if guided else None,
        **{**DATASET_PARAMS[name], **params},
    )
    model.fit(X_A, X_B, y if guided else None)
    grid_params = ("grid_size", "grid_strategy")
    return model, plain_fit(name, guided, **{k: v for k, v in params.items() if k not in grid_params})


# ------------------------------------------------------------------------------------------------
# ranks and per-model similarities
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["planted", "blobs", "gaussian"])
def test_neighbour_ranks_equal_plain_double_argsort(name):
    for X in data(name)[:2]:
        expected = plain.ranks(X)
        np.testing.assert_array_equal(
            neighbour_ranks_from_features(X, dtype="float64", device="cpu"), expected
        )
        np.testing.assert_array_equal(neighbour_ranks(plain.distances(X)), expected)


def test_neighbour_ranks_break_exact_ties_by_index():
    # Integer points: many pairs at exactly equal distances (exact in float64). The spec asks for a
    # stable order, and the docstring promises ties broken by index, as the plain double argsort does.
    # The 26th point makes the column means non-representable, so centring must not perturb the ties.
    grid_points = np.array([[i, j] for i in range(5) for j in range(5)] + [[7, 3]], dtype=np.float64)
    expected = plain.ranks(grid_points)
    np.testing.assert_array_equal(neighbour_ranks_from_features(grid_points, "float64", "cpu"), expected)


@pytest.mark.parametrize("name", ["planted", "gaussian"])
@pytest.mark.parametrize(
    "kind, reference_compat",
    [
        ("neighborhood", False),
        ("max_normalized_distance", False),
        ("zp_local_scaling", False),
        ("zp_local_scaling", True),
    ],
)
def test_similarity_matrices_equal_plain(name, kind, reference_compat):
    X_A, X_B, _ = data(name)
    S_A, S_B = similarity_matrices(
        X_A, X_B, kind=kind, dtype="float64", device="cpu", reference_compat=reference_compat
    )
    expected_A, expected_B = plain.similarities(X_A, X_B, kind, reference_compat=reference_compat)
    if kind == "neighborhood":
        np.testing.assert_array_equal(S_A, expected_A)
        np.testing.assert_array_equal(S_B, expected_B)
    else:
        np.testing.assert_allclose(S_A, expected_A, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(S_B, expected_B, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------------------------------------
# difference and affinity matrices, every variant
# ------------------------------------------------------------------------------------------------

VARIANTS = [
    (similarity, difference, normalize, compat)
    for similarity in ("neighborhood", "max_normalized_distance", "zp_local_scaling")
    for difference, normalize in (("locally_biased", False), ("standard", False), ("standard", True))
    for compat in ((False, True) if similarity == "zp_local_scaling" else (False,))
]


@pytest.mark.parametrize("name", ["planted", "gaussian"])
@pytest.mark.parametrize("guided", [False, True], ids=["unguided", "guided"])
@pytest.mark.parametrize("similarity, difference, normalize, compat", VARIANTS)
def test_difference_and_affinity_matrices_equal_plain(
    name, guided, similarity, difference, normalize, compat
):
    X_A, X_B, y = data(name)
    params = dict(
        similarity=similarity,
        difference=difference,
        normalize_difference=normalize,
        reference_compat=compat,
        clustering="pagerank",  # the matrices do not depend on the clustering; this one is cheap
        **DATASET_PARAMS[name],
    )
    reference = plain.PlainRDX(**params).matrices(X_A, X_B, y if guided else None)
    model = RDX(dtype="float64", device="cpu", guidance="labels" if guided else None, **params)
    exponent = model.beta * max(np.abs(reference.difference_[d]).max() for d in ("10", "01"))
    if exponent > MAX_EXPONENT:
        # an unnormalised standard difference overflows exp(-beta D) (documented limit e^80): a clear
        # error instead of inf or a matrix no eigensolver converges on
        with pytest.raises(ValueError, match="overflow"):
            model.fit(X_A, X_B, y if guided else None)
        return
    model.fit(X_A, X_B, y if guided else None)
    for direction in ("10", "01"):
        np.testing.assert_allclose(
            model.difference_matrix(direction), reference.difference_[direction], rtol=RTOL, atol=ATOL
        )
        np.testing.assert_allclose(
            model.affinity_matrix(direction), reference.affinity_[direction], rtol=RTOL, atol=ATOL
        )
    if guided:
        np.testing.assert_array_equal(model.guide_labels_["A"], y)
        np.testing.assert_array_equal(model.guide_labels_["B"], y)
    if difference == "locally_biased":
        expected_gamma = DATASET_PARAMS[name].get("gamma", 80.0 / len(X_A))
        assert model.gamma_ == pytest.approx(expected_gamma, rel=1e-15)


# ------------------------------------------------------------------------------------------------
# clustering: ordered labels and cluster affinities
# ------------------------------------------------------------------------------------------------

CLUSTERINGS = {
    "spectral_null": dict(clustering="spectral", null_cluster=True),
    "spectral_no_null": dict(clustering="spectral", null_cluster=False),
    "pagerank": dict(clustering="pagerank"),
    "eig_centrality": dict(clustering="eig_centrality"),
}
LABEL_VARIANTS = {
    "ranks_locally_biased": dict(similarity="neighborhood"),
    "max_normalized_locally_biased": dict(similarity="max_normalized_distance"),
    "zp_locally_biased": dict(similarity="zp_local_scaling"),
    "ranks_standard_normalised": dict(
        similarity="neighborhood", difference="standard", normalize_difference=True
    ),
}


def assert_same_ordered_labels(
    labels: np.ndarray, expected: np.ndarray, means: list[float], what: str
) -> None:
    assert adjusted_rand_score(expected, labels) == pytest.approx(1.0), f"{what}: clusterings differ"
    gaps = np.diff(sorted(means))
    if len(gaps) == 0 or gaps.min() > 1e-9:  # the order is well defined
        np.testing.assert_array_equal(labels, expected, err_msg=f"{what}: cluster order differs")


# Spectral fits are the slow part (k-means, 10 initialisations): every similarity with the paper's
# null cluster, the no-null variant once; the greedy clusterings are cheap and run on every variant.
LABEL_CASES = (
    [("spectral_null", variant) for variant in LABEL_VARIANTS]
    + [("spectral_no_null", "ranks_locally_biased")]
    + [(greedy, variant) for greedy in ("pagerank", "eig_centrality") for variant in LABEL_VARIANTS]
)


@pytest.mark.parametrize("name", ["planted", "blobs"])
@pytest.mark.parametrize("clustering, variant", LABEL_CASES)
def test_ordered_labels_equal_plain(name, variant, clustering):
    params = {**LABEL_VARIANTS[variant], **CLUSTERINGS[clustering], "n_concepts": 3}
    model, reference = fitted(name, **params)
    for direction in ("10", "01"):
        expected = reference.labels_[direction]
        means = plain.cluster_means(reference.affinity_[direction], expected)
        assert_same_ordered_labels(
            model.labels_[direction],
            expected,
            list(means.values()),
            f"{name} {variant} {clustering} {direction}",
        )
        # cluster_affinity_ holds m_c per new label, computed on the unsymmetrised affinity
        own_means = plain.cluster_means(reference.affinity_[direction], model.labels_[direction])
        np.testing.assert_allclose(
            model.cluster_affinity_[direction], [own_means[c] for c in sorted(own_means)], rtol=RTOL
        )
        if clustering.startswith("spectral"):
            assert len(np.unique(model.labels_[direction])) == model.n_clusters
            assert np.all(np.diff(model.cluster_affinity_[direction]) >= 0)  # ascending: null first
        else:
            sizes = np.bincount(model.labels_[direction])
            assert np.all(sizes[1:] == 9), "greedy clusters hold cluster_size images each"
            assert np.all(np.diff(model.cluster_affinity_[direction][1:]) >= 0)


@pytest.mark.parametrize("random_state", [0, 3])
def test_spectral_labels_equal_sklearn_spectral_clustering(random_state):
    # The docstring of spectral_labels promises sklearn's result. Where k-means has near-tied optima
    # (this affinity), that needs k-means seeded as sklearn seeds it, not only the same embedding.
    reference = plain_fit("planted", similarity="max_normalized_distance", clustering="pagerank")
    for direction in ("10", "01"):
        affinity = reference.affinity_[direction]
        got = spectral_labels(affinity, 4, random_state)
        expected = plain.spectral(affinity, 4, random_state)
        assert adjusted_rand_score(expected, got) == pytest.approx(1.0), direction


@pytest.mark.parametrize("clustering", ["spectral_null", "pagerank"])
def test_guided_labels_equal_plain(clustering):
    model, reference = fitted("blobs", guided=True, n_concepts=3, **CLUSTERINGS[clustering])
    for direction in ("10", "01"):
        expected = reference.labels_[direction]
        means = plain.cluster_means(reference.affinity_[direction], expected)
        assert_same_ordered_labels(
            model.labels_[direction], expected, list(means.values()), f"guided {direction}"
        )


@pytest.mark.parametrize("clustering", ["pagerank", "eig_centrality"])
def test_greedy_clusters_of_other_sizes_equal_plain(clustering):
    model, reference = fitted("gaussian", clustering=clustering, n_concepts=4, cluster_size=5)
    for direction in ("10", "01"):
        np.testing.assert_array_equal(model.labels_[direction], reference.labels_[direction])
        assert np.bincount(model.labels_[direction]).tolist()[1:] == [5, 5, 5, 5]


@pytest.mark.parametrize("clustering", ["pagerank", "eig_centrality"])
def test_greedy_clustering_shows_k_concepts_when_every_image_is_assigned(clustering):
    # N = 20 <= k * cluster_size: the third seeded cluster takes the last 2 images and no rest is left.
    # Label 0 is the unassigned rest (none here); all k seeded clusters are concepts, none is hidden.
    rng = np.random.default_rng(8)
    X_A, X_B = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    model = RDX(n_concepts=3, clustering=clustering, dtype="float64", device="cpu").fit(X_A, X_B)
    reference = plain.PlainRDX(n_concepts=3, clustering=clustering).fit(X_A, X_B)
    for direction, side in SIDE_OF_DIRECTION.items():
        np.testing.assert_array_equal(model.labels_[direction], reference.labels_[direction])
        shown = model.explanation_.concepts[side]
        assert sorted(c.size for c in shown) == [2, 9, 9], f"{direction}: a seeded cluster was hidden as null"


# ------------------------------------------------------------------------------------------------
# grids
# ------------------------------------------------------------------------------------------------

DETERMINISTIC_GRIDS = [
    "maximize_total_neighborhood_affinity",
    "centroid",
    "spectral_cluster_centroid",
    "max_affinity",
]
GRID_CASES = {
    "spectral_null": dict(clustering="spectral", null_cluster=True),
    "pagerank_small_clusters": dict(clustering="pagerank", cluster_size=5),  # grids larger than clusters
    "pagerank_grid_4": dict(clustering="pagerank", grid_size=4),
}


def concepts_by_label(model: RDX, side: str) -> dict[int, object]:
    """Every concept of a side (null included) keyed by its label in ``labels_``."""
    explanation = model.explanation_
    has_null = model.clustering != "spectral" or model.null_cluster
    out = {c.index - (0 if has_null else 1): c for c in explanation.concepts[side]}
    if explanation.null[side] is not None:
        out[0] = explanation.null[side]
    return out


@pytest.mark.parametrize(
    "case, strategy",
    [(case, strategy) for case in GRID_CASES for strategy in DETERMINISTIC_GRIDS + ["random"]]
    + [("spectral_no_null", "maximize_total_neighborhood_affinity")],
)
def test_grids_equal_plain_selection(case, strategy):
    cases = {**GRID_CASES, "spectral_no_null": dict(clustering="spectral", null_cluster=False)}
    params = {**cases[case], "n_concepts": 3, "grid_strategy": strategy}
    model, reference = fitted("planted", **params)
    X_A, X_B, _ = data("planted")
    features = {"A": X_A, "B": X_B}
    grid_size = params.get("grid_size", 9)
    has_null = model.clustering != "spectral" or model.null_cluster
    for direction, side in SIDE_OF_DIRECTION.items():
        labels = model.labels_[direction]  # the clustering is checked above; here only the grids
        aff = reference.affinity_[direction]
        concepts = concepts_by_label(model, side)
        assert len(model.explanation_.concepts[side]) == 3
        assert sorted(concepts) == sorted(np.unique(labels).tolist())
        assert (model.explanation_.null[side] is not None) == has_null
        shown = [c.index for c in model.explanation_.concepts[side]]
        assert shown == [1, 2, 3]
        for label, concept in concepts.items():
            members = np.flatnonzero(labels == label)
            np.testing.assert_array_equal(concept.members, members)
            assert concept.score == pytest.approx(aff[np.ix_(members, members)].mean(), rel=RTOL)
            got = concept.grid.tolist()
            if strategy == "random":
                assert len(got) == min(grid_size, len(members)) == len(set(got))
                assert set(got) <= set(members.tolist())
            elif strategy == "maximize_total_neighborhood_affinity":
                # Anchors with the same neighbourhood set tie exactly; a float sum in another order
                # may pick any of them, so accept exactly the grids tied within rounding.
                best = plain.best_neighbourhoods(members, features[side], aff, grid_size)[0]
                tied = plain.best_neighbourhoods(members, features[side], aff, grid_size, rtol=1e-12)
                assert got == best or got in tied, f"{case} {direction} label {label}: {got} vs {best}"
                assert set(got) == set(best)
            else:
                assert got == plain.grid(strategy, members, features[side], aff, grid_size), (
                    f"{strategy} {case} {direction} label {label}"
                )


def test_random_grids_follow_random_state():
    X_A, X_B, _ = data("planted")
    grids = [
        [
            c.grid.tolist()
            for c in RDX(grid_strategy="random", random_state=4).fit(X_A, X_B).explanation_.concepts["B"]
        ]
        for _ in range(2)
    ]
    assert grids[0] == grids[1]


# ------------------------------------------------------------------------------------------------
# float32 default
# ------------------------------------------------------------------------------------------------


def test_float32_ranks_agree_with_float64():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, 16)) * 10 + 3
    exact = plain.ranks(X)
    fast = neighbour_ranks_from_features(X, dtype="float32", device="cpu")
    assert fast.dtype == np.int32 and np.all(np.diag(fast) == 0)
    assert np.all(np.sort(fast, axis=1) == np.arange(len(X)))
    assert np.mean(fast == exact) >= 0.999


@pytest.mark.parametrize("name", ["planted", "blobs"])
@pytest.mark.parametrize("clustering", ["spectral", "pagerank"])
def test_float32_default_clusters_like_float64(name, clustering):
    X_A, X_B, _ = data(name)
    exact = RDX(n_concepts=3, clustering=clustering, dtype="float64", device="cpu").fit(X_A, X_B)
    fast = RDX(n_concepts=3, clustering=clustering, device="cpu").fit(X_A, X_B)  # float32 by default
    for direction in ("10", "01"):
        assert fast.difference_matrix(direction).dtype == np.float32
        assert adjusted_rand_score(exact.labels_[direction], fast.labels_[direction]) >= 0.99
