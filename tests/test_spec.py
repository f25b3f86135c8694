"""SPEC baseline: its kernels and features, both eigen-paths against dense numpy, the paths against each
other, planted differences on the right side, and parameters checked before any work."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist

from rdx.methods import build_method
from rdx.methods.baselines import spec
from rdx.methods.baselines.spec import (
    SPECBaseline,
    concepts_from_eigenvectors,
    fourier_features,
    fourier_frequencies,
    gaussian_kernel_matrix,
    median_bandwidth,
    rff_difference_eigenpairs,
)
from rdx.metrics.agreement import concept_agreement
from tests.test_rdx import merged_and_split

SIZES = (60, 40, 45, 35, 25, 45, 45, 45)


def two_merges(seed: int = 0, spread: float = 6.0, scale: int = 1):
    """Eight clusters at the corners of a simplex in both models (every two centres equally far apart),
    except that model A puts cluster 1 on cluster 0 (A merges them, B separates them) and model B puts
    cluster 4 on cluster 3. Unequal sizes (``SIZES`` x ``scale``) keep the eigenvalues apart."""
    rng = np.random.default_rng(seed)
    k = len(SIZES)
    truth = np.repeat(np.arange(k), [size * scale for size in SIZES])
    centres_A, centres_B = spread * np.eye(k), spread * np.eye(k)
    centres_A[1] = centres_A[0]
    centres_B[4] = centres_B[3]
    X_A = centres_A[truth] + rng.normal(size=(len(truth), k))
    X_B = centres_B[truth] + rng.normal(size=(len(truth), k))
    return X_A, X_B, truth


# a bandwidth that resolves the clusters of ``two_merges`` (within-cluster distances ~4, centres ~8.5 apart)
RESOLVING = {"bandwidth_A": 3.0, "bandwidth_B": 3.0}


def labels_of(truth: np.ndarray, indices: np.ndarray) -> set[int]:
    return set(truth[indices].tolist())


def is_group(truth: np.ndarray, concept, clusters: tuple[int, int]) -> bool:
    """The concept is the union of two clusters: its grid lies in them, at least 95 % of its members do,
    and each cluster holds at least a quarter of the members."""
    counts = np.bincount(truth[concept.members], minlength=truth.max() + 1)
    inside = counts[list(clusters)]
    return (
        labels_of(truth, concept.grid) <= set(clusters)
        and inside.sum() >= 0.95 * counts.sum()
        and inside.min() >= 0.25 * counts.sum()
    )


# ------------------------------------------------------------------------------------------------
# kernels and features


def test_gaussian_kernel_matches_the_formula():
    X = np.random.default_rng(0).normal(size=(50, 5)) * 2 + 30
    np.testing.assert_allclose(
        gaussian_kernel_matrix(X, 1.7, device="cpu"),
        np.exp(-cdist(X, X, "sqeuclidean") / (2 * 1.7**2)),
        atol=1e-12,
    )


def test_median_bandwidth_is_the_median_pairwise_distance():
    X = np.random.default_rng(1).normal(size=(120, 4))
    assert median_bandwidth(X, device="cpu") == pytest.approx(np.median(pdist(X)), rel=1e-12)
    # beyond the sample size: the median of a seeded sample's pairs, close to the full one
    big = np.random.default_rng(2).normal(size=(1500, 3))
    sampled = median_bandwidth(big, sample_size=400, random_state=5, device="cpu")
    assert sampled == median_bandwidth(big, sample_size=400, random_state=5, device="cpu")
    assert sampled == pytest.approx(np.median(pdist(big)), rel=0.03)
    with pytest.raises(ValueError, match="bandwidth"):
        median_bandwidth(np.zeros((10, 3)), device="cpu")


def test_fourier_features_have_unit_norm_and_approximate_the_kernel():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 6))
    W = fourier_frequencies(6, 2.0, 20000, np.random.default_rng(4))
    Phi = fourier_features(X, W).numpy()
    assert Phi.shape == (40, 40000)
    np.testing.assert_allclose(np.linalg.norm(Phi, axis=1), 1.0, atol=1e-12)
    exact = np.exp(-cdist(X, X, "sqeuclidean") / (2 * 2.0**2))
    assert np.abs(Phi @ Phi.T - exact).max() < 0.03


# ------------------------------------------------------------------------------------------------
# eigen-decompositions against dense numpy


def dense_top(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(matrix)
    return values[::-1][:k], vectors[:, ::-1][:, :k]


def assert_same_vectors(mine: np.ndarray, reference: np.ndarray, atol: float) -> None:
    """Unit columns equal up to sign."""
    cosines = np.abs(np.sum(mine * reference, axis=0))
    np.testing.assert_allclose(cosines, 1.0, atol=atol)


@pytest.mark.parametrize("eta", [1.0, 0.6])
def test_exact_eigenpairs_match_dense_numpy(eta):
    rng = np.random.default_rng(5)
    X_A, X_B = rng.normal(size=(90, 4)), rng.normal(size=(90, 3))
    model = SPECBaseline(n_concepts=4, eta=eta, path="exact", device="cpu").fit(X_A, X_B)
    K = {
        side: np.exp(-cdist(X, X, "sqeuclidean") / (2 * model.bandwidths_[side] ** 2))
        for side, X in (("A", X_A), ("B", X_B))
    }
    for side, other in (("A", "B"), ("B", "A")):
        values, vectors = dense_top((K[side] - eta * K[other]) / 90, 4)
        np.testing.assert_allclose(model.eigenvalues_[side], values, atol=1e-6, rtol=0)
        np.testing.assert_allclose(model.eigenvalues_[side], values, atol=1e-12, rtol=0)  # in fact
        assert_same_vectors(model.eigenvectors_[side], vectors, atol=1e-8)


@pytest.mark.parametrize("n_frequencies", [30, 400])  # D = 120 < N: the Gram route; D = 1600 >= N: kernels
def test_rff_eigenpairs_match_dense_numpy_on_the_same_features(n_frequencies):
    rng = np.random.default_rng(6)
    X_A, X_B = rng.normal(size=(300, 5)) + 40, rng.normal(size=(300, 3))
    eta = 0.8
    generator = np.random.default_rng(7)
    W_A = fourier_frequencies(5, 1.5, n_frequencies, generator)
    W_B = fourier_frequencies(3, 1.2, n_frequencies, generator)
    pairs = rff_difference_eigenpairs(X_A, X_B, W_A, W_B, eta, k=5, device="cpu", block_bytes=64 * 1024)
    Phi_A = fourier_features(X_A - X_A.mean(axis=0), W_A).numpy()
    Phi_B = fourier_features(X_B - X_B.mean(axis=0), W_B).numpy()
    K_A, K_B = Phi_A @ Phi_A.T, Phi_B @ Phi_B.T
    for side, (first, second) in (("A", (K_A, K_B)), ("B", (K_B, K_A))):
        values, vectors = dense_top((first - eta * second) / 300, 5)
        np.testing.assert_allclose(pairs[side][0], values, atol=1e-6, rtol=0)
        np.testing.assert_allclose(pairs[side][0], values, atol=1e-10, rtol=0)  # in fact
        assert_same_vectors(pairs[side][1], vectors, atol=1e-6)


def test_rff_features_are_shift_invariant_so_centring_changes_nothing():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(30, 4))
    W = fourier_frequencies(4, 1.0, 50, np.random.default_rng(9))
    gram = fourier_features(X, W).numpy() @ fourier_features(X, W).numpy().T
    shifted = fourier_features(X + 1000.0, W).numpy()
    np.testing.assert_allclose(shifted @ shifted.T, gram, atol=1e-9)


# ------------------------------------------------------------------------------------------------
# the two paths agree; planted differences land on the right side


def test_exact_and_rff_paths_agree_at_a_large_feature_dimension():
    X_A, X_B, _ = two_merges(seed=0)
    common = dict(n_concepts=3, device="cpu", **RESOLVING)
    exact = SPECBaseline(path="exact", **common).fit(X_A, X_B)
    rff = SPECBaseline(path="rff", rff_dimension=4000, **common).fit(X_A, X_B)
    assert (exact.path_, rff.path_) == ("exact", "rff")
    agreement = concept_agreement({"exact": exact.explanation_, "rff": rff.explanation_})
    for side in "AB":
        pair = agreement.pair(side, "exact", "rff")
        assert pair.mean_jaccard >= 0.8, (side, pair)
        assert [m.first for m in pair.matches] == [m.second for m in pair.matches]  # same order too
        np.testing.assert_allclose(rff.eigenvalues_[side], exact.eigenvalues_[side], atol=0.005)


@pytest.mark.parametrize(
    "path, scale, rff_dimension",
    [("exact", 1, None), ("rff", 1, 1000), ("rff", 4, 300)],  # rff: N <= D (kernels), N > D (Gram)
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_merges_are_found_on_the_side_of_the_model_that_merges(
    seed, path, scale, rff_dimension, monkeypatch
):
    X_A, X_B, truth = two_merges(seed=seed, scale=scale)
    gram_calls = []
    solve = spec.gram_difference_eigenpairs
    monkeypatch.setattr(
        spec, "gram_difference_eigenpairs", lambda *a, **k: gram_calls.append(1) or solve(*a, **k)
    )
    model = SPECBaseline(n_concepts=3, path=path, rff_dimension=rff_dimension or 1, device="cpu", **RESOLVING)
    explanation = model.fit(X_A, X_B).explanation_
    assert len(gram_calls) == (1 if path == "rff" and len(truth) > 4 * rff_dimension else 0)
    A, B = explanation.concepts["A"], explanation.concepts["B"]
    # A merges 0 and 1: side A's strongest concept is that group
    assert is_group(truth, A[0], (0, 1))
    # B merges 3 and 4: a side-B concept is that group
    assert any(is_group(truth, c, (3, 4)) for c in B)
    # each side's other planted concept is a contrast: one of the two groups the other model merges
    assert any(labels_of(truth, c.grid) in ({0}, {1}) for c in B)
    assert any(labels_of(truth, c.grid) in ({3}, {4}) for c in A)
    # and neither side claims the other side's merge
    assert not any({3, 4} <= labels_of(truth, c.grid) for c in A)
    assert not any({0, 1} <= labels_of(truth, c.grid) for c in B)
    for side in "AB":
        scores = [c.score for c in explanation.concepts[side]]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_bandwidths_find_the_merge_of_rdx_planted_pair(seed):
    """The RDX tests' planted pair with the median bandwidths: A's merge of 0 and 1 on side A, and B's
    separation of them as a side-B concept of one of the two (the contrast 1_C0 - 1_C1)."""
    X_A, X_B, truth = merged_and_split(seed=seed)
    explanation = build_method("spec", n_concepts=2, device="cpu").fit(X_A, X_B).explanation_
    first = explanation.concepts["A"][0]
    assert labels_of(truth, first.grid) == {0, 1} and 2 not in labels_of(truth, first.members)
    assert any(labels_of(truth, c.grid) in ({0}, {1}) for c in explanation.concepts["B"])
    assert not any({0, 1} <= labels_of(truth, c.grid) for c in explanation.concepts["B"])


def test_swapping_the_models_swaps_the_sides():
    X_A, X_B, _ = two_merges(seed=3)
    forward = SPECBaseline(n_concepts=3, eta=0.9, path="exact", bandwidth_A=3.0, bandwidth_B=2.5).fit(
        X_A, X_B
    )
    backward = SPECBaseline(n_concepts=3, eta=0.9, path="exact", bandwidth_A=2.5, bandwidth_B=3.0).fit(
        X_B, X_A
    )
    for side, other in (("A", "B"), ("B", "A")):
        np.testing.assert_allclose(forward.eigenvalues_[side], backward.eigenvalues_[other], atol=1e-12)
        mine, theirs = forward.explanation_.concepts[side], backward.explanation_.concepts[other]
        assert [c.members.tolist() for c in mine] == [c.members.tolist() for c in theirs]


def test_identical_representations_show_no_concepts():
    X = np.random.default_rng(10).normal(size=(60, 4))
    model = SPECBaseline(n_concepts=3, device="cpu").fit(X, X.copy())
    assert model.explanation_.concepts == {"A": [], "B": []}
    assert np.abs(model.eigenvalues_["A"]).max() < 1e-12


# ------------------------------------------------------------------------------------------------
# concepts from eigenvectors


def test_concepts_from_eigenvectors_fix_signs_and_read_members_and_grids():
    vectors = np.zeros((12, 2))
    vectors[:5, 0] = -np.array([0.5, 0.5, 0.45, 0.4, 0.1])  # negative sum: flipped
    vectors[5:10, 1] = [0.2, 0.6, 0.5, 0.5, 0.3]
    vectors[10, 1] = 0.29  # just below half of 0.6: not a member
    vectors /= np.linalg.norm(vectors, axis=0)
    concepts = concepts_from_eigenvectors(np.array([0.3, 0.1]), vectors, grid_size=3, member_threshold=0.5)
    assert [c.index for c in concepts] == [1, 2] and [c.score for c in concepts] == [0.3, 0.1]
    assert concepts[0].members.tolist() == [0, 1, 2, 3] and concepts[0].grid.tolist() == [0, 1, 2]
    assert concepts[1].members.tolist() == [6, 7, 8, 9] and concepts[1].grid.tolist() == [6, 7, 8]
    everyone = concepts_from_eigenvectors(np.array([0.3, 0.1]), vectors, member_threshold=0.01)
    assert sorted(np.concatenate([c.members for c in everyone]).tolist()) == list(range(11))  # disjoint


# ------------------------------------------------------------------------------------------------
# the estimator


def test_registry_determinism_disjoint_members_and_untouched_inputs():
    X_A, X_B, _ = two_merges(seed=4)
    copies = X_A.copy(), X_B.copy()
    model = build_method("spec", n_concepts=4, device="cpu")
    assert isinstance(model, SPECBaseline) and model.name == "spec"
    first = model.fit(X_A, X_B).explanation_
    second = build_method("spec", n_concepts=4, device="cpu").fit(X_A, X_B).explanation_
    assert first.method == "spec" and first.to_dict() == second.to_dict()
    for side in "AB":
        members = np.concatenate([c.members for c in first.concepts[side]])
        assert len(members) == len(np.unique(members))
        assert all(1 <= len(c.grid) <= 9 for c in first.concepts[side])
    assert first.info["path"] == "exact" and first.info["bandwidth_A"] > 0
    np.testing.assert_array_equal(X_A, copies[0])
    np.testing.assert_array_equal(X_B, copies[1])


def test_auto_path_follows_n_and_the_memory_budget():
    model = SPECBaseline(memory_budget_gb=100.0)
    assert model.choose_path(5000)[0] == "exact"
    assert model.choose_path(spec.AUTO_EXACT_MAX_N + 1)[0] == "rff"
    assert SPECBaseline(memory_budget_gb=1.0).choose_path(5000)[0] == "rff"  # 2.5 x 5000^2 x 8 B + 1 GB
    assert SPECBaseline(path="exact").choose_path(10**6) == ("exact", "path='exact' was asked for")
    assert SPECBaseline(path="rff").choose_path(10)[0] == "rff"


@pytest.mark.parametrize(
    "params, name",
    [
        ({"eta": 0}, "eta"),
        ({"eta": -1.0}, "eta"),
        ({"eta": float("nan")}, "eta"),
        ({"bandwidth_A": 0.0}, "bandwidth_A"),
        ({"bandwidth_B": -2.0}, "bandwidth_B"),
        ({"n_concepts": 40}, "n_concepts"),  # k = N
        ({"n_concepts": 100}, "n_concepts"),
        ({"n_concepts": 0}, "n_concepts"),
        ({"rff_dimension": 0}, "rff_dimension"),
        ({"rff_dimension": 2.5}, "rff_dimension"),
        ({"member_threshold": 0.0}, "member_threshold"),
        ({"member_threshold": 1.5}, "member_threshold"),
        ({"path": "sparse"}, "path"),
        ({"memory_budget_gb": 0}, "memory_budget_gb"),
    ],
)
def test_bad_parameters_fail_clearly_before_any_work(params, name, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the parameters were checked")

    for function in ("median_bandwidth", "gaussian_kernel_matrix", "rff_difference_eigenpairs"):
        monkeypatch.setattr(spec, function, no_work)
    X = np.random.default_rng(11).normal(size=(40, 3))
    with pytest.raises(ValueError, match=name):
        SPECBaseline(**params).fit(X, X + 1.0)


def test_bench_script_measures_the_rff_path_and_finds_the_planted_merge(tmp_path):
    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_spec.py"
    loader = importlib.util.spec_from_file_location("bench_spec", path)
    bench = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(bench)
    out = tmp_path / "spec.json"
    # N = 1500 > D = 4 x 150: the Gram route, as at N = 100,000
    result = bench.main(
        ["--n", "1500", "--d", "16", "--rff-dimension", "150", "--n-concepts", "2", "--out", str(out)]
    )
    assert json.loads(out.read_text()) == result
    assert result["path"] == "rff" and result["features_per_model"] == 300 and result["seconds"] > 0
    assert result["peak_rss_gb"] >= result["rss_before_fit_gb"] > 0
    # make_pair: model B merges A's clusters 0 and 1, so side B's strongest concept is that group
    merge = result["concepts"]["B"][0]
    by_cluster = merge["members_by_cluster_A"]
    assert by_cluster.get("0", 0) + by_cluster.get("1", 0) >= 0.9 * merge["size"]
    assert min(by_cluster.get("0", 0), by_cluster.get("1", 0)) >= 0.3 * merge["size"]
