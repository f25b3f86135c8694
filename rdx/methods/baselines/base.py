"""What the baselines share: their parameters, fitting one decomposition per model, and concepts.

Every baseline is a scikit-learn estimator (``Baseline``): its parameters are dataclass fields, so the
generated ``__init__`` only stores them under their own names and ``get_params``, ``set_params`` and
``sklearn.base.clone`` work. They are keyword-only (subclasses add fields after the shared ones, so a
positional order would mean little), and scikit-learn's ``repr`` and identity equality are kept.

A per-model baseline implements ``concepts_for(X) -> list[Concept]`` for one representation; the base
class fits it on each side, checks inputs and parameters, and returns the shared ``Explanation``.
Joint baselines (USAE, NLMCD) implement ``fit`` themselves and reuse the helpers below.
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from rdx.hashing import array_digest
from rdx.methods.checks import NotApplicableError, check_positive_int
from rdx.methods.explanation import Concept, Explanation
from rdx.methods.grids import top_activations
from rdx.methods.rdx import check_representations


def check_n_concepts(n_concepts: int, X: np.ndarray, needs_features: bool = True) -> None:
    """k must be a positive integer, at most the number of samples (and of features, for
    decompositions whose rank is bounded by d: :class:`NotApplicableError`, a property of the
    representation)."""
    if not isinstance(n_concepts, int | np.integer) or n_concepts < 1:
        raise ValueError(f"n_concepts must be a positive integer, got {n_concepts!r}")
    n, d = X.shape
    if n_concepts > n:
        raise ValueError(f"n_concepts={n_concepts} is larger than the number of samples N={n}")
    if needs_features and n_concepts > d:
        raise NotApplicableError(f"n_concepts={n_concepts} is larger than the number of features d={d}")


def concepts_from_activations(
    activations: np.ndarray, grid_size: int = 9, columns: list[int] | None = None
) -> list[Concept]:
    """Concepts from an (N, k) activation/coefficient matrix: one per column (or per listed column).

    grid: the ``grid_size`` images with the highest activation; members: the images whose largest
    activation (over the listed columns) is this one and positive; score: the column's mean activation.
    Concepts are numbered 1..k in the given column order.
    """
    activations = np.asarray(activations, dtype=np.float64)
    columns = list(range(activations.shape[1])) if columns is None else list(columns)
    chosen = activations[:, columns]
    winner = np.argmax(chosen, axis=1)
    positive = chosen[np.arange(len(chosen)), winner] > 0
    concepts = []
    for position, column in enumerate(columns):
        members = np.flatnonzero((winner == position) & positive)
        grid = top_activations(activations[:, column], grid_size)
        concepts.append(Concept(position + 1, members, grid, float(activations[:, column].mean())))
    return concepts


@dataclass(repr=False, eq=False, kw_only=True)
class Baseline(BaseEstimator):
    """The parameters every baseline has; subclasses add theirs as fields (same decorator) and set ``name``.

    Args:
        n_concepts: k, concepts per side.
        grid_size: images per concept grid.
        random_state: seeds whatever the method draws at random.
    """

    name = "baseline"

    n_concepts: int = 3
    grid_size: int = 9
    random_state: int = 0

    def check_params(self) -> None:
        """Check the parameters that need no data (ValueError naming the bad one). ``rdx-compare`` calls
        this for every method before any data loads; ``fit`` checks the rest against the data."""
        check_positive_int("n_concepts", self.n_concepts)
        check_positive_int("grid_size", self.grid_size)
        check_positive_int("random_state", self.random_state, minimum=0)


# Per-model fits of this process by content. A sweep that keeps one model fixed (a checkpoint trajectory
# against the final model) fits that model's side once per process, not once per job. The key holds the
# estimator's class, all its parameters and the SHA-256 of the features, and fits are seeded, so a hit
# returns exactly what the fit would (a deep copy: callers may change what they get).
PER_MODEL_MEMO_SIZE = 8
_per_model_memo: OrderedDict[str, Any] = OrderedDict()


def per_model_fit(estimator: BaseEstimator, what: str, X: np.ndarray, compute: Callable[[], Any]) -> Any:
    """``compute()``, or the value it gave earlier in this process for the same estimator class and
    parameters, ``what`` and features ``X`` (the last ``PER_MODEL_MEMO_SIZE`` such values are kept).
    An estimator whose ``random_state`` is not an integer (None: unseeded) always computes."""
    seed = getattr(estimator, "random_state", 0)
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool):  # unseeded: every fit differs
        return compute()
    params = sorted((name, repr(value)) for name, value in estimator.get_params(deep=False).items())
    identity = (type(estimator).__module__, type(estimator).__qualname__, what, params, array_digest(X))
    key = hashlib.sha256(repr(identity).encode()).hexdigest()
    if key in _per_model_memo:
        _per_model_memo.move_to_end(key)
        return copy.deepcopy(_per_model_memo[key])
    value = compute()
    _per_model_memo[key] = copy.deepcopy(value)
    while len(_per_model_memo) > PER_MODEL_MEMO_SIZE:
        _per_model_memo.popitem(last=False)
    return value


class PerModelBaseline(Baseline):
    """Base for baselines fitted on each model separately; subclasses define ``concepts_for``.

    ``fit`` never modifies X_A or X_B: subclasses receive read-only views.
    """

    needs_features = True  # k <= d (PCA, NMF); clustering methods set False
    # concepts_for is a pure function of X and the parameters, so a side's fit may be reused
    # (per_model_fit); a subclass that keeps state from it (the SAEs keep their autoencoders) sets False
    reuse_fits = True

    def concepts_for(self, X: np.ndarray) -> tuple[list[Concept], dict[str, Any]]:
        """Concepts (and diagnostics) for one representation X (N, d)."""
        raise NotImplementedError

    def validate(self, X: np.ndarray) -> None:
        """Method-specific checks of one representation (e.g. NMF needs X >= 0); a representation the
        method cannot explain raises :class:`NotApplicableError`."""

    def fit(self, X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray | None = None) -> PerModelBaseline:
        self.check_params()
        X_A, X_B = check_representations(X_A, X_B, min_samples=2)
        concepts: dict[str, list[Concept]] = {}
        info: dict[str, Any] = {"n_concepts": self.n_concepts, "random_state": self.random_state}
        views = {"A": X_A.view(), "B": X_B.view()}
        for side, view in views.items():  # both sides checked before either is fitted
            view.flags.writeable = False  # a method that tries to modify its input fails loudly
            try:
                check_n_concepts(self.n_concepts, view, self.needs_features)
                self.validate(view)
            except NotApplicableError as error:
                raise NotApplicableError(f"model {side}: {error}") from None
        for side, view in views.items():
            if self.reuse_fits:
                concepts[side], info[side] = per_model_fit(
                    self, "concepts", view, lambda view=view: self.concepts_for(view)
                )
            else:
                concepts[side], info[side] = self.concepts_for(view)
        self.explanation_ = Explanation(self.name, concepts, info=info)
        return self
