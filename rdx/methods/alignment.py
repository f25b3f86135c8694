"""Representation alignment for RDX's "aligned" variant (RDX_METHOD.md section 1, Variants).

Two pieces:

- Debiased linear CKA: the unbiased HSIC estimator of Song et al. (2012) with linear kernels, normalised
  as CKA (Kornblith et al. 2019; Nguyen et al. 2021). It is computed from the features in O(N·d) memory;
  the N x N kernels are never formed.
- ``fit_linear_alignment``: a linear map f: R^{d_s} -> R^{d_s} learned by full-batch Adam to maximise the
  debiased CKA between f(X_source) and X_target on a random training split, scored on the held-out rest.
  RDX then compares f(X_A) with X_B (direction 10) and X_A with f_{B->A}(X_B) (direction 01).

Everything here takes arrays and plain parameters; nothing reads configs, files or loggers' handlers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from rdx.devices import resolve_device

logger = logging.getLogger(__name__)

KEEP_CHOICES = ("best", "last")
MIN_SAMPLES = 4  # the unbiased HSIC divides by n (n - 3) and (n - 2)


def _check_pair(X: np.ndarray | torch.Tensor, Y: np.ndarray | torch.Tensor) -> int:
    """Validate two (N, d) feature matrices of the same N >= 4 samples; return N."""
    for name, features in (("X", X), ("Y", Y)):
        if features.ndim != 2:
            raise ValueError(
                f"{name} must be 2-D (N samples x d features), got shape {tuple(features.shape)}"
            )
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must describe the same samples: X has {X.shape[0]} rows, Y has {Y.shape[0]}"
        )
    if X.shape[0] < MIN_SAMPLES:
        raise ValueError(f"debiased CKA needs at least {MIN_SAMPLES} samples, got N={X.shape[0]}")
    return int(X.shape[0])


def unbiased_hsic_linear_torch(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Unbiased HSIC estimate (Song et al. 2012) of linear kernels K = X X^T and L = Y Y^T.

    HSIC_u = [tr(K~ L~) + (1'K~1)(1'L~1) / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n (n-3)), where K~ is K with
    a zeroed diagonal. Each term is rewritten in the features so that nothing N x N is formed:
    tr(K~ L~) = ||X^T Y||_F^2 - sum_i |x_i|^2 |y_i|^2 and K~1 = X (X^T 1) - (|x_i|^2)_i.

    The estimate is invariant to translating X or Y, so both are centred first: this changes nothing
    mathematically and keeps the differences of large terms well conditioned. Differentiable; computed in
    the inputs' dtype.

    Args:
        X: (N, d_x) features, N >= 4.
        Y: (N, d_y) features of the same samples.

    Returns:
        0-d tensor, the HSIC estimate (may be slightly negative when there is no dependence).
    """
    n = _check_pair(X, Y)
    X = X - X.mean(dim=0, keepdim=True)
    Y = Y - Y.mean(dim=0, keepdim=True)
    squared_norms_x = (X * X).sum(dim=1)  # diag(K), (N,)
    squared_norms_y = (Y * Y).sum(dim=1)
    cross = X.T @ Y  # (d_x, d_y)
    trace_term = (cross * cross).sum() - (squared_norms_x * squared_norms_y).sum()
    row_sums_x = X @ X.sum(dim=0) - squared_norms_x  # K~ 1, (N,)
    row_sums_y = Y @ Y.sum(dim=0) - squared_norms_y
    total_term = row_sums_x.sum() * row_sums_y.sum() / ((n - 1) * (n - 2))
    product_term = 2.0 / (n - 2) * (row_sums_x @ row_sums_y)
    return (trace_term + total_term - product_term) / (n * (n - 3))


def _cka_from_hsic(hsic_xy: torch.Tensor, hsic_xx: torch.Tensor, hsic_yy: torch.Tensor) -> torch.Tensor:
    """CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)); NaN or inf when a self-HSIC is not positive."""
    return hsic_xy / torch.sqrt(hsic_xx * hsic_yy)


