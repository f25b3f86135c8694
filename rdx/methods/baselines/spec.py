"""SPEC (Jalali, Dibaei Nia & Farnia, "Towards an Explainable Comparison and Alignment of Feature
Embeddings", ICML 2025): concepts from the leading eigenvectors of a difference of kernel matrices.

Each model gets a Gaussian kernel on its own features, K[i, j] = exp(-|x_i - x_j|^2 / (2 sigma^2)), with
its own bandwidth sigma (default: the median pairwise distance of that model's features, see
``median_bandwidth``). SPEC reads the normalised kernel K / N, as the paper does: with clusters far apart,
K / N is close to block diagonal and each block (a cluster C) contributes an eigenvalue |C| / N, the
cluster's frequency, with an eigenvector close to the cluster's indicator 1_C / sqrt(|C|). The difference

    M_A = (K_A - eta K_B) / N

then has a large positive eigenvalue for a group that A's kernel holds together and B's does not (its
frequency in A minus eta times its frequency in B). So the leading eigenvectors of M_A are the concepts
of side "A", in rdx's convention (``rdx.methods.explanation``): what model A groups together that model
B does not (RDX's direction "01"). Side "B" takes M_B = (K_B - eta K_A) / N, what B groups together and A
does not (RDX's "10"). With eta = 1, M_B = -M_A and side B reads M_A's most negative eigenvalues.

Concepts from an eigenvector v of eigenvalue lambda (``concepts_from_eigenvectors``), the k leading ones
per side with lambda > 0 (a non-positive eigenvalue is no group this side holds together more, so a side
may show fewer than k):
- sign: an eigenvector's sign is arbitrary; it is flipped so that its entries sum to a non-negative
  number, as the authors' code does (a contrast between two groups, e.g. 1_C0 - 1_C1 for two groups one
  model separates and the other merges, sums to about 0, and its sign, so which group shows, is a coin
  toss),
- grid: the ``grid_size`` images with the largest entries of v (ties by index), the images the paper
  shows for each eigenvector,
- members: the paper shows the top-ranked images of each eigenvector and names no membership rule; here
  image i belongs to the concept on which its entry relative to the eigenvector's largest entry,
  v[i] / max(v), is largest, when that ratio is at least ``member_threshold`` (default 1/2). On the ideal
  indicator 1_C / sqrt(|C|) this gives C exactly; each image belongs to at most one concept per side,
  as the run record needs,
- score: lambda.

Two paths compute the eigenpairs, chosen as RDX chooses its own (``SPECBaseline.choose_path``):
- "exact": both N x N kernels in float64 (16 N^2 bytes), the leading eigenpairs of M by the RDX exact
  path's eigensolver (``rdx.methods.rdx.leading_eigenpairs``: Lanczos on matrix-vector products),
- "rff": random Fourier features (Rahimi & Recht 2007): phi(x) = [cos(W x), sin(W x)] / sqrt(m) with the
  m columns of W drawn from N(0, I / sigma^2) gives phi(x) . phi(y) ~ K(x, y), and |phi(x)| = 1 exactly.
  With Phi_A (N x 2m), Phi_B (N x 2m), Psi = [Phi_A, Phi_B] (N x D, D = 4m) and
  S_A = diag(I, -eta I) (S_B = diag(-eta I, I)), M ~ Psi S Psi^T / N. Its non-zero eigenpairs come from a
  problem of size D (``gram_difference_eigenpairs``), so no N x N matrix is formed; when N <= D the
  N x N approximate kernels are the smaller problem and are used instead. Memory O(N x features).

Every function takes arrays and plain parameters; nothing reads configs, files or loggers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator

from rdx.devices import resolve_device
from rdx.methods import sparse_rdx
from rdx.methods.baselines.base import Baseline
from rdx.methods.checks import check_positive_int, check_positive_number
from rdx.methods.explanation import Concept, Explanation
from rdx.methods.grids import top_activations
from rdx.methods.neighbourhoods import DEFAULT_BLOCK_BYTES, pairwise_distances, row_blocks
from rdx.methods.rdx import GIB, check_representations, leading_eigenpairs

log = logging.getLogger(__name__)

PATHS = ("auto", "exact", "rff")
AUTO_EXACT_MAX_N = 10000  # above this path="auto" takes random Fourier features
EXACT_MATRICES = 2.5  # the exact path's peak in N x N float64 matrices: both kernels and distance blocks
EXACT_OVERHEAD_BYTES = 1.0 * GIB  # imports, features, the eigensolver's vectors
MEDIAN_SAMPLE = 2000  # images whose pairwise distances give the median bandwidth (all when N is at most this)
ZERO_EIGENVALUE = 1e-10  # eigenvalues up to this, times (1 + eta), count as zero (M's scale is <= 1 + eta)

__all__ = [
    "SPECBaseline",
    "concepts_from_eigenvectors",
    "fourier_frequencies",
    "fourier_features",
    "gaussian_kernel_matrix",
    "gram_difference_eigenpairs",
    "kernel_difference_eigenpairs",
    "median_bandwidth",
    "rff_difference_eigenpairs",
    "sign_fixed",
]


# ------------------------------------------------------------------------------------------------
# kernels and features
# ------------------------------------------------------------------------------------------------


def median_bandwidth(
    X: np.ndarray, sample_size: int = MEDIAN_SAMPLE, random_state: int = 0, device: str = "auto"
) -> float:
    """The median heuristic: sigma = the median Euclidean distance between two different images.

    Over all pairs i < j when N <= ``sample_size``, else over the pairs of ``sample_size`` images drawn
    without replacement (seeded by ``random_state``).

    Raises:
        ValueError: the median distance is 0 (more than half the pairs are duplicates); give a bandwidth.
    """
    X = np.asarray(X)
    if X.shape[0] > sample_size:
        rows = np.sort(np.random.default_rng(random_state).choice(X.shape[0], sample_size, replace=False))
        X = X[rows]
    distances = pairwise_distances(X, dtype="float64", device=device)
    median = float(np.median(distances[np.triu_indices(X.shape[0], k=1)]))
    if not median > 0:
        raise ValueError(
            "the median distance between images is 0 (most pairs are duplicates): set the bandwidth "
            "(bandwidth_A / bandwidth_B) explicitly"
        )
    return median


def gaussian_kernel_matrix(X: np.ndarray, bandwidth: float, device: str = "auto") -> np.ndarray:
    """K[i, j] = exp(-|x_i - x_j|^2 / (2 bandwidth^2)), (N, N) float64, 1 on the diagonal."""
    kernel = pairwise_distances(X, dtype="float64", device=device)
    for rows in row_blocks(kernel.shape[0], kernel.shape[1], 8, DEFAULT_BLOCK_BYTES):
        block = kernel[rows]
        np.square(block, out=block)
        block *= -0.5 / bandwidth**2
        np.exp(block, out=block)
    return kernel


def fourier_frequencies(
    dimension: int, bandwidth: float, n_frequencies: int, generator: np.random.Generator
) -> np.ndarray:
    """Random frequencies W (dimension, n_frequencies) ~ N(0, I / bandwidth^2), the Gaussian kernel's
    spectral density, drawn from ``generator``; float64."""
    return generator.standard_normal((dimension, n_frequencies)) / bandwidth


def fourier_features(X: torch.Tensor | np.ndarray, frequencies: torch.Tensor | np.ndarray) -> torch.Tensor:
    """phi(x) = [cos(x W), sin(x W)] / sqrt(m) for the rows of X (b, d): (b, 2m) float64.

    phi(x) . phi(y) = mean over the m frequencies of cos(w . (x - y)), an unbiased estimate of the Gaussian
    kernel; |phi(x)| = 1 exactly. Shift invariant, so X may be centred first.
    """
    X = torch.as_tensor(X, dtype=torch.float64)
    frequencies = torch.as_tensor(frequencies, dtype=torch.float64, device=X.device)
    projection = X @ frequencies
    scale = 1.0 / np.sqrt(frequencies.shape[1])
    return torch.cat([torch.cos(projection), torch.sin(projection)], dim=1) * scale


# ------------------------------------------------------------------------------------------------
# eigenpairs of the kernel difference
# ------------------------------------------------------------------------------------------------


def _leading(matrix: np.ndarray | LinearOperator, k: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """``leading_eigenpairs`` from a seeded start vector, in descending order of eigenvalue.

    A zero matrix (identical kernels with eta = 1) has every vector as an eigenvector of eigenvalue 0;
    Lanczos cannot start on it (its first product is zero), so it gets zeros and the first unit vectors.
    """
    n = matrix.shape[0]
    start = np.random.RandomState(random_state).uniform(-1, 1, n)
    if not np.any(matrix @ start):
        return np.zeros(k), np.eye(n, k)
    values, vectors = leading_eigenpairs(matrix, k, start)
    order = np.argsort(-values, kind="stable")
    return values[order], vectors[:, order]


def kernel_difference_eigenpairs(
    K_first: np.ndarray, K_second: np.ndarray, eta: float, k: int, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues of M = (K_first - eta K_second) / N and their unit eigenvectors.

    M is applied as an operator (two dense products), so besides the two (N, N) kernels nothing N x N is
    formed (unless k >= N - 1, where ``leading_eigenpairs`` solves densely). The Lanczos start vector is
    drawn from ``RandomState(random_state)``, as in RDX's ``spectral_labels``.

    Returns:
        (values (k,) descending, vectors (N, k)).
    """
    n = K_first.shape[0]

    def product(x: np.ndarray) -> np.ndarray:
        return (K_first @ x - eta * (K_second @ x)) / n

    operator = LinearOperator((n, n), matvec=product, matmat=product, dtype=np.float64)
    return _leading(operator, k, random_state)


