"""The torch eigensolver (block Lanczos) against scipy's ARPACK, and the spectral labels it gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse.linalg import eigsh
from sklearn.cluster import k_means

from rdx.methods.eigensolvers import block_size, leading_eigenvectors, start_block
from rdx.methods.rdx import graph_spectral_labels, symmetric_affinity

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_symmetric(n: int, seed: int) -> np.ndarray:
    matrix = np.random.default_rng(seed).normal(size=(n, n))
    return (matrix + matrix.T) / 2


def clustered_graph(n: int, seed: int, clusters: int = 5) -> np.ndarray:
    """A symmetric affinity graph (zero diagonal) of points in ``clusters`` noisy groups."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(clusters, 4))
    points = centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, 4))
    squared = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    graph = np.exp(-squared / 8.0)
    np.fill_diagonal(graph, 0.0)
    return graph


def scipy_spectral_labels(graph: np.ndarray, n_clusters: int, random_state: int) -> np.ndarray:
    """The embedding by ARPACK (float64, tight tolerance) and the same RandomState sequence."""
    degree = graph.sum(axis=1)
    scale = 1.0 / np.sqrt(degree)
    normalised = graph * scale[:, None] * scale[None, :]
    generator = np.random.RandomState(random_state)
    start = generator.uniform(-1, 1, len(graph))
    _, vectors = eigsh(normalised, k=n_clusters, which="LA", v0=start, tol=1e-12)
    _, labels, _ = k_means(vectors * scale[:, None], n_clusters, random_state=generator, n_init=10)
    return labels


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n, k, seed", [(60, 3, 0), (150, 4, 1), (400, 6, 2), (1000, 5, 3)])
def test_leading_eigenpairs_equal_scipy_eigsh(device, n, k, seed):
    matrix = random_symmetric(n, seed)
    expected_values, expected_vectors = eigsh(matrix, k=k, which="LA", tol=1e-12)
    operator = torch.as_tensor(matrix, device=device)
    start = torch.as_tensor(np.random.default_rng(seed).normal(size=(n, block_size(k))), device=device)
    found = leading_eigenvectors(lambda x: operator @ x, n, k, start, tol=1e-9)
    assert found.converged
    np.testing.assert_allclose(found.values.cpu().numpy(), expected_values, atol=1e-6)
    vectors = found.vectors.cpu().numpy()
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(k), atol=1e-10)
    # the same invariant subspace: every singular value of the overlap is 1
    overlap = np.linalg.svd(vectors.T @ expected_vectors, compute_uv=False)
    np.testing.assert_allclose(overlap, 1.0, atol=1e-6)


def test_a_restarted_solve_finds_the_same_eigenpairs():
    n, k = 500, 4
    graph = clustered_graph(n, seed=4)
    degree = graph.sum(axis=1)
    normalised = torch.as_tensor(graph / np.sqrt(np.outer(degree, degree)))
    start = torch.as_tensor(start_block(n, block_size(k), np.ones(n), seed=0))
    roomy = leading_eigenvectors(lambda x: normalised @ x, n, k, start, tol=1e-9)
    tight = leading_eigenvectors(lambda x: normalised @ x, n, k, start, tol=1e-9, basis_blocks=3)
    assert roomy.converged and tight.converged and tight.products > roomy.products
    np.testing.assert_allclose(tight.values.numpy(), roomy.values.numpy(), atol=1e-9)
    expected = np.sort(eigsh(normalised.numpy(), k=k, which="LA", return_eigenvectors=False))
    np.testing.assert_allclose(roomy.values.numpy(), expected, atol=1e-6)


def test_small_problems_are_solved_densely_and_rank_deficient_ones_do_not_fail():
    rank_two = np.outer(np.arange(1.0, 31.0), np.arange(1.0, 31.0)) + np.outer(np.ones(30), np.ones(30))
    start = torch.as_tensor(np.random.default_rng(0).normal(size=(30, 16)))
    found = leading_eigenvectors(lambda x: torch.as_tensor(rank_two) @ x, 30, 3, start)
    expected = np.linalg.eigvalsh(rank_two)[-3:]
    np.testing.assert_allclose(found.values.numpy(), expected, atol=1e-8)
    # larger than the dense limit, still rank 2: the Krylov space is exhausted after one block
    big = np.outer(np.arange(300.0), np.arange(300.0)) / 300**2 + np.eye(300) * 1e-3
    start = torch.as_tensor(np.random.default_rng(1).normal(size=(300, 16)))
    found = leading_eigenvectors(lambda x: torch.as_tensor(big) @ x, 300, 3, start, tol=1e-9)
    np.testing.assert_allclose(found.values.numpy(), np.linalg.eigvalsh(big)[-3:], atol=1e-8)


def test_bad_arguments():
    start = torch.zeros((100, 4), dtype=torch.float64)
    with pytest.raises(ValueError, match="block width"):
        leading_eigenvectors(lambda x: x, 100, 4, start)
    with pytest.raises(ValueError, match="rows"):
        leading_eigenvectors(lambda x: x, 99, 2, start)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n, k, seed", [(300, 4, 0), (800, 6, 1)])
def test_spectral_labels_equal_those_of_scipys_solver(device, n, k, seed):
    graph = clustered_graph(n, seed, clusters=k)
    expected = scipy_spectral_labels(graph, k, random_state=seed)
    for dtype in (torch.float64, torch.float32):
        labels, _ = graph_spectral_labels(torch.as_tensor(graph, dtype=dtype, device=device), k, seed)
        np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("device", DEVICES)
def test_symmetric_affinity_equals_exp_then_symmetrise(device):
    rng = np.random.default_rng(5)
    difference = np.tanh(rng.normal(size=(70, 70))).astype(np.float32)
    for tile in (16, 64, 256):
        graph = symmetric_affinity(torch.as_tensor(difference, device=device), -5.0, tile=tile).cpu().numpy()
        affinity = torch.exp(-5.0 * torch.as_tensor(difference)).numpy()
        expected = (affinity + affinity.T) / 2
        np.fill_diagonal(expected, 0.0)
        np.testing.assert_array_equal(graph, expected)
