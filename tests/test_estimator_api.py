"""Every registered method is a scikit-learn estimator: ``get_params`` is the ``__init__`` signature,
``set_params`` round-trips, ``sklearn.base.clone`` gives an unfitted copy with equal parameters, and a
fitted clone explains the same data exactly as the original does."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone

from rdx.methods import METHODS, build_method, method_class

# Cheap parameters per method (few epochs for the autoencoders); the rest keep their defaults.
CHEAP = {
    "rdx": {"n_concepts": 2, "device": "cpu"},
    "kmeans": {"n_concepts": 2, "n_init": 2},
    "pca": {"n_concepts": 2},
    "nmf": {"n_concepts": 2},
    "cnmf": {"n_concepts": 2, "max_iter": 10, "n_init": 2},
    "sae": {"n_concepts": 2, "epochs": 5, "progress": False, "device": "cpu"},
    "topk_sae": {"n_concepts": 2, "n_latents": 8, "epochs": 5, "progress": False, "device": "cpu"},
    "usae": {"n_concepts": 2, "expansion": 2, "top_k": 4, "epochs": 5, "progress": False, "device": "cpu"},
    "nlmcd": {"n_concepts": 2, "n_components": 2, "min_cluster_size": 5},
    "spec": {"n_concepts": 2, "device": "cpu"},
}


def test_every_registered_method_is_covered():
    assert set(CHEAP) == set(METHODS)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Three clusters of 20 images, non-negative (NMF), in 6-D (A) and 5-D (B), read-only."""
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(3), 20)
    X_A = 10.0 + rng.normal(scale=4.0, size=(3, 6))[truth] + rng.normal(size=(60, 6))
    X_B = 10.0 + rng.normal(scale=4.0, size=(3, 5))[rng.permutation(truth)] + rng.normal(size=(60, 5))
    X_A, X_B = np.abs(X_A), np.abs(X_B)
    for X in (X_A, X_B):
        X.setflags(write=False)
    return X_A, X_B


@pytest.mark.parametrize("name", sorted(METHODS))
def test_get_params_is_the_init_signature(name):
    cls = method_class(name)
    signature = inspect.signature(cls)
    model = build_method(name, **CHEAP[name])
    assert isinstance(model, BaseEstimator)
    params = model.get_params()
    assert set(params) == set(signature.parameters)
    for key, parameter in signature.parameters.items():
        assert params[key] == CHEAP[name].get(key, parameter.default), key
    assert vars(model) == params  # __init__ stores its parameters under their own names, nothing else


@pytest.mark.parametrize("name", sorted(METHODS))
def test_set_params_round_trips(name):
    model = build_method(name, **CHEAP[name])
    params = model.get_params()
    assert model.set_params(random_state=7) is model
    assert model.get_params() == {**params, "random_state": 7}
    model.set_params(**params)
    assert model.get_params() == params
    with pytest.raises(ValueError, match="Invalid parameter"):
        model.set_params(not_a_parameter=1)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_fitted_clone_explains_the_data_as_the_original(name, data):
    X_A, X_B = data
    original = build_method(name, **CHEAP[name])
    copy = clone(original)
    assert copy is not original and type(copy) is type(original)
    assert copy.get_params() == original.get_params()
    original.fit(X_A, X_B)
    assert not hasattr(clone(original), "explanation_")  # a clone is unfitted, even of a fitted model
    copy.fit(X_A, X_B)
    assert copy.explanation_.to_dict() == original.explanation_.to_dict()
    for side in ("A", "B"):
        for mine, theirs in zip(
            copy.explanation_.concepts[side], original.explanation_.concepts[side], strict=True
        ):
            np.testing.assert_array_equal(mine.members, theirs.members)