def gram_difference_eigenpairs(
    gram: np.ndarray, signs: dict[str, np.ndarray], n_samples: int, k: int, random_state: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The k largest eigenpairs of M = Psi S Psi^T / N, for each S, from the Gram matrix G = Psi^T Psi.

    Derivation. Let G = U Sigma U^T (eigh) and keep the r eigenvalues above D * eps * max (the numerical
    rank of Psi): U_r (D, r), Sigma_r. Then Q = Psi U_r Sigma_r^(-1/2) (N, r) has orthonormal columns
    (Q^T Q = Sigma_r^(-1/2) U_r^T G U_r Sigma_r^(-1/2) = I) and Psi = Q Sigma_r^(1/2) U_r^T (the dropped
    directions have |Psi u|^2 = sigma ~ 0), so

        M = Q T Q^T,   T = Sigma_r^(1/2) U_r^T S U_r Sigma_r^(1/2) / N   (r x r, symmetric).

    If T w = lambda w then M (Q w) = lambda Q w with |Q w| = |w|, and every non-zero eigenvalue of M arises
    so (M maps into the span of Q). The eigenvectors in image space are Psi C with
    C = U_r Sigma_r^(-1/2) w (D, k): one more pass over Psi's rows (``rff_difference_eigenpairs``).

    Args:
        gram: G = Psi^T Psi, (D, D) float64, decomposed once for every S.
        signs: per side, the diagonal of S, (D,): +1 on the side's own features, -eta on the other's.
        n_samples: N.
        k: eigenpairs wanted; at most r come back (M has rank <= r).

    Returns:
        per side (values (k',) descending, coefficients C (D, k')), k' = min(k, r).
    """
    sigma, U = np.linalg.eigh(gram)
    keep = sigma > gram.shape[0] * np.finfo(np.float64).eps * max(float(sigma[-1]), 0.0)
    sigma, U = sigma[keep], U[:, keep]
    root = U * np.sqrt(sigma)  # U_r Sigma_r^(1/2), (D, r)
    k = min(k, len(sigma))
    solved = {}
    for side, diagonal in signs.items():
        T = (root.T * diagonal) @ root / n_samples
        T = (T + T.T) / 2
        values, w = _leading(T, k, random_state)
        solved[side] = (values, (U / np.sqrt(sigma)) @ w)
    return solved


def rff_difference_eigenpairs(
    X_A: np.ndarray,
    X_B: np.ndarray,
    frequencies_A: np.ndarray,
    frequencies_B: np.ndarray,
    eta: float,
    k: int,
    random_state: int = 0,
    device: str = "auto",
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Both sides' leading eigenpairs of the random-Fourier-feature kernel differences.

    With Phi_A = ``fourier_features(X_A, frequencies_A)``, Phi_B likewise (centred features; the kernel is
    shift invariant): side "A" is M_A = (Phi_A Phi_A^T - eta Phi_B Phi_B^T) / N, side "B" is
    M_B = (Phi_B Phi_B^T - eta Phi_A Phi_A^T) / N. When N > D (the total feature count) the Gram matrix
    G = Psi^T Psi is summed over row blocks (never holding Psi) and each side solved in D dimensions
    (``gram_difference_eigenpairs``), then the eigenvectors are Psi C, a second pass; otherwise the two
    (N, N) approximate kernels are formed and solved as the exact path does. Memory O(D^2 + block x D)
    or O(N^2) with N <= D: O(N x features) either way.

    Returns:
        {"A": (values (k',) descending, vectors (N, k')), "B": ...}; k' <= k when M has lower rank.
    """
    torch_device = resolve_device(device)
    n = X_A.shape[0]
    inputs = {"A": X_A, "B": X_B}
    # centred block by block (the kernel is shift invariant), so no float64 copy of X is held
    means = {side: np.asarray(X).mean(axis=0, dtype=np.float64) for side, X in inputs.items()}
    frequencies = {
        "A": torch.as_tensor(frequencies_A, dtype=torch.float64, device=torch_device),
        "B": torch.as_tensor(frequencies_B, dtype=torch.float64, device=torch_device),
    }
    widths = {side: 2 * frequencies[side].shape[1] for side in ("A", "B")}
    total = widths["A"] + widths["B"]

    def features(rows: slice) -> torch.Tensor:
        """Psi[rows] = [Phi_A[rows], Phi_B[rows]], (b, D)."""
        parts = []
        for side in ("A", "B"):
            X = torch.as_tensor(np.asarray(inputs[side][rows], dtype=np.float64) - means[side])
            parts.append(fourier_features(X.to(torch_device), frequencies[side]))
        return torch.cat(parts, dim=1)

    if n <= total:
        Phi = features(slice(0, n)).cpu().numpy()
        kernels = {"A": Phi[:, : widths["A"]] @ Phi[:, : widths["A"]].T}
        kernels["B"] = Phi[:, widths["A"] :] @ Phi[:, widths["A"] :].T
        del Phi
        return {
            "A": kernel_difference_eigenpairs(kernels["A"], kernels["B"], eta, k, random_state),
            "B": kernel_difference_eigenpairs(kernels["B"], kernels["A"], eta, k, random_state),
        }
    blocks = list(row_blocks(n, total, 16, block_bytes))  # a block's projections and features
    gram = torch.zeros((total, total), dtype=torch.float64, device=torch_device)
    for rows in blocks:
        block = features(rows)
        gram.addmm_(block.T, block)
    gram = gram.cpu().numpy()
    gram = (gram + gram.T) / 2
    own = {"A": np.r_[np.ones(widths["A"]), -eta * np.ones(widths["B"])]}
    own["B"] = np.r_[-eta * np.ones(widths["A"]), np.ones(widths["B"])]
    solved = gram_difference_eigenpairs(gram, own, n, k, random_state)
    del gram
    coefficients = torch.as_tensor(
        np.concatenate([solved["A"][1], solved["B"][1]], axis=1), dtype=torch.float64, device=torch_device
    )
    vectors = np.empty((n, coefficients.shape[1]), dtype=np.float64)
    for rows in blocks:
        vectors[rows] = (features(rows) @ coefficients).cpu().numpy()
    vectors /= np.maximum(np.linalg.norm(vectors, axis=0), np.finfo(np.float64).tiny)
    split = solved["A"][1].shape[1]
    return {"A": (solved["A"][0], vectors[:, :split]), "B": (solved["B"][0], vectors[:, split:])}


# ------------------------------------------------------------------------------------------------
# concepts
# ------------------------------------------------------------------------------------------------


def sign_fixed(vectors: np.ndarray) -> np.ndarray:
    """Eigenvectors (N, k) with each column's sign chosen so its entries sum to >= 0 (a new array)."""
    vectors = np.array(vectors, dtype=np.float64, copy=True)
    vectors *= np.where(vectors.sum(axis=0) < 0, -1.0, 1.0)
    return vectors


def concepts_from_eigenvectors(
    values: np.ndarray, vectors: np.ndarray, grid_size: int = 9, member_threshold: float = 0.5
) -> list[Concept]:
    """One concept per eigenvector (the module docstring's rule), numbered 1.. in the given order.

    Args:
        values: (k,) eigenvalues (the concepts' scores).
        vectors: (N, k) eigenvectors with unit columns, any sign.
        grid_size: images per grid: the largest entries of the sign-fixed eigenvector, ties by index.
        member_threshold: an image joins the concept on which v[i] / max(v) is largest, when that ratio
            is at least this, in (0, 1].

    Returns:
        the concepts, one per column.
    """
    vectors = sign_fixed(vectors)
    if vectors.shape[1] == 0:
        return []
    relative = vectors / vectors.max(axis=0)  # a unit vector with a non-negative sum has a positive entry
    owner = np.argmax(relative, axis=1)
    strength = relative[np.arange(len(relative)), owner]
    concepts = []
    for column in range(vectors.shape[1]):
        members = np.flatnonzero((owner == column) & (strength >= member_threshold)).astype(np.int64)
        grid = top_activations(vectors[:, column], grid_size)
        concepts.append(Concept(column + 1, members, grid, float(values[column])))
    return concepts


# ------------------------------------------------------------------------------------------------
# the estimator
# ------------------------------------------------------------------------------------------------


def exact_path_peak_bytes(n: int) -> float:
    """Estimated peak memory of SPEC's exact path on N images (bytes)."""
    return EXACT_MATRICES * 8.0 * n * n + EXACT_OVERHEAD_BYTES


@dataclass(repr=False, eq=False, kw_only=True)
class SPECBaseline(Baseline):
    """SPEC: the leading eigenvectors of K_A - eta K_B (side A) and K_B - eta K_A (side B), normalised by N.

    See the module docstring for the kernels, the side convention, the member and grid rule and the
    two paths.

    Args:
        n_concepts: k, eigenvectors per side (k < N); only those with a positive eigenvalue are shown.
        grid_size: images per concept grid (largest eigenvector entries).
        random_state: seeds the median heuristic's sample, the random frequencies and the Lanczos start.
        eta: weight of the other model's kernel, > 0 (the paper's eta; 1 compares the two as they are).
        bandwidth_A, bandwidth_B: Gaussian kernel bandwidths (in each model's feature units), > 0; None:
            the median pairwise distance of that model's features (``median_bandwidth``).
        member_threshold: a member's entry is at least this fraction of its eigenvector's largest, (0, 1].
        path: "exact" (N x N kernels), "rff" (random Fourier features) or "auto": exact when
            N <= 10,000 and its estimated peak (2.5 N x N float64 matrices + 1 GB) fits
            ``memory_budget_gb``, else rff.
        rff_dimension: random frequencies per model on the rff path; each gives a cos and a sin
            feature, so each model's feature map has 2 x rff_dimension columns.
        memory_budget_gb: memory the auto choice may plan for; None: what the machine has available now.
        device: "auto", "cpu" or "cuda" for the distances (exact path, median heuristic) and the
            features and Gram matrix of the rff path.

    Attributes after ``fit``:
        path_: "exact" or "rff"; bandwidths_: {"A": sigma_A, "B": sigma_B};
        eigenvalues_: {"A": (k',), "B": (k',)} descending, every computed one (non-positive ones included);
        eigenvectors_: {"A": (N, k'), "B": (N, k')}, sign-fixed as the concepts read them;
        explanation_: the ``Explanation``; its info has the path, its reason, bandwidths and eigenvalues.
    """

    name = "spec"

    eta: float = 1.0
    bandwidth_A: float | None = None
    bandwidth_B: float | None = None
    member_threshold: float = 0.5
    path: str = "auto"
    rff_dimension: int = 1000
    memory_budget_gb: float | None = None
    device: str = "auto"

    def check_params(self) -> None:
        super().check_params()
        check_positive_number("eta", self.eta)
        check_positive_number("bandwidth_A", self.bandwidth_A, allow_none=True)
        check_positive_number("bandwidth_B", self.bandwidth_B, allow_none=True)
        check_positive_number("member_threshold", self.member_threshold)
        if self.member_threshold > 1:
            raise ValueError(f"member_threshold must lie in (0, 1], got {self.member_threshold!r}")
        if self.path not in PATHS:
            raise ValueError(f"unknown path {self.path!r}; choose one of {list(PATHS)}")
        check_positive_int("rff_dimension", self.rff_dimension)
        check_positive_number("memory_budget_gb", self.memory_budget_gb, allow_none=True)
        try:
            resolve_device(self.device)
        except RuntimeError as error:
            raise ValueError(f"unknown device {self.device!r}: {error}") from error

    def choose_path(self, n: int) -> tuple[str, str]:
        """Which path a fit on N images takes, and why: ("exact" | "rff", reason), as ``RDX.choose_path``."""
        if self.path != "auto":
            return self.path, f"path={self.path!r} was asked for"
        budget = (
            self.memory_budget_gb * GIB
            if self.memory_budget_gb is not None
            else sparse_rdx.available_memory_bytes()
        )
        exact_bytes = exact_path_peak_bytes(n)
        budget_name = "memory_budget_gb" if self.memory_budget_gb is not None else "the memory available"
        sizes = f"exact path's estimated peak {exact_bytes / GIB:.1f} GB vs {budget_name}"
        log.info(
            "SPEC path choice: exact path's estimated peak %.1f GB, budget %.1f GB",
            exact_bytes / GIB,
            budget / GIB,
        )
        fits = exact_bytes <= budget
        if fits and n <= AUTO_EXACT_MAX_N:
            return "exact", f"N={n} <= {AUTO_EXACT_MAX_N} and it fits ({sizes})"
        why = "does not fit" if not fits else f"is slow above N={AUTO_EXACT_MAX_N}"
        return "rff", f"N={n}: the exact path {why} ({sizes})"

    def fit(self, X_A: np.ndarray, X_B: np.ndarray, y: np.ndarray | None = None) -> SPECBaseline:
        """Eigen-decompose both kernel differences and read k concepts per side from their eigenvectors.

        Args:
            X_A: (N, d_A) and X_B: (N, d_B) features of the same images, same order. Not modified.
            y: ignored.
        """
        self.check_params()
        X_A, X_B = check_representations(X_A, X_B, min_samples=2)
        n = X_A.shape[0]
        if self.n_concepts >= n:
            raise ValueError(f"n_concepts={self.n_concepts} must be smaller than the number of images N={n}")
        self.path_, reason = self.choose_path(n)
        log.info("SPEC on N=%d: %s path (%s)", n, self.path_, reason)
        given = {"A": self.bandwidth_A, "B": self.bandwidth_B}
        features = {"A": X_A, "B": X_B}
        self.bandwidths_ = {
            side: float(given[side])
            if given[side] is not None
            else median_bandwidth(features[side], random_state=self.random_state, device=self.device)
            for side in ("A", "B")
        }
        if self.path_ == "exact":
            kernels = {
                side: gaussian_kernel_matrix(features[side], self.bandwidths_[side], self.device)
                for side in ("A", "B")
            }
            pairs = {
                side: kernel_difference_eigenpairs(
                    kernels[side], kernels[other], self.eta, self.n_concepts, self.random_state
                )
                for side, other in (("A", "B"), ("B", "A"))
            }
            del kernels
        else:
            generator = np.random.default_rng(self.random_state)  # A's frequencies first, then B's
            frequencies = {
                side: fourier_frequencies(
                    features[side].shape[1], self.bandwidths_[side], self.rff_dimension, generator
                )
                for side in ("A", "B")
            }
            pairs = rff_difference_eigenpairs(
                X_A,
                X_B,
                frequencies["A"],
                frequencies["B"],
                self.eta,
                self.n_concepts,
                self.random_state,
                self.device,
            )
        concepts: dict[str, list[Concept]] = {}
        self.eigenvalues_, self.eigenvectors_ = {}, {}
        floor = ZERO_EIGENVALUE * (1.0 + self.eta)
        for side in ("A", "B"):
            values, vectors = pairs[side]
            shown = values > floor
            concepts[side] = concepts_from_eigenvectors(
                values[shown], vectors[:, shown], self.grid_size, self.member_threshold
            )
            self.eigenvalues_[side] = values
            self.eigenvectors_[side] = sign_fixed(vectors)
        info: dict[str, Any] = {
            "n_samples": n,
            "n_concepts": self.n_concepts,
            "eta": self.eta,
            "bandwidth_A": self.bandwidths_["A"],
            "bandwidth_B": self.bandwidths_["B"],
            "member_threshold": self.member_threshold,
            "path": self.path_,
            "path_reason": reason,
            "eigenvalues": {side: [float(v) for v in self.eigenvalues_[side]] for side in ("A", "B")},
            "random_state": self.random_state,
        }
        if self.path_ == "rff":
            info["rff_dimension"] = self.rff_dimension
        self.explanation_ = Explanation(self.name, concepts, info=info)
        return self