def debiased_linear_cka_torch(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Debiased linear CKA between two representations of the same samples, differentiable.

    Invariant to orthogonal transforms, isotropic scaling and translation of either input; CKA(X, X) = 1.
    Computed in the inputs' dtype (pass float64 for exact values, float32 is fine for gradients).

    Args:
        X: (N, d_x) features, N >= 4.
        Y: (N, d_y) features of the same samples, same order.

    Returns:
        0-d tensor, typically in [0, 1] (the debiased estimate can dip slightly below 0). NaN or inf when a
        representation is constant (its self-HSIC estimate is not positive).
    """
    return _cka_from_hsic(
        unbiased_hsic_linear_torch(X, Y), unbiased_hsic_linear_torch(X, X), unbiased_hsic_linear_torch(Y, Y)
    )


def debiased_linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Debiased linear CKA between (N, d_x) and (N, d_y) features, computed in float64.

    The same formula as ``debiased_linear_cka_torch`` (which this calls on float64 CPU tensors).

    Raises:
        ValueError: not 2-D, different N, N < 4, NaN/inf, or a representation with no variance (CKA
            undefined).
    """
    X64 = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float64))
    Y64 = torch.from_numpy(np.ascontiguousarray(Y, dtype=np.float64))
    _check_pair(X64, Y64)
    if not (torch.isfinite(X64).all() and torch.isfinite(Y64).all()):
        raise ValueError("X and Y must not contain NaN or inf")
    hsic_xx = unbiased_hsic_linear_torch(X64, X64)
    hsic_yy = unbiased_hsic_linear_torch(Y64, Y64)
    if hsic_xx <= 0 or hsic_yy <= 0:
        raise ValueError(
            "debiased CKA is undefined: the HSIC estimate of a representation with itself is not positive "
            f"(HSIC(X, X) = {float(hsic_xx):.3g}, HSIC(Y, Y) = {float(hsic_yy):.3g}); "
            "constant features or too few samples"
        )
    return float(_cka_from_hsic(unbiased_hsic_linear_torch(X64, Y64), hsic_xx, hsic_yy))


def split_indices(n_samples: int, train_fraction: float, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of 0..n_samples-1 into training and held-out indices.

    The first round(train_fraction * N) entries of a permutation drawn from
    ``np.random.default_rng(random_state)`` train; the rest are held out. Both are returned sorted.
    The global NumPy random state is not touched.

    Raises:
        ValueError: train_fraction outside (0, 1) or a part with fewer than 4 samples.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction}")
    n_train = int(round(train_fraction * n_samples))
    n_heldout = n_samples - n_train
    if min(n_train, n_heldout) < MIN_SAMPLES:
        raise ValueError(
            f"too few samples for the alignment split: N={n_samples} with train_fraction={train_fraction} "
            f"gives {n_train} training and {n_heldout} held-out samples; each part needs at least "
            f"{MIN_SAMPLES} for debiased CKA"
        )
    permutation = np.random.default_rng(random_state).permutation(n_samples)
    return np.sort(permutation[:n_train]), np.sort(permutation[n_train:])


@dataclass
class AlignmentResult:
    """A learned linear alignment f(x) = weight @ x + bias and how it scored.

    Attributes:
        weight: (d_s, d_s) float32 matrix of f.
        bias: (d_s,) float32 offset of f. CKA ignores translations, so its gradient is rounding noise and it
            only drifts slightly from 0 (~1e-3 after 100 steps); Euclidean distances ignore it as well.
        train_indices: sorted indices of the samples the map was fitted on.
        heldout_indices: sorted indices of the held-out samples.
        initial_train_cka, initial_heldout_cka: CKA with the initial (identity) map, i.e. unaligned.
        train_cka, heldout_cka: CKA with the kept weights.
        kept_step: number of Adam steps behind the kept weights (0 = the initial weights).
        keep: "best" (highest held-out CKA over steps 0..steps) or "last".
        history: (step, train_cka, heldout_cka) for steps 0..steps.
    """

    weight: np.ndarray
    bias: np.ndarray
    train_indices: np.ndarray
    heldout_indices: np.ndarray
    initial_train_cka: float
    initial_heldout_cka: float
    train_cka: float
    heldout_cka: float
    kept_step: int
    keep: str
    history: list[tuple[int, float, float]] = field(default_factory=list)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Apply the map: (N, d_s) features -> (N, d_s) float32 ``X @ weight.T + bias``."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.weight.shape[1]:
            raise ValueError(f"expected (N, {self.weight.shape[1]}) features, got shape {X.shape}")
        return X @ self.weight.T + self.bias


