"""Debiased linear CKA against the plain kernel formula; the learned linear alignment."""

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from rdx.methods.alignment import (
    AlignmentResult,
    debiased_linear_cka,
    debiased_linear_cka_torch,
    fit_linear_alignment,
    split_indices,
)


@pytest.fixture(autouse=True, scope="module")
def single_torch_thread():
    """These tensors are tiny: one thread avoids the cost of thread hand-offs on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def plain_unbiased_hsic(K: np.ndarray, L: np.ndarray) -> float:
    """Slow reference: Song et al. (2012) on explicit N x N kernels."""
    n = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0.0)
    np.fill_diagonal(L, 0.0)
    ones = np.ones(n)
    return float(
        (
            np.trace(K @ L)
            + (ones @ K @ ones) * (ones @ L @ ones) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * (ones @ K @ L @ ones)
        )
        / (n * (n - 3))
    )


def plain_debiased_cka(X: np.ndarray, Y: np.ndarray) -> float:
    K, L = X @ X.T, Y @ Y.T
    return plain_unbiased_hsic(K, L) / np.sqrt(plain_unbiased_hsic(K, K) * plain_unbiased_hsic(L, L))


def related_pair(n: int, d_x: int, d_y: int, seed: int, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d_x))
    Y = X @ rng.normal(size=(d_x, d_y)) + noise * rng.normal(size=(n, d_y))
    return X, Y


@pytest.mark.parametrize("n", [4, 7, 60])
def test_cka_equals_plain_kernel_formula(n):
    X, Y = related_pair(n, 5, 3, seed=n)
    X += 7.0  # an offset: the estimator ignores translations, the features are not pre-centred
    assert debiased_linear_cka(X, Y) == pytest.approx(plain_debiased_cka(X, Y), rel=1e-9, abs=1e-12)


def test_cka_of_a_representation_with_itself_is_one():
    X = np.random.default_rng(0).normal(size=(50, 8))
    assert debiased_linear_cka(X, X) == pytest.approx(1.0, abs=1e-12)


def test_cka_invariant_to_orthogonal_maps_and_isotropic_scaling():
    X, Y = related_pair(80, 6, 4, seed=1)
    Q = ortho_group.rvs(6, random_state=2)
    reference = debiased_linear_cka(X, Y)
    assert debiased_linear_cka(X @ Q, Y) == pytest.approx(reference, rel=1e-10)
    assert debiased_linear_cka(3.7 * X, Y) == pytest.approx(reference, rel=1e-10)
    assert debiased_linear_cka(X, 0.01 * Y + 5.0) == pytest.approx(reference, rel=1e-10)


def test_numpy_and_torch_agree_and_torch_has_a_gradient():
    X, Y = related_pair(40, 5, 7, seed=3)
    X_t = torch.tensor(X, requires_grad=True)
    value = debiased_linear_cka_torch(X_t, torch.tensor(Y))
    assert float(value.detach()) == pytest.approx(debiased_linear_cka(X, Y), rel=1e-12)
    value.backward()
    assert X_t.grad is not None and X_t.grad.shape == X.shape
    assert torch.isfinite(X_t.grad).all() and X_t.grad.abs().sum() > 0
    value_32 = debiased_linear_cka_torch(X_t.detach().float(), torch.tensor(Y).float())
    assert float(value_32) == pytest.approx(float(value.detach()), abs=1e-5)


def test_cka_errors():
    X = np.zeros((10, 3))
    with pytest.raises(ValueError, match="at least 4"):
        debiased_linear_cka(X[:3], X[:3])
    with pytest.raises(ValueError, match="same samples"):
        debiased_linear_cka(X, X[:9])
    with pytest.raises(ValueError, match="2-D"):
        debiased_linear_cka(X[:, 0], X)
    with pytest.raises(ValueError, match="NaN"):
        debiased_linear_cka(np.full((10, 3), np.nan), X)
    with pytest.raises(ValueError, match="not positive"):
        debiased_linear_cka(X, np.random.default_rng(0).normal(size=(10, 2)))


def test_split_is_seeded_disjoint_and_complete():
    train, heldout = split_indices(20, 0.7, random_state=5)
    assert len(train) == 14 and len(heldout) == 6
    assert np.array_equal(np.sort(np.concatenate([train, heldout])), np.arange(20))
    again = split_indices(20, 0.7, random_state=5)
    assert np.array_equal(train, again[0]) and np.array_equal(heldout, again[1])
    assert not np.array_equal(train, split_indices(20, 0.7, random_state=6)[0])


def linearly_mixed_pair(n: int = 120, d: int = 6, seed: int = 0):
    """Y = X M for a random invertible M, plus small noise: an alignable pair with CKA well below 1."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(0.2, 3.0, d)
    M = rng.normal(size=(d, d))
    Y = X @ M + 0.01 * rng.normal(size=(n, d))
    return X, Y


