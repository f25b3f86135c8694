"""RDX at scale: the sparse path's pieces against dense computations, the automatic path choice, and
the sparse path's agreement with the exact one on small planted data."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.metrics import adjusted_rand_score

from rdx.methods import RDX, neighbourhoods, sparse_rdx
from rdx.methods.grids import max_affinity, maximize_total_neighborhood_affinity
from rdx.methods.neighbourhoods import neighbour_ranks_from_features
from rdx.methods.rdx import DifferenceGraph, ExactGraph, order_clusters


def bench_make_pair():
    """``scripts/bench_rdx.py: make_pair``, the benchmarks' data (scripts are imported by path)."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "bench_rdx.py"
    spec = importlib.util.spec_from_file_location("bench_rdx", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_pair


def planted(seed: int = 0, per_cluster: int = 150, dim: int = 5):
    """Four clusters: model A merges clusters 0 and 1, model B merges 2 and 3."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(4), per_cluster)
    centres_A = rng.normal(scale=8.0, size=(4, dim))
    centres_B = rng.normal(scale=8.0, size=(4, dim))
    centres_A[1] = centres_A[0]
    centres_B[3] = centres_B[2]
    X_A = centres_A[truth] + rng.normal(size=(len(truth), dim))
    X_B = centres_B[truth] + rng.normal(size=(len(truth), dim))
    return X_A, X_B, truth


def dense_ranks(X: np.ndarray) -> np.ndarray:
    return neighbour_ranks_from_features(X, dtype="float64", device="cpu").astype(np.float64)


def random_sparse_affinity(n: int = 40, seed: int = 0, n_cells: int = 1):
    """A SparseAffinity on a random union pattern, with its dense equivalent built independently."""
    rng = np.random.default_rng(seed)
    pattern = rng.random((n, n)) < 0.15
    np.fill_diagonal(pattern, False)
    values = rng.uniform(-1, 1, size=(n, n)) * pattern
    rows, cols = np.nonzero(pattern)
    difference = sp.csr_matrix((values[rows, cols], (rows, cols)), shape=(n, n))
    cells = rng.integers(0, n_cells, size=n)
    cells[:n_cells] = np.arange(n_cells)  # every cell used
    # each image's far-field affinity to each cell (one cell: the neutral 1)
    background = rng.uniform(0.5, 2.0, size=(n, n_cells)) if n_cells > 1 else np.ones((n, 1))
    beta = 5.0
    affinity = sparse_rdx.SparseAffinity(difference, beta, 1.0, cells=cells, background=background)
    dense = np.where(pattern, np.exp(-beta * values), background[:, cells])
    np.fill_diagonal(dense, 1.0)
    return affinity, dense


# ------------------------------------------------------------------------------------------------
# neighbours and ranks
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank_estimate, sample_size", [("exact", 4096), ("sampled", 10**6)])
def test_union_ranks_equal_dense_ranks(rank_estimate, sample_size):
    # exact counting, and a "sample" holding every column, both give the dense ranks exactly
    X_A, X_B, _ = planted(seed=1, per_cluster=40)
    K = 7
    union = sparse_rdx.union_neighbour_ranks(
        X_A,
        X_B,
        n_neighbors=K,
        rank_estimate=rank_estimate,
        sample_size=sample_size,
        dtype="float64",
        device="cpu",
        block_bytes=20_000,  # several row blocks
    )
    R_A, R_B = dense_ranks(X_A), dense_ranks(X_B)
    expected = (R_A <= K) | (R_B <= K)
    np.fill_diagonal(expected, False)
    got = np.zeros_like(expected)
    got[union.rows, union.cols] = True
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(union.rank_A, R_A[union.rows, union.cols])
    np.testing.assert_array_equal(union.rank_B, R_B[union.rows, union.cols])
    np.testing.assert_array_equal(np.argsort(R_A, axis=1, kind="stable")[:, 1 : K + 1], union.neighbours_A)


def test_sampled_ranks_are_close_and_at_least_k_plus_one():
    X_A, X_B, _ = planted(seed=2, per_cluster=100)
    K = 10
    union = sparse_rdx.union_neighbour_ranks(
        X_A, X_B, n_neighbors=K, sample_size=150, dtype="float64", device="cpu"
    )
    R_B = dense_ranks(X_B)[union.rows, union.cols]
    estimated = ~union.exact_B
    assert estimated.any() and np.all(union.rank_B[estimated] >= K + 1)
    np.testing.assert_array_equal(union.rank_B[~estimated], R_B[~estimated])
    relative = np.abs(union.rank_B[estimated] - R_B[estimated]) / R_B[estimated]
    assert np.median(relative) < 0.25


def test_count_below_counts_strictly_smaller_keys():
    keys = np.array([[5, 1, 3, 3, 9], [0, 2, 4, 6, 8]], dtype=np.int64)
    thresholds = np.array([[3, 10, 1], [5, 0, 8]], dtype=np.int64)
    got = neighbourhoods.count_below(torch.as_tensor(keys), torch.as_tensor(thresholds)).numpy()
    expected = (keys[:, None, :] < thresholds[:, :, None]).sum(axis=2)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("passes_max", [0, 64])  # the histogram path, then the numpy passes
def test_count_below_paths_agree_on_float_keys_with_ties_and_infinities(monkeypatch, passes_max):
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 20, size=(7, 300)).astype(np.float32)
    keys[:, 0] = -np.inf  # a row's own key in the neighbour search
    thresholds = np.take_along_axis(keys, rng.integers(1, 300, size=(7, 12)), axis=1)
    monkeypatch.setattr(neighbourhoods, "PASSES_MAX_THRESHOLDS", passes_max)
    got = neighbourhoods.count_below(torch.as_tensor(keys), torch.as_tensor(thresholds)).numpy()
    np.testing.assert_array_equal(got, (keys[:, None, :] < thresholds[:, :, None]).sum(axis=2))


def test_far_field_means_equal_dense_row_cell_means_when_the_sample_is_every_column():
    X_A, X_B, _ = planted(seed=3, per_cluster=30)
    n, K, gamma, beta = len(X_A), 6, 0.05, 5.0
    cells = sparse_rdx.joint_cells(X_A, X_B, 5, device="cpu")
    union = sparse_rdx.union_neighbour_ranks(
        X_A,
        X_B,
        n_neighbors=K,
        far_field=sparse_rdx.FarField(cells, gamma, beta),
        dtype="float64",
        device="cpu",
        block_bytes=200_000,  # several row blocks
    )
    R_A, R_B = dense_ranks(X_A), dense_ranks(X_B)
    far = (R_A > K) & (R_B > K)
    np.fill_diagonal(far, False)
    difference = np.tanh(gamma * (R_B - R_A) / (np.minimum(R_A, R_B) + 1))
    m = cells.max() + 1
    membership = np.eye(m)[cells]
    counts = far.astype(float) @ membership  # (N, m)
    assert counts.min() > 0  # every row has far pairs into every cell here
    for direction, sign in (("10", 1.0), ("01", -1.0)):
        sums = np.where(far, np.exp(-beta * sign * difference), 0.0) @ membership
        # the computed model: row means pulled towards the cell pair's mean by FAR_FIELD_PRIOR
        pair_means = (membership.T @ sums + sums.sum() / counts.sum()) / (membership.T @ counts + 1.0)
        prior = sparse_rdx.FAR_FIELD_PRIOR
        expected = (sums + prior * pair_means[cells]) / (counts + prior)
        np.testing.assert_allclose(union.background[direction], expected, rtol=1e-5)  # float32 sums
        np.testing.assert_allclose(
            sparse_rdx.row_cell_background(sums, counts, cells, prior=1e-9), sums / counts, rtol=1e-6
        )
    assert n == union.n


def test_joint_cells_are_deterministic_and_non_empty():
    X_A, X_B, _ = planted(seed=4, per_cluster=50)
    first = sparse_rdx.joint_cells(X_A, X_B, 12, random_state=3, device="cpu")
    np.testing.assert_array_equal(first, sparse_rdx.joint_cells(X_A, X_B, 12, random_state=3, device="cpu"))
    assert set(first.tolist()) == set(range(first.max() + 1))


# ------------------------------------------------------------------------------------------------
# the affinity model and its operator
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_cells", [1, 4])
def test_implicit_background_operator_equals_dense_matvec(n_cells):
    affinity, dense = random_sparse_affinity(n_cells=n_cells)
    graph = (dense + dense.T) / 2
    np.fill_diagonal(graph, 0.0)
    operator = sparse_rdx.BackgroundOperator(affinity, device="cpu")
    x = np.random.default_rng(1).normal(size=(len(dense), 3))
    np.testing.assert_allclose(operator.adjacency_product(x), graph @ x, rtol=1e-12)
    np.testing.assert_allclose(operator.adjacency_product(x[:, 0]), graph @ x[:, 0], rtol=1e-12)
    np.testing.assert_allclose(operator.degree, graph.sum(axis=1), rtol=1e-12)
    scale = 1 / np.sqrt(graph.sum(axis=1))
    np.testing.assert_allclose(operator.matmat(x), (scale[:, None] * graph * scale) @ x, rtol=1e-10)


@pytest.mark.parametrize("n_cells", [1, 4])
def test_torch_backend_of_the_operator_equals_numpy(n_cells):
    # the CUDA code path, run on the CPU: the same products as the scipy one
    affinity, dense = random_sparse_affinity(n_cells=n_cells, seed=3)
    numpy_operator = sparse_rdx.BackgroundOperator(affinity, device="cpu")
    torch_operator = sparse_rdx.BackgroundOperator(affinity, device="cpu", backend="torch")
    x = np.random.default_rng(2).normal(size=(len(dense), 4))
    np.testing.assert_allclose(torch_operator.matmat(x), numpy_operator.matmat(x), rtol=1e-10)
    np.testing.assert_allclose(torch_operator.matmat(x[:, 1]), numpy_operator.matmat(x[:, 1]), rtol=1e-10)
    np.testing.assert_allclose(torch_operator.degree, numpy_operator.degree, rtol=1e-12)
    with pytest.raises(ValueError, match="unknown backend"):
        sparse_rdx.BackgroundOperator(affinity, device="cpu", backend="jax")


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_tensor_products_of_the_operator_equal_its_numpy_products(backend):
    affinity, _ = random_sparse_affinity(n_cells=3, seed=5)
    operator = sparse_rdx.BackgroundOperator(affinity, device="cpu", backend=backend)
    x = np.random.default_rng(6).normal(size=(affinity.n, 5))
    product = operator.tensor_matmat(torch.as_tensor(x))
    assert isinstance(product, torch.Tensor) and product.dtype == torch.float64
    np.testing.assert_allclose(product.numpy(), operator.matmat(x), rtol=1e-12)


def test_sparse_block_lanczos_gives_the_labels_of_arpack():
    X_A, X_B, _ = planted(seed=3, per_cluster=150)
    fits = {
        solver: RDX(
            n_concepts=3, gamma=0.05, device="cpu", path="sparse", n_neighbors=30, eigensolver=solver
        ).fit(X_A, X_B)
        for solver in ("lanczos", "block_lanczos")
    }
    for direction in ("10", "01"):
        np.testing.assert_array_equal(
            fits["block_lanczos"].labels_[direction], fits["lanczos"].labels_[direction]
        )
        records = [fit.explanation_.info["sparse"]["spectral"][direction] for fit in fits.values()]
        np.testing.assert_allclose(records[1]["eigenvalues"], records[0]["eigenvalues"], atol=1e-8)
        assert records[1]["eigensolver"] == "block_lanczos" and records[1]["residual"] < 1e-6


def test_sorted_rows_and_positions_agree_between_numpy_and_torch():
    values = torch.as_tensor(np.random.default_rng(4).normal(size=(7, 50)).astype(np.float32))
    for use_numpy in (True, False):
        ordered, positions = sparse_rdx._sorted_rows(values, use_numpy=use_numpy)
        np.testing.assert_array_equal(ordered.numpy(), np.sort(values.numpy(), axis=1))
        # each entry's place: the sorted row read at it gives the entry back
        back = np.take_along_axis(ordered.numpy(), positions.numpy(), 1)
        np.testing.assert_array_equal(back, values.numpy())


def test_constant_background_is_one_plus_sparse():
    # one cell with background 1: Aff = 1 + S, S = exp(-beta D) - 1 on the union pairs
    affinity, dense = random_sparse_affinity(n_cells=1)
    np.testing.assert_allclose(
        affinity.correction.toarray(), np.where(dense == 1.0, 0.0, dense - 1.0), atol=1e-12
    )


@pytest.mark.parametrize("n_cells", [1, 3])
def test_affinity_accessors_equal_dense(n_cells):
    affinity, dense = random_sparse_affinity(n_cells=n_cells, seed=2)
    rng = np.random.default_rng(5)
    rows, cols = rng.integers(0, len(dense), 30), rng.integers(0, len(dense), 30)
    np.testing.assert_allclose(affinity(rows, cols), dense[np.ix_(rows, cols)], rtol=1e-12)
    np.testing.assert_allclose(affinity.pair_values(rows, cols), dense[rows, cols], rtol=1e-12)
    members = np.sort(rng.choice(len(dense), 15, replace=False))
    block = dense[np.ix_(members, members)]
    np.testing.assert_allclose(affinity.within_mean(members), block.mean(), rtol=1e-12)
    np.testing.assert_allclose(affinity.within_row_means(members), block.mean(axis=1), rtol=1e-12)


def test_cluster_ordering_and_grids_from_the_sparse_model_equal_dense():
    X_A, X_B, truth = planted(seed=5, per_cluster=60)
    model = RDX(path="sparse", n_concepts=2, gamma=0.05, n_neighbors=20, device="cpu").fit(X_A, X_B)
    for direction, side in (("10", "B"), ("01", "A")):
        affinity = model.affinity_block(direction)
        dense = model.affinity_matrix(direction)
        labels, means = order_clusters(affinity, truth)
        dense_labels, dense_means = order_clusters(dense, truth)
        np.testing.assert_array_equal(labels, dense_labels)
        np.testing.assert_allclose(means, dense_means, rtol=1e-10)

        def block(rows, cols, dense=dense):
            return dense[np.ix_(rows, cols)]

        # a group apart in the explained model (the pair it merges): every member's top-K lies inside
        # it, so the sparse candidates (forced with dense_cluster_limit=0) are all members and the
        # grid must be the dense rule's
        features = model._features[side]
        apart = 2 if side == "B" else 0  # A merges {0, 1}, B merges {2, 3}
        members = np.flatnonzero(np.isin(truth, [apart, apart + 1]))
        affinity.dense_cluster_limit = 0
        np.testing.assert_array_equal(
            maximize_total_neighborhood_affinity(members, features, affinity, 9),
            maximize_total_neighborhood_affinity(members, features, block, 9),
        )
        np.testing.assert_array_equal(
            max_affinity(members, features, affinity, 9), max_affinity(members, features, block, 9)
        )


def test_large_cluster_candidates_are_members_with_enough_mates():
    X_A, X_B, truth = planted(seed=6, per_cluster=60)
    model = RDX(path="sparse", n_concepts=2, gamma=0.05, n_neighbors=12, device="cpu").fit(X_A, X_B)
    affinity = model.affinity_block("10")
    affinity.dense_cluster_limit = 0
    members = np.flatnonzero(truth != 0)
    blocks = affinity.member_neighbourhoods(members, 9)
    assert blocks.shape[1] == 9 and np.isin(blocks, members).all()
    assert len(np.unique(blocks[:, 0])) == len(blocks)  # one block per anchor
    # each block is its anchor's 9 nearest members in the explained model (B), anchor first
    R_B = dense_ranks(X_B)
    for block in blocks[:20]:
        others = members[members != block[0]]
        nearest = others[np.argsort(R_B[block[0], others], kind="stable")[:8]]
        np.testing.assert_array_equal(block[1:], nearest)


# ------------------------------------------------------------------------------------------------
# the estimator: choice of path, errors, determinism, agreement
# ------------------------------------------------------------------------------------------------


def test_small_n_auto_takes_the_exact_path_unchanged():
    X_A, X_B, _ = planted(seed=7, per_cluster=30)
    auto = RDX(n_concepts=2, gamma=0.05, device="cpu").fit(X_A, X_B)
    exact = RDX(n_concepts=2, gamma=0.05, device="cpu", path="exact").fit(X_A, X_B)
    assert auto.path_ == "exact" and auto.explanation_.info["path"] == "exact"
    for direction in ("10", "01"):
        np.testing.assert_array_equal(auto.labels_[direction], exact.labels_[direction])
    assert auto.explanation_.to_dict()["sides"] == exact.explanation_.to_dict()["sides"]


def test_both_paths_are_difference_graphs_behind_the_same_estimator_interface():
    X_A, X_B, _ = planted(seed=7, per_cluster=20)
    graphs = {}
    for path, graph_type in (("exact", ExactGraph), ("sparse", sparse_rdx.SparseGraph)):
        model = RDX(n_concepts=2, gamma=0.05, device="cpu", path=path, n_neighbors=15).fit(X_A, X_B)
        graphs[path] = model._graph
        assert isinstance(model._graph, graph_type) and isinstance(model._graph, DifferenceGraph)
        affinities = model.affinity_  # a mapping that computes each direction's matrix when looked up
        assert list(affinities) == ["10", "01"] and len(affinities) == 2
        np.testing.assert_array_equal(affinities["01"], model.affinity_matrix("01"))
        with pytest.raises(KeyError):
            affinities["11"]
    assert set(graphs["exact"].info()) == {"exact"} and set(graphs["sparse"].info()) == {"sparse"}
    with pytest.raises(ValueError, match="sparse path's"):
        graphs["exact"].difference_graph("10")


def test_exact_path_records_its_eigensolver_like_the_sparse_path():
    X_A, X_B, _ = planted(seed=7, per_cluster=40)
    model = RDX(n_concepts=2, gamma=0.05, device="cpu", path="exact").fit(X_A, X_B)
    spectral = model.explanation_.info["exact"]["spectral"]
    assert set(spectral) == {"10", "01"}
    for direction, record in spectral.items():
        values = np.array(record["eigenvalues"])
        assert len(values) == model.n_clusters and np.all(np.diff(values) >= 0)
        # the normalised adjacency of a connected graph has leading eigenvalue exactly 1
        assert values[-1] == pytest.approx(1.0, abs=1e-6)
        # the recorded eigenvalues are those of the direction's graph, D^-1/2 W D^-1/2
        graph = model.affinity_matrix(direction).astype(np.float64)
        graph = (graph + graph.T) / 2
        np.fill_diagonal(graph, 0.0)
        scale = 1.0 / np.sqrt(graph.sum(axis=1))
        expected = np.linalg.eigvalsh(scale[:, None] * graph * scale[None, :])[-len(values) :]
        np.testing.assert_allclose(values, expected, atol=1e-5)
        assert record["converged"] and record["residual"] <= 1e-6
        assert record["operator_products"] == record["block_products"] * record["block"] > 0
    # greedy clusterings have no eigensolver to record
    greedy = RDX(n_concepts=2, gamma=0.05, device="cpu", clustering="pagerank").fit(X_A, X_B)
    assert "exact" not in greedy.explanation_.info


def test_auto_choice_follows_n_and_the_memory_budget(monkeypatch):
    model = RDX(device="cpu")  # the CPU's rule (a GPU's: test_auto_choice_on_a_gpu_follows_its_free_memory)
    assert model.choose_path(1_000, 64)[0] == "exact"
    assert model.choose_path(50_000, 64)[0] == "sparse"  # above 20,000
    # a budget too small for the exact path's ~4.5 N^2 float32 + 1 GB
    assert RDX(device="cpu", memory_budget_gb=1.0).choose_path(10_000, 64)[0] == "sparse"
    assert RDX(device="cpu", memory_budget_gb=100.0).choose_path(10_000, 64)[0] == "exact"
    # no budget: what the machine has available now
    monkeypatch.setattr(sparse_rdx, "available_memory_bytes", lambda: 0.5 * 1024**3)
    path, reason = RDX(device="cpu").choose_path(5_000, 64)
    assert path == "sparse" and "does not fit" in reason
    monkeypatch.setattr(sparse_rdx, "available_memory_bytes", lambda: 64 * 1024**3)
    assert RDX(device="cpu").choose_path(5_000, 64)[0] == "exact"
    # overrides win
    assert RDX(path="exact", memory_budget_gb=0.1).choose_path(50_000, 64)[0] == "exact"
    assert RDX(path="sparse").choose_path(100, 64)[0] == "sparse"


def test_auto_choice_on_a_gpu_follows_its_free_memory(monkeypatch):
    """On a GPU the exact path stays while its ~3 N^2 float32 + 1 GB fit in 90 % of the free GPU memory
    (no N limit: its sorts are fast there), whatever the host has; then the sparse path."""
    free = {"bytes": 80 * 1024**3}
    seen = []

    def mem_get_info(device):
        seen.append(torch.device(device).type)
        return free["bytes"], 80 * 1024**3

    monkeypatch.setattr(torch.cuda, "mem_get_info", mem_get_info)
    monkeypatch.setattr(sparse_rdx, "available_memory_bytes", lambda: 0.5 * 1024**3)  # host: tiny
    gpu = RDX(device="cuda")
    assert gpu.choose_path(40_000, 768)[0] == "exact"  # 3 x 40,000^2 x 4 B + 1 GB = 18.9 GB
    path, reason = gpu.choose_path(70_000, 768)
    assert path == "exact" and "fits on cuda" in reason  # 55.8 GB <= 0.9 x 80 GB
    path, reason = gpu.choose_path(85_000, 768)
    assert path == "sparse" and "does not fit" in reason  # 81.7 GB
    free["bytes"] = 10 * 1024**3  # another job holds most of the GPU
    assert gpu.choose_path(20_000, 768)[0] == "exact"  # 5.5 GB <= 0.9 x 10 GB
    assert gpu.choose_path(30_000, 768)[0] == "sparse"  # 11.1 GB
    assert seen and set(seen) == {"cuda"}
    # an explicit budget wins over the free memory; variants the sparse path lacks stay exact if they fit
    assert RDX(device="cuda", memory_budget_gb=200.0).choose_path(85_000, 768)[0] == "exact"
    assert RDX(device="cuda", clustering="pagerank").choose_path(20_000, 768)[0] == "exact"
    # the CPU's rule is unchanged by a GPU being there
    assert RDX(device="cpu", memory_budget_gb=100.0).choose_path(30_000, 768)[0] == "sparse"


@pytest.mark.parametrize(
    "variant",
    [
        {"clustering": "pagerank"},
        {"difference": "standard"},
        {"similarity": "zp_local_scaling"},
        {"guidance": "labels"},
        {"reference_compat": True},
    ],
)
def test_unsupported_variants(variant):
    with pytest.raises(ValueError, match="path='sparse' does not support"):
        RDX(path="sparse", **variant).choose_path(1_000, 8)
    # auto: exact when it fits, an error when it does not
    assert RDX(memory_budget_gb=1000.0, **variant).choose_path(50_000, 8)[0] == "exact"
    with pytest.raises(ValueError, match="does not fit"):
        RDX(memory_budget_gb=1.0, **variant).choose_path(50_000, 8)


def test_bad_sparse_parameters_get_clear_errors():
    X_A, X_B, _ = planted(seed=8, per_cluster=10)
    for params, message in (
        ({"path": "fast"}, "unknown path"),
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"background_cells": 0}, "background_cells"),
        ({"memory_budget_gb": -1.0}, "memory_budget_gb"),
        ({"rank_estimate": "guess"}, "unknown rank_estimate"),
        ({"rank_sample_size": 0}, "rank_sample_size"),
        ({"eigensolver": "magic"}, "unknown eigensolver"),
    ):
        with pytest.raises(ValueError, match=message):
            RDX(**params).fit(X_A, X_B)


def test_connectivity_warning_on_a_disconnected_union_graph(caplog):
    rng = np.random.default_rng(9)
    X = np.concatenate([rng.normal(size=(30, 3)), 100 + rng.normal(size=(30, 3))])
    X_B = X + rng.normal(scale=0.3, size=X.shape)
    with caplog.at_level(logging.WARNING, logger="rdx.methods.sparse_rdx"):
        model = RDX(path="sparse", n_concepts=2, n_neighbors=5, device="cpu").fit(X, X_B)
    assert "2 connected components" in caplog.text
    assert model.explanation_.info["sparse"]["graphs"]["both"]["union_components"] == 2


def test_sparse_path_is_deterministic_and_records_itself():
    X_A, X_B, _ = planted(seed=10, per_cluster=50)
    first = RDX(path="sparse", n_concepts=2, random_state=4, device="cpu").fit(X_A, X_B)
    second = RDX(path="sparse", n_concepts=2, random_state=4, device="cpu").fit(X_A, X_B)
    for direction in ("10", "01"):
        np.testing.assert_array_equal(first.labels_[direction], second.labels_[direction])
    assert first.explanation_.to_dict() == second.explanation_.to_dict()
    info = first.explanation_.info
    assert info["path"] == "sparse" and "path='sparse'" in info["path_reason"]
    graph = info["sparse"]["graphs"]["both"]
    assert graph["union_pairs"] > 0 and graph["background_cells"] >= 1
    assert set(info["sparse"]["spectral"]) == {"10", "01"}


def test_rank_sample_size_reaches_the_neighbour_pass():
    X_A, X_B, _ = planted(seed=13, per_cluster=50)  # N = 200
    model = RDX(path="sparse", n_concepts=2, n_neighbors=10, rank_sample_size=64, device="cpu").fit(X_A, X_B)
    graph = model.explanation_.info["sparse"]["graphs"]["both"]
    assert graph["rank_sample_size"] == 64 and graph["estimated_rank_fraction"]["A"] > 0


@pytest.mark.parametrize("seed", [0, 2])
def test_sparse_agrees_with_exact_on_planted_clusters(seed):
    X_A, X_B, _ = planted(seed=seed)
    common = dict(n_concepts=2, gamma=0.05, device="cpu", random_state=0)
    exact = RDX(path="exact", **common).fit(X_A, X_B)
    sparse = RDX(path="sparse", n_neighbors=30, **common).fit(X_A, X_B)
    for direction in ("10", "01"):
        assert adjusted_rand_score(exact.labels_[direction], sparse.labels_[direction]) > 0.95
    for side in ("A", "B"):
        for concept in exact.explanation_.concepts[side]:
            best = max(len(set(concept.grid) & set(c.grid)) for c in sparse.explanation_.concepts[side])
            assert best >= 8


def test_sparse_at_its_default_settings_agrees_with_exact_on_the_benchmarks_planted_data():
    # the scale benchmark's "planted" data (scripts/bench_scale.py), smaller: 20 clusters, model B
    # merges 5 pairs of A's and splits 5 others, k = 5 real concepts per direction; every sparse
    # setting at its default (K = 200 neighbours, N / 4 far-field cells, Lanczos)
    k, n = 5, 1200
    X_A, X_B = bench_make_pair()(n, 8, 0, n_clusters=4 * k, merges=k, splits=k)
    common = dict(n_concepts=k, gamma=0.05, device="cpu", random_state=0)
    exact = RDX(path="exact", **common).fit(X_A, X_B)
    sparse = RDX(path="sparse", **common).fit(X_A, X_B)
    graph = sparse.explanation_.info["sparse"]["graphs"]["both"]
    # the approximation is in play: the neighbour graphs hold a quarter of the pairs, the far-field
    # cells model the rest
    assert sparse.path_ == "sparse" and graph["union_pairs"] < 0.3 * n * n and graph["background_cells"] > 1
    for direction in ("10", "01"):
        # no trivial agreement: the exact partition has its k concepts and the null cluster
        assert len(np.unique(exact.labels_[direction])) == k + 1
        assert adjusted_rand_score(exact.labels_[direction], sparse.labels_[direction]) >= 0.9, direction


def test_aligned_sparse_runs_each_direction_on_its_own_pair():
    X_A, X_B, _ = planted(seed=11, per_cluster=40)
    model = RDX(path="sparse", n_concepts=2, align=True, alignment_steps=5, device="cpu").fit(X_A, X_B)
    assert set(model.explanation_.info["sparse"]["graphs"]) == {"10", "01"}
    assert model.difference_graph("10").shape == (len(X_A), len(X_A))


@pytest.mark.slow
def test_sparse_agrees_with_exact_on_a_larger_planted_set():
    X_A, X_B, _ = planted(seed=12, per_cluster=750)  # N = 3000
    common = dict(n_concepts=2, gamma=0.05, device="cpu", random_state=0)
    exact = RDX(path="exact", **common).fit(X_A, X_B)
    sparse = RDX(path="sparse", **common).fit(X_A, X_B)
    for direction in ("10", "01"):
        assert adjusted_rand_score(exact.labels_[direction], sparse.labels_[direction]) > 0.9