def fit_linear_alignment(
    X_source: np.ndarray,
    X_target: np.ndarray,
    train_fraction: float = 0.7,
    steps: int = 100,
    lr: float = 1e-3,
    random_state: int = 0,
    keep: str = "best",
    device: str | torch.device | None = None,
) -> AlignmentResult:
    """Learn f = Linear(d_s, d_s) maximising debiased linear CKA between f(X_source) and X_target.

    The samples are split at random (seeded by ``random_state``): ``train_fraction`` of them fit the map
    by ``steps`` full-batch Adam steps on -CKA(f(X_source[train]), X_target[train]); the rest are held
    out and scored after every step. The map starts at the identity with zero bias: CKA is invariant to
    orthogonal maps and isotropic scaling, so any such start would do, and the identity makes step 0
    exactly the unaligned CKA, the baseline every later step is judged against. Nothing is standardised;
    the map acts on the raw features. Optimisation and the recorded CKA values are float32 (agreeing with
    ``debiased_linear_cka``'s float64 to about 1e-5 or better). The result is deterministic for a fixed
    ``random_state`` on a given device (no random initialisation, full batches).

    Args:
        X_source: (N, d_s) representation to be mapped (X_A for f_{A->B}).
        X_target: (N, d_t) representation of the same images, same order (X_B for f_{A->B}).
        train_fraction: share of the N samples used for fitting; the rest are held out.
        steps: Adam steps (the paper: 100).
        lr: Adam learning rate (the paper: 1e-3).
        random_state: seed of the split.
        keep: "best" keeps the weights with the highest held-out CKA over steps 0..steps (ties: the
            earliest), so the result is never worse on held-out data than no alignment; "last" keeps
            the weights after the last step, as the public reference code effectively does (its
            best-weights check never fires).
        device: torch device; None means CUDA when available, else CPU.

    Returns:
        ``AlignmentResult``; ``result.transform(X_source)`` gives the aligned (N, d_s) features.

    Raises:
        ValueError: not 2-D, different N, too few samples for the split (each part needs >= 4),
            bad keep, steps or lr, or constant features.
    """
    if keep not in KEEP_CHOICES:
        raise ValueError(f"keep must be one of {KEEP_CHOICES}, got {keep!r}")
    if not isinstance(steps, int | np.integer) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    X_source = np.asarray(X_source)
    X_target = np.asarray(X_target)
    for name, features in (("X_source", X_source), ("X_target", X_target)):
        if features.ndim != 2:
            raise ValueError(f"{name} must be 2-D (N images x d features), got shape {features.shape}")
    if X_source.shape[0] != X_target.shape[0]:
        raise ValueError(
            f"X_source and X_target must describe the same images: {X_source.shape[0]} vs "
            f"{X_target.shape[0]} rows"
        )
    train_indices, heldout_indices = split_indices(X_source.shape[0], train_fraction, random_state)

    device = resolve_device(device)
    # float32: with centred features CKA agrees with float64 to ~1e-6, at about half the cost.
    dtype = torch.float32

    def as_tensor(features: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(features), dtype=dtype, device=device)

    source_train, source_heldout = as_tensor(X_source[train_indices]), as_tensor(X_source[heldout_indices])
    target_train, target_heldout = as_tensor(X_target[train_indices]), as_tensor(X_target[heldout_indices])
    # The target side of every CKA is fixed: its self-HSIC is computed once.
    hsic_target_train = unbiased_hsic_linear_torch(target_train, target_train)
    hsic_target_heldout = unbiased_hsic_linear_torch(target_heldout, target_heldout)

    def cka(source: torch.Tensor, target: torch.Tensor, hsic_target: torch.Tensor) -> torch.Tensor:
        hsic_source = unbiased_hsic_linear_torch(source, source)
        return _cka_from_hsic(unbiased_hsic_linear_torch(source, target), hsic_source, hsic_target)

    d_source = X_source.shape[1]
    weight = torch.eye(d_source, dtype=dtype, device=device, requires_grad=True)
    bias = torch.zeros(d_source, dtype=dtype, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=lr)

    history: list[tuple[int, float, float]] = []
    best_heldout, best_step = -np.inf, 0
    best_weight, best_bias = weight.detach().clone(), bias.detach().clone()
    for step in range(steps + 1):
        optimizer.zero_grad(set_to_none=True)
        train_cka = cka(source_train @ weight.T + bias, target_train, hsic_target_train)
        with torch.no_grad():
            heldout_cka = cka(source_heldout @ weight.T + bias, target_heldout, hsic_target_heldout)
        history.append((step, float(train_cka.detach()), float(heldout_cka)))
        if not np.isfinite(history[-1][1:]).all():
            raise ValueError(
                f"CKA is not finite at step {step} (train {history[-1][1]}, held-out {history[-1][2]}): "
                "a representation is constant on a split, or the optimisation diverged"
            )
        if keep == "best" and history[-1][2] > best_heldout:
            best_heldout, best_step = history[-1][2], step
            best_weight, best_bias = weight.detach().clone(), bias.detach().clone()
        if step == steps:
            break
        (-train_cka).backward()
        optimizer.step()

    if keep == "last":
        best_step, best_weight, best_bias = steps, weight.detach(), bias.detach()
    kept_weight = best_weight.cpu().numpy().astype(np.float32)
    kept_bias = best_bias.cpu().numpy().astype(np.float32)
    result = AlignmentResult(
        weight=kept_weight,
        bias=kept_bias,
        train_indices=train_indices,
        heldout_indices=heldout_indices,
        initial_train_cka=history[0][1],
        initial_heldout_cka=history[0][2],
        train_cka=history[best_step][1],
        heldout_cka=history[best_step][2],
        kept_step=best_step,
        keep=keep,
        history=history,
    )
    logger.info(
        "linear alignment (%d -> %d dims): held-out CKA %.4f -> %.4f, train %.4f -> %.4f, kept step %d/%d",
        d_source,
        X_target.shape[1],
        result.initial_heldout_cka,
        result.heldout_cka,
        result.initial_train_cka,
        result.train_cka,
        best_step,
        steps,
    )
    return result
