"""Parameter checks every estimator shares: one message for one kind of bad value."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["NotApplicableError", "check_positive_int", "check_positive_number"]


class NotApplicableError(ValueError):
    """The representations break an assumption of the method, not a parameter: too narrow for its k or
    its dictionary, or negative values for NMF. A comparison skips such a baseline and records why
    (consecutive layers of one network differ in width and sign, docs/sweeps.md)."""


def check_positive_int(name: str, value: Any, minimum: int = 1) -> None:
    """``value`` must be an integer (not a bool) of at least ``minimum``; ValueError naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def check_positive_number(name: str, value: Any, allow_none: bool = False) -> None:
    """``value`` must be a finite number > 0 (or None when allowed); ValueError naming it otherwise."""
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.number)
        or not np.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"{name} must be a finite number > 0{' or null' if allow_none else ''}, got {value!r}"
        )
