"""Probe accuracy / agreement and debiased CKA of the two representations."""

import numpy as np
import pytest

from rdx.metrics import probe_scores, representation_scores


def separable_and_noise(n_per_class: int = 60, seed: int = 0):
    """Two classes; model A's first feature separates them by a wide margin, model B is pure noise."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n_per_class)
    X_informative = rng.normal(size=(len(y), 4))
    X_informative[:, 0] += 8.0 * y
    X_noise = rng.normal(size=(len(y), 4))
    return X_informative, X_noise, y


def test_probe_scores_informative_vs_noise():
    X_informative, X_noise, y = separable_and_noise()
    scores = probe_scores(X_informative, X_noise, y)
    assert scores["A"] >= 0.99
    assert scores["B"] == pytest.approx(0.5, abs=0.15)
    assert scores["n_splits"] == 5
    # the four outcome fractions partition the images and add up to each accuracy
    assert scores["both_correct"] + scores["only_A_correct"] == pytest.approx(scores["A"])
    assert scores["both_correct"] + scores["only_B_correct"] == pytest.approx(scores["B"])
    total = sum(scores[k] for k in ("both_correct", "only_A_correct", "only_B_correct", "neither_correct"))
    assert total == pytest.approx(1.0)
    # two classes: the probes agree exactly when both are right or both are wrong
    assert scores["agreement"] == pytest.approx(scores["both_correct"] + scores["neither_correct"])
    # swapping the models swaps the sides
    swapped = probe_scores(X_noise, X_informative, y)
    assert (swapped["A"], swapped["B"], swapped["agreement"]) == (
        scores["B"],
        scores["A"],
        scores["agreement"],
    )


def test_probe_scores_identical_models_agree_everywhere():
    X_informative, _, y = separable_and_noise(seed=1)
    scores = probe_scores(X_informative, X_informative.copy(), y)
    assert scores["agreement"] == 1.0 and scores["A"] == scores["B"] == scores["both_correct"]


def test_probe_scores_errors_name_the_problem():
    X_informative, X_noise, y = separable_and_noise(n_per_class=10)
    y_small_class = y.copy()
    y_small_class[:3] = 2  # class 2 has 3 images, fewer than the 5 folds
    with pytest.raises(ValueError, match=r"at least 5 images of every class.*\(label: images\): \{2: 3\}"):
        probe_scores(X_informative, X_noise, y_small_class)
    with pytest.raises(ValueError, match="at least 2 classes"):
        probe_scores(X_informative, X_noise, np.ones_like(y))
    with pytest.raises(ValueError, match="probe of model B: X must be 2-D"):
        probe_scores(X_informative, X_noise[:, 0], y)
    with pytest.raises(ValueError, match="same images"):
        probe_scores(X_informative, X_noise[:-1], y)


def test_cka_of_identical_and_independent_representations():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 10))
    assert representation_scores(X, X.copy())["cka"] == pytest.approx(1.0, abs=1e-6)
    # invariant to rotation and scale of one side
    rotation, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    assert representation_scores(X, 3.0 * X @ rotation)["cka"] == pytest.approx(1.0, abs=1e-6)
    assert abs(representation_scores(X, rng.normal(size=(200, 6)))["cka"]) < 0.05


def test_representation_scores_with_and_without_labels():
    X_informative, X_noise, y = separable_and_noise()
    unlabelled = representation_scores(X_informative, X_noise)
    assert unlabelled["probe"] is None and "probe_error" not in unlabelled
    labelled = representation_scores(X_informative, X_noise, y)
    assert labelled["cka"] == unlabelled["cka"]
    assert labelled["probe"] == probe_scores(X_informative, X_noise, y)
    one_class = representation_scores(X_informative, X_noise, np.zeros_like(y))
    assert one_class["probe"] is None and "at least 2 classes" in one_class["probe_error"]
    with pytest.raises(ValueError, match="one label per image"):
        representation_scores(X_informative, X_noise, y[:-1])
