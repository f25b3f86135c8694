"""Out-of-fold logistic probes and label guidance of the similarity matrices."""

import numpy as np
import pytest

import rdx.methods.guidance as guidance
from rdx.methods.guidance import apply_guidance, probe_accuracy, probe_predictions


def blobs(per_class: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat([3, 5, 8], per_class)
    centres = rng.normal(size=(3, 4)) * 3
    X = centres[np.searchsorted([3, 5, 8], y)] + rng.normal(size=(len(y), 4))
    return X, y


class MemorisingSpy:
    """A probe that records the rows it was fitted on and refuses to predict any of them."""

    fitted_rows: list[set[int]] = []

    def fit(self, X, y):
        self.rows = set(X[:, 0].astype(int).tolist())  # column 0 carries the image index
        self.label = y[0]
        MemorisingSpy.fitted_rows.append(self.rows)
        return self

    def predict(self, X):
        seen = self.rows & set(X[:, 0].astype(int).tolist())
        assert not seen, f"predicting images the probe was trained on: {sorted(seen)[:5]}"
        return np.full(len(X), self.label)


def test_each_prediction_comes_from_a_probe_that_never_saw_the_image(monkeypatch):
    X, y = blobs()
    X = np.column_stack([np.arange(len(y)), X])
    MemorisingSpy.fitted_rows = []
    monkeypatch.setattr(guidance, "make_probe", lambda **kwargs: MemorisingSpy())
    probe_predictions(X, y, n_splits=5)
    assert len(MemorisingSpy.fitted_rows) == 5
    n = len(y)
    # every image is left out by exactly one fold model and trained on by the other four
    times_trained = np.bincount(
        np.concatenate([list(rows) for rows in MemorisingSpy.fitted_rows]), minlength=n
    )
    assert np.all(times_trained == 4)


def test_probe_accuracy_matches_its_predictions_and_is_deterministic():
    X, y = blobs()
    accuracy, predictions = probe_accuracy(X, y)
    assert predictions.dtype == y.dtype and predictions.shape == y.shape
    assert accuracy == pytest.approx(np.mean(predictions == y))
    assert accuracy > 0.9  # well-separated blobs
    np.testing.assert_array_equal(predictions, probe_predictions(X, y))


def test_probe_keeps_string_labels():
    X, y = blobs(per_class=10)
    names = np.array(["three", "five", "eight"])[np.searchsorted([3, 5, 8], y)]
    predictions = probe_predictions(X, names)
    assert predictions.dtype == names.dtype and set(predictions) <= set(names)


def test_probe_errors():
    X, y = blobs(per_class=4)
    with pytest.raises(ValueError, match="at least n_splits"):
        probe_predictions(X, y, n_splits=5)
    with pytest.raises(ValueError, match="2 classes"):
        probe_predictions(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="one label per row"):
        probe_predictions(X, y[:-1])


RANKS = np.array(
    [
        [0, 1, 2, 3],
        [1, 0, 3, 2],
        [2, 3, 0, 1],
        [3, 1, 2, 0],
    ],
    dtype=np.int32,
)
LABELS = np.array([0, 0, 1, 0])


def test_guidance_on_a_hand_made_matrix():
    F = 15  # 5 * max = 5 * 3
    expected = np.array(
        [
            [0, 1, F, 3],
            [1, 0, F, 2],
            [F, F, 0, F],
            [3, 1, F, 0],
        ],
        dtype=np.int32,
    )
    guided = apply_guidance(RANKS, LABELS)
    np.testing.assert_array_equal(guided, expected)
    assert guided.dtype == np.int32  # 15 fits the ranks' integer type
    assert RANKS[0, 2] == 2  # the input is untouched without out=


def test_guidance_float_and_in_place():
    S = RANKS.astype(np.float64) / 3.0
    expected = S.copy()
    expected[2, [0, 1, 3]] = expected[[0, 1, 3], 2] = 5.0
    result = apply_guidance(S, LABELS, out=S)
    assert result is S
    np.testing.assert_array_equal(S, expected)


def test_guidance_promotes_integers_that_cannot_hold_the_value():
    guided = apply_guidance(RANKS, LABELS, factor=2.5)  # 7.5 is not an integer
    assert guided.dtype == np.float32 and guided[0, 2] == 7.5 and guided[0, 1] == 1
    with pytest.raises(ValueError, match="cannot hold"):
        apply_guidance(RANKS.copy(), LABELS, factor=2.5, out=RANKS.copy())


def test_guidance_in_small_blocks_equals_the_dense_mask(monkeypatch):
    rng = np.random.default_rng(0)
    S = rng.random((37, 37))
    labels = rng.integers(0, 4, size=37)
    dense = S.copy()
    dense[labels[:, None] != labels[None, :]] = 5.0 * S.max()
    monkeypatch.setattr(guidance, "GUIDANCE_BLOCK_ELEMENTS", 37 * 3)  # 3 rows per block
    np.testing.assert_array_equal(apply_guidance(S, labels), dense)


def test_pairs_cross_label_in_both_models_get_equal_ranks():
    # the spec's consequence: such pairs end with the same value in both models, hence difference 0
    rng = np.random.default_rng(1)
    from rdx.methods.rdx import neighbour_ranks, pairwise_distances

    X_A, X_B = rng.normal(size=(20, 3)), rng.normal(size=(20, 5))
    labels_A, labels_B = rng.integers(0, 3, size=20), rng.integers(0, 3, size=20)
    R_A = apply_guidance(neighbour_ranks(pairwise_distances(X_A)), labels_A)
    R_B = apply_guidance(neighbour_ranks(pairwise_distances(X_B)), labels_B)
    both = (labels_A[:, None] != labels_A[None, :]) & (labels_B[:, None] != labels_B[None, :])
    assert both.any()
    np.testing.assert_array_equal(R_A[both], R_B[both])
    assert np.all(R_A[both] == 5 * 19)


def test_guidance_errors():
    with pytest.raises(ValueError, match="square"):
        apply_guidance(np.zeros((3, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="one label per image"):
        apply_guidance(np.zeros((3, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="shape"):
        apply_guidance(np.zeros((3, 3)), np.zeros(3), out=np.zeros((2, 2)))
