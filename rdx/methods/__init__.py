"""Explanation methods. Each is an estimator: ``fit(X_A, X_B)`` sets ``explanation_``.

Methods are looked up by registry name (``build_method``), never by an if/elif chain.
"""

from __future__ import annotations

from typing import Any

from rdx.methods.explanation import Concept, Explanation
from rdx.methods.rdx import RDX

METHODS: dict[str, type] = {"rdx": RDX}


def build_method(name: str, **params: Any) -> Any:
    """Instantiate the method registered under ``name`` with its parameters."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; registered methods: {sorted(METHODS)}")
    try:
        return METHODS[name](**params)
    except TypeError as error:
        raise ValueError(f"bad parameters for method {name!r}: {error}") from error


__all__ = ["METHODS", "RDX", "Concept", "Explanation", "build_method"]
