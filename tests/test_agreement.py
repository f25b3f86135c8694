"""Agreement between methods: member Jaccard, the Hungarian matching per side, and the concepts that at
least two methods find."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from rdx.methods.explanation import Concept, Explanation
from rdx.metrics.agreement import concept_agreement, jaccard, jaccard_matrix, match_concepts


def concept(index: int, members) -> Concept:
    members = np.asarray(list(members), dtype=np.int64)
    return Concept(index, members, members[:9], 1.0)


def explanation(method: str, A: list, B: list | None = None) -> Explanation:
    return Explanation(
        method,
        {
            "A": [concept(i + 1, m) for i, m in enumerate(A)],
            "B": [concept(i + 1, m) for i, m in enumerate(B or [])],
        },
    )


def test_jaccard_of_index_sets():
    assert jaccard(np.array([1, 2, 3]), np.array([2, 3, 4])) == 0.5
    assert jaccard(np.array([1, 2, 2, 3]), np.array([3, 2, 1])) == 1.0  # sets: repeats do not count
    assert jaccard(np.array([1]), np.array([2])) == 0.0
    assert jaccard(np.array([], dtype=int), np.array([], dtype=int)) == 0.0


def test_matching_maximises_the_total_where_greedy_would_not():
    # Jaccard: first 1 ~ second 1: 6/14, first 1 ~ second 2: 0.4, first 2 ~ second 1: 0.4, first 2 ~ 2: 0.
    # Greedy takes the largest pair (1, 1) and is left with (2, 2): 0.43 in total; the best total is 0.8.
    first = [concept(1, range(0, 10)), concept(2, range(10, 14))]
    second = [concept(1, [*range(0, 6), *range(10, 14)]), concept(2, range(6, 10))]
    np.testing.assert_allclose(jaccard_matrix(first, second), [[6 / 14, 0.4], [0.4, 0.0]])
    matches = match_concepts(first, second)
    assert [(m.first, m.second) for m in matches] == [(1, 2), (2, 1)]
    assert [m.jaccard for m in matches] == pytest.approx([0.4, 0.4])


@pytest.mark.parametrize("seed", range(5))
def test_matching_equals_brute_force_over_permutations(seed):
    rng = np.random.default_rng(seed)
    first = [concept(i + 1, rng.choice(60, rng.integers(3, 20), replace=False)) for i in range(4)]
    second = [concept(i + 1, rng.choice(60, rng.integers(3, 20), replace=False)) for i in range(5)]
    matrix = jaccard_matrix(first, second)
    best = max(sum(matrix[r, c] for r, c in enumerate(p)) for p in itertools.permutations(range(5), 4))
    matches = match_concepts(first, second)
    assert len(matches) == 4 and len({m.second for m in matches}) == 4
    assert sum(m.jaccard for m in matches) == pytest.approx(best)


def test_agreement_per_side_and_pair_with_the_concepts_two_methods_find():
    one = explanation("one", A=[range(0, 10), range(10, 20)], B=[range(30, 40)])
    two = explanation("two", A=[range(10, 19), range(0, 4)], B=[range(40, 50)])
    three = explanation("three", A=[range(50, 60)], B=[])
    agreement = concept_agreement([one, two, three])
    assert agreement.methods == ("one", "two", "three")
    assert [(p.first, p.second) for p in agreement.pairs["A"]] == [
        ("one", "two"),
        ("one", "three"),
        ("two", "three"),
    ]

    pair = agreement.pair("A", "one", "two")
    assert [(m.first, m.second) for m in pair.matches] == [(1, 2), (2, 1)]
    assert [m.jaccard for m in pair.matches] == pytest.approx([0.4, 0.9])
    assert pair.mean_jaccard == pytest.approx(0.65)
    assert agreement.pair("A", "two", "one") is pair  # either order
    assert agreement.pair("A", "one", "three").mean_jaccard == 0.0  # matched, nothing shared
    # side B is matched on its own: the same members on side A would not count
    assert agreement.pair("B", "one", "two").mean_jaccard == 0.0
    assert math.isnan(agreement.pair("B", "one", "three").mean_jaccard)  # "three" shows nothing on B

    # found by at least two methods (threshold 0.5): one's concept 2 and two's concept 1, nothing on B
    shared = agreement.shared["A"]
    assert [(c.method, c.index, c.n_methods) for c in shared] == [("one", 2, 2), ("two", 1, 2)]
    assert shared[0].found_by == (("two", 1, pytest.approx(0.9)),)
    assert agreement.shared["B"] == ()
    assert agreement.summary()["A"]["one/two"] == pytest.approx(0.65)

    lower = concept_agreement([one, two, three], threshold=0.4)
    assert [(c.method, c.index) for c in lower.shared["A"]] == [
        ("one", 1),
        ("one", 2),
        ("two", 1),
        ("two", 2),
    ]
    json.dumps(agreement.to_dict())  # JSON-ready (NaN as JSON's NaN)


def test_a_concept_found_by_three_methods_lists_both_others():
    methods = {
        "rdx": explanation("rdx", A=[range(0, 20)]),
        "spec": explanation("spec", A=[range(0, 18)]),
        "kmeans": explanation("kmeans", A=[range(2, 20)]),
    }
    agreement = concept_agreement(methods)
    by_method = {c.method: c for c in agreement.shared["A"]}
    assert set(by_method) == {"rdx", "spec", "kmeans"}
    assert [name for name, _, _ in by_method["rdx"].found_by] == ["spec", "kmeans"]
    assert by_method["spec"].n_methods == 3


def test_bad_inputs_fail_clearly():
    one = explanation("same", A=[range(3)])
    with pytest.raises(ValueError, match="labelled 'same'"):
        concept_agreement([one, explanation("same", A=[range(3)])])
    for threshold in (0, 1.5, -0.1, True):
        with pytest.raises(ValueError, match="threshold"):
            concept_agreement([one], threshold=threshold)
    with pytest.raises(KeyError, match="no pair"):
        concept_agreement({"x": one, "y": one}).pair("A", "x", "z")
