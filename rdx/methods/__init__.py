"""Explanation methods. Each is an estimator: ``fit(X_A, X_B, y=None)`` sets ``explanation_``.

Methods are looked up by registry name (``build_method``), never by an if/elif chain. The registry
names a module and class, imported on first use, so a run pays only for the methods it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

from rdx.methods.explanation import Concept, Explanation

METHODS: dict[str, str] = {
    "rdx": "rdx.methods.rdx:RDX",
    "kmeans": "rdx.methods.baselines.kmeans:KMeansBaseline",
    "pca": "rdx.methods.baselines.decompositions:PCABaseline",
    "nmf": "rdx.methods.baselines.decompositions:NMFBaseline",
    "cnmf": "rdx.methods.baselines.decompositions:ConvexNMFBaseline",
    "sae": "rdx.methods.baselines.sae:SAEBaseline",
    "topk_sae": "rdx.methods.baselines.sae:TopKSAEBaseline",
    "usae": "rdx.methods.baselines.sae:UniversalSAEBaseline",
    "nlmcd": "rdx.methods.baselines.nlmcd:NLMCDBaseline",
    "spec": "rdx.methods.baselines.spec:SPECBaseline",
}


def method_class(name: str) -> type:
    """The estimator class registered under ``name``."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered methods: {sorted(METHODS)}")
    module, _, attribute = METHODS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def build_method(name: str, **params: Any) -> Any:
    """Instantiate the method registered under ``name`` with its parameters."""
    cls = method_class(name)
    try:
        return cls(**params)
    except TypeError as error:
        raise ValueError(f"bad parameters for method {name!r}: {error}") from error


def __getattr__(name: str) -> Any:
    # RDX pulls in torch: loaded on first use, so light readers (the run record) stay light
    if name == "RDX":
        return method_class("rdx")
    raise AttributeError(f"module 'rdx.methods' has no attribute {name!r}")


__all__ = ["METHODS", "RDX", "Concept", "Explanation", "build_method", "method_class"]