def test_alignment_raises_heldout_cka_on_a_linearly_mixed_pair():
    X, Y = linearly_mixed_pair()
    result = fit_linear_alignment(X, Y, steps=40, lr=0.05, device="cpu")
    assert isinstance(result, AlignmentResult)
    assert result.heldout_cka > result.initial_heldout_cka + 0.05
    assert result.train_cka > result.initial_train_cka
    assert result.initial_heldout_cka == pytest.approx(
        debiased_linear_cka(X[result.heldout_indices], Y[result.heldout_indices]), abs=1e-5
    )
    # the recorded held-out CKA is that of the returned map
    aligned = result.transform(X)
    assert aligned.shape == X.shape and aligned.dtype == np.float32
    assert result.heldout_cka == pytest.approx(
        debiased_linear_cka(aligned[result.heldout_indices], Y[result.heldout_indices]), abs=1e-4
    )


def overfitting_pair(seed: int = 4):
    """Unrelated features, few samples: the map soon fits noise and held-out CKA peaks early."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(30, 10)), rng.normal(size=(30, 10))


def test_alignment_is_deterministic_for_a_fixed_seed():
    X, Y = overfitting_pair()
    first = fit_linear_alignment(X, Y, steps=20, lr=0.05, random_state=3, device="cpu")
    second = fit_linear_alignment(X, Y, steps=20, lr=0.05, random_state=3, device="cpu")
    np.testing.assert_array_equal(first.weight, second.weight)
    np.testing.assert_array_equal(first.bias, second.bias)
    np.testing.assert_array_equal(first.train_indices, second.train_indices)
    assert first.history == second.history
    other_split = fit_linear_alignment(X, Y, steps=20, lr=0.05, random_state=4, device="cpu")
    assert not np.array_equal(first.heldout_indices, other_split.heldout_indices)


def test_best_is_never_worse_than_the_start_or_the_last_step():
    X, Y = overfitting_pair()
    best = fit_linear_alignment(X, Y, steps=20, lr=0.05, device="cpu")
    last = fit_linear_alignment(X, Y, steps=20, lr=0.05, keep="last", device="cpu")
    assert [step for step, _, _ in best.history] == list(range(21))
    assert best.history == last.history  # same run, only the kept weights differ
    assert best.heldout_cka == max(heldout for _, _, heldout in best.history)
    assert best.history[best.kept_step][1:] == (best.train_cka, best.heldout_cka)
    assert best.heldout_cka >= best.initial_heldout_cka
    assert last.kept_step == 20 and last.keep == "last" and last.heldout_cka == last.history[-1][2]
    # this pair overfits: held-out CKA peaks before the last step, so the two policies differ
    assert 0 < best.kept_step < 20 and best.heldout_cka > last.heldout_cka
    assert not np.array_equal(best.weight, last.weight)


def test_zero_steps_returns_the_identity_and_the_map_keeps_source_dims():
    X, Y = related_pair(40, 5, 9, seed=5)
    result = fit_linear_alignment(X, Y, steps=0, device="cpu")
    assert result.kept_step == 0 and len(result.history) == 1
    np.testing.assert_array_equal(result.weight, np.eye(5, dtype=np.float32))
    assert result.transform(X).shape == (40, 5)
    assert result.heldout_cka == result.initial_heldout_cka


def test_alignment_errors():
    X, Y = related_pair(40, 5, 3, seed=6)
    with pytest.raises(ValueError, match="same images"):
        fit_linear_alignment(X, Y[:30], device="cpu")
    with pytest.raises(ValueError, match="at least 4"):
        fit_linear_alignment(X[:10], Y[:10], device="cpu")  # 7 + 3 samples
    with pytest.raises(ValueError, match="keep"):
        fit_linear_alignment(X, Y, keep="first", device="cpu")
    with pytest.raises(ValueError, match="train_fraction"):
        fit_linear_alignment(X, Y, train_fraction=1.0, device="cpu")
    with pytest.raises(ValueError, match="steps"):
        fit_linear_alignment(X, Y, steps=-1, device="cpu")
    result = fit_linear_alignment(X, Y, steps=1, device="cpu")
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        result.transform(Y)
