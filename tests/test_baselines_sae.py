"""SAE baselines (L1 SAE, top-k SAE, universal SAE): shapes, determinism, planted clusters, codes of the
standardised inputs, untouched inputs, clear errors. Small N and few epochs: the file runs in seconds."""

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

from rdx.methods.baselines.sae import (
    SAEBaseline,
    TopKSAEBaseline,
    UniversalSAEBaseline,
    firing_entropy_across_models,
    firing_entropy_over_images,
    standardise,
)
from rdx.methods.explanation import Concept, Explanation
from rdx.methods.grids import top_activations

CONF = Path(__file__).resolve().parents[1] / "conf" / "baselines"
FAST = {"epochs": 150, "progress": False, "device": "cpu"}


def planted_clusters(n_per_cluster: int = 20, k: int = 3, seed: int = 0, offset: float = 0.0):
    """k tight clusters along distinct non-negative directions: cluster c is 2.0 on its own block of 2
    features and 0 elsewhere, plus noise of 0.02 everywhere (and an optional common offset)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(k), n_per_cluster)
    X = 0.02 * rng.normal(size=(len(truth), 2 * k))
    for c in range(k):
        X[truth == c, 2 * c : 2 * c + 2] += 2.0
    return X + offset, truth


def paired_inputs(n: int = 60, d_A: int = 5, d_B: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d_A)) * 3 + 7, np.abs(rng.normal(size=(n, d_B)))


ESTIMATORS = [
    pytest.param(lambda **kw: SAEBaseline(n_concepts=3, **FAST, **kw), id="sae"),
    pytest.param(lambda **kw: TopKSAEBaseline(n_concepts=3, n_latents=12, **FAST, **kw), id="topk_sae"),
    pytest.param(lambda **kw: UniversalSAEBaseline(n_concepts=3, top_k=8, **FAST, **kw), id="usae"),
]


def same_explanation(first: Explanation, second: Explanation) -> None:
    for side in ("A", "B"):
        for a, b in zip(first.concepts[side], second.concepts[side], strict=True):
            np.testing.assert_array_equal(a.grid, b.grid)
            np.testing.assert_array_equal(a.members, b.members)
            assert a.score == b.score


@pytest.mark.parametrize("make", ESTIMATORS)
def test_explanation_has_k_concepts_per_side_with_valid_grids(make):
    X_A, X_B = paired_inputs()
    estimator = make()
    assert estimator.fit(X_A, X_B) is estimator
    explanation = estimator.explanation_
    assert isinstance(explanation, Explanation)
    assert explanation.method == estimator.name
    for side in ("A", "B"):
        concepts = explanation.concepts[side]
        assert [c.index for c in concepts] == [1, 2, 3]
        for concept in concepts:
            assert isinstance(concept, Concept)
            assert concept.grid.dtype == np.int64 and len(concept.grid) == 9
            assert len(np.unique(concept.grid)) == 9
            assert concept.grid.min() >= 0 and concept.grid.max() < len(X_A)
            assert np.isfinite(concept.score) and concept.score >= 0
        members = np.concatenate([c.members for c in concepts])
        assert len(np.unique(members)) == len(members)  # each image belongs to at most one concept
        info = explanation.info[side]
        assert 0.0 <= info["dead_fraction"] <= 1.0 and np.isfinite(info["reconstruction_mse"])
        assert len(set(info["latents"])) == 3


@pytest.mark.parametrize("make", ESTIMATORS)
def test_fit_is_deterministic_and_leaves_global_torch_state_alone(make):
    X_A, X_B = paired_inputs()
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    first = make(random_state=3).fit(X_A, X_B).explanation_
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == threads  # the one-thread training limit is undone
    second = make(random_state=3).fit(X_A, X_B).explanation_
    same_explanation(first, second)
    assert first.info == second.info


@pytest.mark.parametrize("make", ESTIMATORS)
def test_inputs_are_not_modified(make):
    X_A, X_B = paired_inputs()
    X_A32 = X_A.astype(np.float32)  # float32: the dtype the autoencoders train in, so no implicit copy
    copies = X_A32.copy(), X_B.copy()
    X_B.flags.writeable = False
    make().fit(X_A32, X_B)
    np.testing.assert_array_equal(X_A32, copies[0])
    np.testing.assert_array_equal(X_B, copies[1])


@pytest.mark.parametrize("cls", [SAEBaseline, TopKSAEBaseline])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_planted_clusters_give_single_cluster_grids(cls, seed):
    # Why this must hold: a code is ReLU of an affine map of the (standardised) features, so on tight
    # clusters every latent is nearly constant within a cluster, and its 9 highest activations all come
    # from the one cluster (of 20 >= 9 images) where it is largest, whatever the SAE learned. The
    # reconstruction check makes sure it did learn: each cluster is one point of the dictionary's span.
    X, truth = planted_clusters(seed=seed)
    params = {"n_latents": 10} if cls is TopKSAEBaseline else {}
    estimator = cls(n_concepts=3, random_state=seed, **FAST, **params).fit(X, X[:, ::-1])
    for side in ("A", "B"):
        for concept in estimator.explanation_.concepts[side]:
            assert len(set(truth[concept.grid].tolist())) == 1, truth[concept.grid]
        assert estimator.explanation_.info[side]["reconstruction_mse"] < 0.05


def test_sae_codes_are_computed_from_the_standardised_inputs():
    # a large offset and scale: encoding raw inputs (the reference quirk) would give very different codes
    X, _ = planted_clusters(offset=50.0)
    X = X * np.arange(1, 7)
    estimator = SAEBaseline(n_concepts=3, **FAST).fit(X, X[:, ::-1])
    fitted = estimator.fitted_["A"]
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    weight = fitted.autoencoder.encoder_weight.detach().double().numpy()
    bias = fitted.autoencoder.encoder_bias.detach().double().numpy()
    expected = np.maximum(Z @ weight + bias, 0.0)
    np.testing.assert_allclose(fitted.activations, expected, atol=1e-4)
    np.testing.assert_allclose(fitted.encode(X), fitted.activations, atol=1e-6)
    raw = np.maximum(X @ weight + bias, 0.0)
    assert not np.allclose(raw, expected, atol=1e-1)
    for column, concept in enumerate(estimator.explanation_.concepts["A"]):
        np.testing.assert_array_equal(concept.grid, top_activations(fitted.activations[:, column], 9))
    atom_norms = fitted.autoencoder.atoms.detach().norm(dim=1).numpy()
    np.testing.assert_allclose(atom_norms, 1.0, atol=1e-5)


def test_topk_keeps_the_latents_with_the_largest_mean_activation():
    X_A, X_B = paired_inputs()
    estimator = TopKSAEBaseline(n_concepts=3, n_latents=12, top_k=4, **FAST).fit(X_A, X_B)
    for side in ("A", "B"):
        codes = estimator.fitted_[side].activations
        assert codes.shape == (len(X_A), 12)
        assert ((codes > 0).sum(axis=1) <= 4).all()  # at most top_k active per image
        chosen = estimator.explanation_.info[side]["latents"]
        means = codes.mean(axis=0)
        assert list(chosen) == list(np.argsort(-means, kind="stable")[:3])
        assert [c.score for c in estimator.explanation_.concepts[side]] == pytest.approx(means[chosen])


@pytest.mark.parametrize("firing_entropy", ["models", "images"])
def test_usae_with_different_widths_picks_k_live_latents_per_side(firing_entropy):
    X_A, X_B = paired_inputs(d_A=4, d_B=7)
    estimator = UniversalSAEBaseline(n_concepts=3, top_k=6, firing_entropy=firing_entropy, **FAST)
    explanation = estimator.fit(X_A, X_B).explanation_
    assert explanation.info["n_latents"] == 8 * 7
    for m, side in enumerate(("A", "B")):
        codes = estimator.activations_[side]
        assert codes.shape == (len(X_A), 56)
        assert ((codes > 0).sum(axis=1) <= 6).all()
        latents = explanation.info[side]["latents"]
        assert len(explanation.concepts[side]) == 3 and len(set(latents)) == 3
        assert all((codes[:, j] > 0).any() for j in latents)  # dead latents are never picked
        # codes of the standardised inputs, by that model's own encoder
        Z = standardise((X_A, X_B)[m])[0]
        with torch.no_grad():
            expected = estimator.autoencoder_.encode(torch.from_numpy(Z).float(), m).double().numpy()
        np.testing.assert_allclose(codes, expected, atol=1e-5)
        for concept, j in zip(explanation.concepts[side], latents, strict=True):
            np.testing.assert_array_equal(concept.grid, top_activations(codes[:, j], 9))


def test_usae_models_entropy_prefers_latents_specific_to_the_side():
    X_A, X_B = paired_inputs(n=80, d_A=4, d_B=7)
    estimator = UniversalSAEBaseline(n_concepts=3, top_k=6, **FAST).fit(X_A, X_B)
    codes = [estimator.activations_["A"], estimator.activations_["B"]]
    entropy, firings = firing_entropy_across_models(codes)
    for m, side in enumerate(("A", "B")):
        latents = estimator.explanation_.info[side]["latents"]
        own, other = firings[m], firings[1 - m]
        # the picks: among latents this model fires at least as often as the other, on >= 9 images,
        # the three with the lowest entropy
        eligible = np.flatnonzero((own >= other) & (own >= 9))
        assert len(eligible) >= 3
        assert set(latents) <= set(eligible.tolist())
        assert max(entropy[latents]) <= np.sort(entropy[eligible])[2] + 1e-12


def test_firing_entropies_match_hand_computed_values():
    codes_A = np.array([[1.0, 0.0, 2.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    codes_B = np.array([[0.0, 0.0, 1.0, 0.0], [0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    entropy, firings = firing_entropy_across_models([codes_A, codes_B])
    np.testing.assert_array_equal(firings, [[2, 0, 1, 0], [0, 1, 1, 0]])
    np.testing.assert_allclose(entropy[:3], [0.0, 0.0, 1.0])  # A only, B only, evenly shared
    assert np.isnan(entropy[3])  # dead
    over_images = firing_entropy_over_images(np.array([[1.0, 2.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]]))
    p = np.array([0.25, 0.25, 0.5])
    np.testing.assert_allclose(over_images[:2], [-(p * np.log(p)).sum(), 0.0])
    assert np.isnan(over_images[2])


def test_standardise_maps_constant_features_to_zero():
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    Z, mean, scale = standardise(X)
    np.testing.assert_array_equal(Z, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(mean, [2.0, 5.0])
    np.testing.assert_array_equal(scale, [1.0, 1.0])


def test_minibatches_and_full_batch_both_train():
    X_A, X_B = paired_inputs()
    for batch_size in (16, None):
        estimator = SAEBaseline(n_concepts=3, batch_size=batch_size, epochs=20, progress=False).fit(X_A, X_B)
        losses = estimator.fitted_["A"].losses
        assert len(losses) == 20 and losses[-1] < losses[0]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SAEBaseline(n_concepts=6), "number of features"),  # k > d_A = 5
        (lambda: SAEBaseline(n_concepts=61), "number of samples"),  # k > N
        (lambda: SAEBaseline(n_concepts=0), "positive integer"),
        (lambda: SAEBaseline(l1_coefficient=-1.0), "l1_coefficient"),
        (lambda: SAEBaseline(epochs=0), "epochs"),
        (lambda: SAEBaseline(batch_size=0), "batch_size"),
        (lambda: SAEBaseline(learning_rate=0.0), "learning_rate"),
        (lambda: SAEBaseline(cpu_threads=0), "cpu_threads"),
        (lambda: TopKSAEBaseline(n_concepts=5, n_latents=4), "n_latents"),
        (lambda: TopKSAEBaseline(n_concepts=3, n_latents=10, top_k=11), "top_k"),
        (lambda: TopKSAEBaseline(n_concepts=3, top_k=0), "top_k"),
        (lambda: TopKSAEBaseline(n_concepts=61, n_latents=100), "number of samples"),
        (lambda: UniversalSAEBaseline(n_concepts=3, top_k=100), "top_k"),  # 8 * max(5, 9) = 72 latents
        (lambda: UniversalSAEBaseline(n_concepts=10, expansion=1, top_k=8), "latents"),  # 9 latents
        (lambda: UniversalSAEBaseline(n_concepts=61, top_k=8), "number of samples"),
        (lambda: UniversalSAEBaseline(expansion=0), "expansion"),
        (lambda: UniversalSAEBaseline(top_k=8, firing_entropy="classes"), "firing_entropy"),
    ],
)
def test_bad_parameters_raise_clear_errors(make, message):
    X_A, X_B = paired_inputs()
    with pytest.raises(ValueError, match=message):
        make().fit(X_A, X_B)


def test_usae_rejects_mismatched_representations():
    X_A, X_B = paired_inputs()
    with pytest.raises(ValueError, match="same images"):
        UniversalSAEBaseline(top_k=8).fit(X_A, X_B[:-1])


@pytest.mark.parametrize(
    ("cls", "file"), [(SAEBaseline, "sae"), (TopKSAEBaseline, "topk_sae"), (UniversalSAEBaseline, "usae")]
)
def test_config_names_the_estimator_and_its_parameters(cls, file):
    """The composed baseline config names the estimator and carries every parameter of its signature
    (the file lists only what differs; the rest comes from the signature's schema)."""
    from tests.conftest import compose_config

    entry = compose_config("compare", [f"baselines=[{file}]"]).baselines[file]
    assert entry.name == cls.name == file
    assert list(entry.params) == list(inspect.signature(cls).parameters)
