"""Leading eigenvectors of a symmetric operator on the torch device (CPU or GPU).

Spectral clustering needs the k largest eigenpairs of a normalised adjacency D^-1/2 W D^-1/2. Both RDX
paths apply that operator to blocks of vectors on the torch device (the exact path a dense (N, N)
matrix, the sparse path a sparse matrix plus a far-field model), and this module finds the eigenpairs
with the vectors staying on the same device: block Lanczos with full reorthogonalisation and thick
restarts (``leading_eigenvectors``), or a dense eigendecomposition for tiny problems.

Why a block method: a product of a dense N x N float32 matrix with a block of 16 vectors costs about
two matrix-vector products on a 2-core CPU (it reads the matrix once), and on a GPU a block is as cheap
as a vector. Measured at N = 5,000 (bench_rdx's data): ARPACK (``scipy.sparse.linalg.eigsh``) needed
~100 matrix-vector products per direction, block Lanczos with 16 vectors 20-28 block products for the
same labels (a basis of 40 blocks), 22-32 when it restarts at 12 blocks (``DENSE_BASIS_BLOCKS``, the
exact path's choice: its Gram-Schmidt and Rayleigh-Ritz work grows with the basis and, on one CPU
thread, costs more than the few extra products).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import ThreadpoolController

log = logging.getLogger(__name__)

MatMat = Callable[[torch.Tensor], torch.Tensor]
MIN_BLOCK = 16  # vectors per block product: about the price of two matrix-vector products on a CPU
BASIS_BLOCKS = 40  # blocks kept before a thick restart (N x 40 x 16 float64 vectors)
# blocks kept for a dense operator (the exact path): its products are cheap against the Gram-Schmidt
# and Rayleigh-Ritz work on a long basis, which grows with the basis; restarting at 12 blocks took a
# few more products and ~25 % less time on bench_rdx's graphs (N = 5,000), with the same labels
DENSE_BASIS_BLOCKS = 12
MAX_RESTARTS = 20


@dataclass
class EigenResult:
    """The k largest eigenpairs found, ascending, and how they were found.

    Attributes:
        values: (k,) float64 eigenvalues, ascending.
        vectors: (n, k) float64 orthonormal eigenvectors, column j for values[j], on the operator's device.
        products: block products used (each on ``block`` vectors).
        block: vectors per product.
        residual: largest ||A v - lambda v|| over the k pairs.
        converged: whether residual <= tol * scale.
    """

    values: torch.Tensor
    vectors: torch.Tensor
    products: int
    block: int
    residual: float
    converged: bool


def block_size(k: int) -> int:
    """Vectors per block for k wanted eigenpairs: at least 2k + 4, at least ``MIN_BLOCK``."""
    return max(MIN_BLOCK, 2 * k + 4)


def _orthonormal(
    vectors: torch.Tensor,
    basis: torch.Tensor | None,
    generator: torch.Generator,
    coefficients: torch.Tensor | None = None,
) -> torch.Tensor:
    """An orthonormal basis of ``vectors`` (n, b) orthogonal to ``basis`` (n, m): classical Gram-Schmidt
    twice, then QR, and once more where a column lost most of its norm (its direction is then carried
    by few digits: Ritz vectors near convergence). A column that is numerically in the span of the basis
    and the columns before it (the Krylov space is exhausted) is replaced by a random one: the products
    of every basis vector are computed, so any extra direction keeps the Rayleigh-Ritz pairs exact.
    ``coefficients`` (m, b), when given, is ``basis.T @ vectors`` already computed (the first pass's)."""
    norms = vectors.norm(dim=0)
    for _ in range(3):
        if basis is not None:
            for _ in range(2):
                if coefficients is None:
                    coefficients = basis.T @ vectors
                vectors = vectors - basis @ coefficients
                coefficients = None
        q, r = torch.linalg.qr(vectors)
        kept = r.diagonal().abs() / norms.clamp(min=1e-300)
        weak = kept <= 1e-12
        if not bool(weak.any()):
            if basis is not None and float(kept.min()) < 1e-4:
                q, _ = torch.linalg.qr(q - basis @ (basis.T @ q))
            return q
        replacement = torch.randn(
            (vectors.shape[0], int(weak.sum())), generator=generator, dtype=vectors.dtype
        )
        vectors = torch.cat([q[:, ~weak], replacement.to(vectors.device)], dim=1)
        norms = vectors.norm(dim=0)
    raise RuntimeError("could not extend the Krylov basis")


@functools.cache
def _thread_pools() -> ThreadpoolController:
    return ThreadpoolController()  # finds the loaded BLAS / OpenMP libraries once


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch's CPU operations and the host's BLAS and OpenMP pools on one thread inside the block.

    For many small operations on the host (the projected eigenproblem and the Krylov basis, k-means on
    an (N, k) embedding, the grids' small blocks): each multi-threaded operation ends at a barrier where
    the threads spin and wait for each other, which costs next to nothing on idle cores and a time slice
    per operation where the cores are shared. Measured on a busy 2-core machine: one 300 x 300 eigh
    0.9 s, one k-means 0.5-2.5 s, the grids of a fit 1.6 s, against milliseconds, 0.05 s and 0.2 s on
    one thread. One thread also makes the k-means sums independent of the machine's thread count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _thread_pools().limit(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


def _symmetric_eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenpairs of the small projected matrix, ascending, on its device. Solved on the host by numpy:
    a few hundred rows, where torch's CPU eigh was measured at ~1.5 s per call on a busy 2-core machine
    against milliseconds for numpy's LAPACK on one thread, and a GPU gains nothing at this size."""
    host = matrix.cpu().numpy()
    with single_thread():  # a no-op where the caller is already on one thread
        values, vectors = np.linalg.eigh((host + host.T) / 2)
    return torch.from_numpy(values).to(matrix.device), torch.from_numpy(vectors).to(matrix.device)


def leading_eigenvectors(
    matmat: MatMat,
    n: int,
    k: int,
    start: torch.Tensor,
    tol: float = 1e-6,
    basis_blocks: int = BASIS_BLOCKS,
    max_restarts: int = MAX_RESTARTS,
) -> EigenResult:
    """The k largest (algebraic) eigenpairs of a symmetric operator, by block Lanczos.

    The Krylov basis [V_0, A V_0, A^2 V_0, ...] is built block by block with full reorthogonalisation
    (classical Gram-Schmidt twice); after every second block product the Rayleigh-Ritz pairs of the basis
    are checked and the k largest returned once every residual ||A y - theta y|| is at most
    ``tol * max |theta|`` (for a normalised adjacency max |theta| = 1). When the basis reaches
    ``basis_blocks`` blocks it restarts from the current best ``b`` Ritz vectors (thick restart; their
    products are kept, no product is repeated). Small problems (n <= 4 b) are solved densely.

    Args:
        matmat: X (n, b) float64 on the device -> A X (n, b) float64; A symmetric.
        n: the operator's size.
        k: eigenpairs wanted, 1 <= k < n.
        start: (n, b) start block, b > k (``block_size(k)`` is a good width); its columns need not be
            orthonormal. Its device and float64 are the computation's.
        tol: relative residual tolerance.

    Returns:
        ``EigenResult`` (values ascending, as ``scipy.sparse.linalg.eigsh`` returns them).
    """
    start = start.to(torch.float64)
    b = start.shape[1]
    if not 1 <= k < b:
        raise ValueError(f"need 1 <= k < block width, got k={k}, block {b}")
    if start.shape[0] != n:
        raise ValueError(f"start must have {n} rows, got {start.shape[0]}")
    generator = torch.Generator().manual_seed(n * 7919 + k)
    if n <= 4 * b:
        dense = matmat(torch.eye(n, dtype=torch.float64, device=start.device))
        values, vectors = _symmetric_eigh(dense)
        residual = (dense @ vectors[:, -k:] - vectors[:, -k:] * values[-k:]).norm(dim=0).max()
        return EigenResult(values[-k:], vectors[:, -k:], 1, n, float(residual), True)

    capacity = min(basis_blocks * b, n - b)
    basis = torch.empty((n, capacity), dtype=torch.float64, device=start.device)  # V, orthonormal
    products = torch.empty_like(basis)  # A V
    projection = torch.empty((capacity, capacity), dtype=torch.float64, device=start.device)  # V^T A V
    basis[:, :b] = _orthonormal(start, None, generator)
    m, n_products, restarts = 0, 0, 0  # columns of V whose products are known
    while True:
        newest = basis[:, m : m + b]
        product = matmat(newest)  # the one large operation of a step: the rest runs on one host thread
        n_products += 1
        with single_thread():
            products[:, m : m + b] = product
            # V^T A V_new: the projection's new columns, and the first Gram-Schmidt pass's coefficients
            coupling = basis[:, : m + b].T @ product
            projection[: m + b, m : m + b] = coupling
            projection[m : m + b, :m] = coupling[:m].T
            m += b
            if m + b <= capacity and n_products % 2 == 1:
                # the Rayleigh-Ritz check costs about as much as a product: every other step (one
                # product more at worst), and always before a restart, which needs its Ritz vectors
                basis[:, m : m + b] = _orthonormal(product, basis[:, :m], generator, coupling)
                continue
            theta, ritz = _symmetric_eigh(projection[:m, :m])
            wanted = ritz[:, -k:]
            vectors = basis[:, :m] @ wanted
            residuals = (products[:, :m] @ wanted - vectors * theta[-k:]).norm(dim=0)
            scale = float(theta.abs().max())
            residual = float(residuals.max())
            if residual <= tol * scale:
                return EigenResult(theta[-k:], vectors, n_products, b, residual, True)
            if m + b <= capacity:
                basis[:, m : m + b] = _orthonormal(product, basis[:, :m], generator, coupling)
                continue
            if restarts == max_restarts:
                log.warning(
                    "block Lanczos: not converged after %d restarts (residual %.2e > %.2e); using the "
                    "current Ritz vectors",
                    restarts,
                    residual,
                    tol * scale,
                )
                return EigenResult(theta[-k:], vectors, n_products, b, residual, False)
            restarts += 1
            # thick restart: keep the b best Ritz vectors and their products; their residuals continue
            # the Krylov space
            kept = ritz[:, -b:]
            kept_vectors, kept_products = basis[:, :m] @ kept, products[:, :m] @ kept
            basis[:, :b], products[:, :b] = kept_vectors, kept_products
            projection[:b, :b] = torch.diag(theta[-b:])
            m = b
            basis[:, m : m + b] = _orthonormal(kept_products, basis[:, :m], generator)


def start_block(n: int, width: int, first: np.ndarray, seed: int) -> np.ndarray:
    """A deterministic (n, width) start block: ``first`` (e.g. the start vector ARPACK would have been
    given), then seeded Gaussian columns."""
    block = np.random.default_rng(seed).standard_normal((n, width))
    block[:, 0] = first
    return block
