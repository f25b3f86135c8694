"""Agreement between methods: which concepts of one method another method finds too.

Two methods' concepts on the same side are compared by their members (image indices): the Jaccard index
|C ∩ C'| / |C ∪ C'| of every pair of concepts, then the one-to-one matching with the largest total
Jaccard (the Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``). The matching has
min(k, k') pairs, those without any shared member included (Jaccard 0); its mean Jaccard summarises how
much the two methods agree on that side (NaN when either shows no concept there).

A concept is **found by at least two methods** when, for some other method, its matched partner has a
Jaccard of at least ``threshold`` (default 0.5). Members of one method's side are disjoint in the run
record, and with a threshold of at least 0.5 a concept can then overlap that much with at most one
concept of another method (apart from exact ties at 0.5), so the matched partner is that concept.

Only the shown concepts count (``Explanation.concepts``; null clusters are not compared). Sides are
compared with the same side: what each method says model A groups together that model B does not, and
the converse. Plain functions over ``Explanation`` objects; nothing reads configs or files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from rdx.methods.explanation import SIDES, Concept, Explanation

DEFAULT_THRESHOLD = 0.5

__all__ = [
    "DEFAULT_THRESHOLD",
    "Agreement",
    "ConceptMatch",
    "PairAgreement",
    "SharedConcept",
    "concept_agreement",
    "jaccard",
    "jaccard_matrix",
    "match_concepts",
]


def jaccard(first: np.ndarray, second: np.ndarray) -> float:
    """|first ∩ second| / |first ∪ second| of two sets of image indices; 0 when both are empty."""
    first, second = np.unique(first), np.unique(second)
    union = len(first) + len(second)
    if union == 0:
        return 0.0
    shared = len(np.intersect1d(first, second, assume_unique=True))
    return shared / (union - shared)


def jaccard_matrix(first: Sequence[Concept], second: Sequence[Concept]) -> np.ndarray:
    """Jaccard of the members of every concept pair, (len(first), len(second)) float64."""
    matrix = np.zeros((len(first), len(second)))
    for row, concept in enumerate(first):
        for column, other in enumerate(second):
            matrix[row, column] = jaccard(concept.members, other.members)
    return matrix


@dataclass(frozen=True)
class ConceptMatch:
    """One matched pair: concept ``first`` (its 1-based index) of one method, ``second`` of the other."""

    first: int
    second: int
    jaccard: float

    def to_dict(self) -> dict[str, Any]:
        return {"first": self.first, "second": self.second, "jaccard": self.jaccard}


def match_concepts(first: Sequence[Concept], second: Sequence[Concept]) -> list[ConceptMatch]:
    """The one-to-one matching of two concept lists with the largest total member Jaccard.

    Returns:
        min(len(first), len(second)) matches in the order of ``first``, zero-overlap pairs included.
    """
    if not first or not second:
        return []
    matrix = jaccard_matrix(first, second)
    rows, columns = linear_sum_assignment(matrix, maximize=True)
    return [
        ConceptMatch(first[row].index, second[column].index, float(matrix[row, column]))
        for row, column in sorted(zip(rows, columns, strict=True))
    ]


@dataclass(frozen=True)
class PairAgreement:
    """How two methods' concepts on one side match."""

    side: str
    first: str
    second: str
    matches: tuple[ConceptMatch, ...]

    @property
    def mean_jaccard(self) -> float:
        """Mean Jaccard over the matches; NaN when there are none (a method shows no concept here)."""
        if not self.matches:
            return math.nan
        return float(np.mean([match.jaccard for match in self.matches]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "first": self.first,
            "second": self.second,
            "matches": [match.to_dict() for match in self.matches],
            "mean_jaccard": self.mean_jaccard,
        }


@dataclass(frozen=True)
class SharedConcept:
    """A concept that at least one other method finds: ``found_by`` lists, per such method, its matched
    concept's index and the Jaccard, as (method, index, jaccard)."""

    side: str
    method: str
    index: int
    found_by: tuple[tuple[str, int, float], ...]

    @property
    def n_methods(self) -> int:
        """Methods that find the concept, its own included."""
        return 1 + len(self.found_by)

    def to_dict(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "method": self.method,
            "index": self.index,
            "n_methods": self.n_methods,
            "found_by": [{"method": m, "index": i, "jaccard": j} for m, i, j in self.found_by],
        }


@dataclass(frozen=True)
class Agreement:
    """Agreement of every pair of methods on each side, and the concepts found by at least two methods.

    Attributes:
        methods: the method labels, in the given order; pairs follow it (first before second).
        threshold: the Jaccard a matched partner needs for a concept to count as found by both.
        pairs: per side, one ``PairAgreement`` per pair of methods.
        shared: per side, every concept (of any method) that at least one other method finds.
    """

    methods: tuple[str, ...]
    threshold: float
    pairs: dict[str, tuple[PairAgreement, ...]]
    shared: dict[str, tuple[SharedConcept, ...]]

    def pair(self, side: str, first: str, second: str) -> PairAgreement:
        """The agreement of two methods on a side, in either order (matches as the stored order has them)."""
        for pair in self.pairs[side]:
            if {pair.first, pair.second} == {first, second}:
                return pair
        raise KeyError(f"no pair ({first!r}, {second!r}) on side {side!r}; methods: {list(self.methods)}")

    def summary(self) -> dict[str, dict[str, float]]:
        """Per side, the mean matched Jaccard of each pair, keyed "first/second"."""
        return {
            side: {f"{pair.first}/{pair.second}": pair.mean_jaccard for pair in pairs}
            for side, pairs in self.pairs.items()
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "methods": list(self.methods),
            "threshold": self.threshold,
            "pairs": {side: [pair.to_dict() for pair in pairs] for side, pairs in self.pairs.items()},
            "shared": {side: [c.to_dict() for c in concepts] for side, concepts in self.shared.items()},
        }


def _labelled(explanations: Mapping[str, Explanation] | Sequence[Explanation]) -> dict[str, Explanation]:
    if isinstance(explanations, Mapping):
        return dict(explanations)
    labelled: dict[str, Explanation] = {}
    for explanation in explanations:
        if explanation.method in labelled:
            raise ValueError(
                f"two explanations are both labelled {explanation.method!r}; pass a mapping "
                "{label: explanation} to tell them apart"
            )
        labelled[explanation.method] = explanation
    return labelled


def concept_agreement(
    explanations: Mapping[str, Explanation] | Sequence[Explanation], threshold: float = DEFAULT_THRESHOLD
) -> Agreement:
    """Match every pair of methods' concepts per side by member Jaccard (module docstring).

    Args:
        explanations: {label: Explanation} in the order to report (e.g. a run's methods), or a sequence
            of explanations labelled by their ``method`` (labels must then differ).
        threshold: the Jaccard in (0, 1] a matched partner needs for a concept to count as found by both.

    Returns:
        ``Agreement`` (``to_dict`` for JSON).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold!r}")
    labelled = _labelled(explanations)
    methods = tuple(labelled)
    pairs: dict[str, tuple[PairAgreement, ...]] = {}
    shared: dict[str, tuple[SharedConcept, ...]] = {}
    for side in SIDES:
        concepts = {label: list(e.concepts.get(side, [])) for label, e in labelled.items()}
        side_pairs = tuple(
            PairAgreement(side, first, second, tuple(match_concepts(concepts[first], concepts[second])))
            for first, second in combinations(methods, 2)
        )
        found_by: dict[tuple[str, int], list[tuple[str, int, float]]] = {}
        for pair in side_pairs:
            for match in pair.matches:
                if match.jaccard >= threshold:
                    found_by.setdefault((pair.first, match.first), []).append(
                        (pair.second, match.second, match.jaccard)
                    )
                    found_by.setdefault((pair.second, match.second), []).append(
                        (pair.first, match.first, match.jaccard)
                    )
        order = {label: position for position, label in enumerate(methods)}
        shared[side] = tuple(
            SharedConcept(side, method, index, tuple(sorted(others, key=lambda o: order[o[0]])))
            for (method, index), others in sorted(
                found_by.items(), key=lambda item: (order[item[0][0]], item[0][1])
            )
        )
        pairs[side] = side_pairs
    return Agreement(methods, float(threshold), pairs, shared)
