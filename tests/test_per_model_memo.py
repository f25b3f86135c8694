"""Per-model fits reused within a process (rdx.methods.baselines.base.per_model_fit): a fixed model's side
is fitted once, with exactly the result a fresh fit gives; any change of features or parameters refits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator

import rdx.methods.baselines.base as base
from rdx.methods import build_method


@pytest.fixture(autouse=True)
def empty_memo(monkeypatch):
    monkeypatch.setattr(base, "_per_model_memo", type(base._per_model_memo)())


def features(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(120, 6))


def counting(monkeypatch, cls):
    calls = []
    original = cls.concepts_for

    def concepts_for(self, X):
        calls.append(X.shape)
        return original(self, X)

    monkeypatch.setattr(cls, "concepts_for", concepts_for)
    return calls


def explanation_arrays(explanation):
    return [
        (c.index, c.members.tolist(), c.grid.tolist(), c.score) for s in "AB" for c in explanation.concepts[s]
    ]


def test_a_fixed_side_is_fitted_once_with_the_fresh_result(monkeypatch):
    cls = type(build_method("kmeans", n_concepts=3))
    calls = counting(monkeypatch, cls)
    X_B = features(0)
    first = build_method("kmeans", n_concepts=3, random_state=0).fit(features(1), X_B).explanation_
    second = build_method("kmeans", n_concepts=3, random_state=0).fit(features(2), X_B).explanation_
    assert len(calls) == 3  # A twice, B once
    base._per_model_memo.clear()
    fresh = build_method("kmeans", n_concepts=3, random_state=0).fit(features(2), X_B).explanation_
    assert explanation_arrays(second) == explanation_arrays(fresh)
    assert explanation_arrays(first)[3:] == explanation_arrays(second)[3:]  # side B: the same concepts
    second.concepts["B"][0].members[:] = -1  # what a caller gets is its own copy
    again = build_method("kmeans", n_concepts=3, random_state=0).fit(features(2), X_B).explanation_
    assert explanation_arrays(again) == explanation_arrays(fresh)


def test_other_features_or_parameters_refit(monkeypatch):
    cls = type(build_method("kmeans", n_concepts=3))
    calls = counting(monkeypatch, cls)
    X = features(0)
    build_method("kmeans", n_concepts=3, random_state=0).fit(X, X)
    assert len(calls) == 1  # both sides are the same features
    build_method("kmeans", n_concepts=3, random_state=1).fit(X, X)
    build_method("kmeans", n_concepts=4, random_state=0).fit(X, X)
    build_method("kmeans", n_concepts=3, random_state=0).fit(X, X.astype(np.float32))
    assert len(calls) == 4
    assert len(base._per_model_memo) == 4


class Unseeded(BaseEstimator):
    def __init__(self, random_state=None):
        self.random_state = random_state


def test_an_unseeded_estimator_always_computes():
    X, computed = features(0), []
    for _ in range(2):
        base.per_model_fit(Unseeded(), "x", X, lambda: computed.append(1))
        base.per_model_fit(Unseeded(np.random.RandomState(0)), "x", X, lambda: computed.append(1))
    assert len(computed) == 4 and len(base._per_model_memo) == 0
    base.per_model_fit(Unseeded(3), "x", X, lambda: computed.append(1))
    base.per_model_fit(Unseeded(3), "x", X, lambda: computed.append(1))
    assert len(computed) == 5


def test_the_memo_keeps_only_the_last_entries(monkeypatch):
    monkeypatch.setattr(base, "PER_MODEL_MEMO_SIZE", 2)
    cls = type(build_method("kmeans", n_concepts=2))
    calls = counting(monkeypatch, cls)
    for seed in (0, 1, 2, 0):
        X = features(seed)
        build_method("kmeans", n_concepts=2, random_state=0).fit(X, X)
    assert len(calls) == 4 and len(base._per_model_memo) == 2  # seed 0 was dropped, then fitted again
