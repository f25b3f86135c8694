"""Benchmark the project's RDX against a deliberately plain implementation of the same formulas.

(a) ``rdx.methods.rdx.RDX`` (the project's estimator) and (b) ``plain_rdx`` below, which times the steps
of the project's one plain reference, ``tests/plain_rdx.py`` (scipy ``cdist`` in float64, double
``argsort`` ranks, dense ``sklearn.cluster.SpectralClustering`` per direction, grids by the
"maximize_total_neighborhood_affinity" rule written with loops), run end to end on the same synthetic
data: ranks -> difference -> both directions clustered -> grids.

Each (N, d, implementation) runs in a fresh subprocess, so its peak memory is its own: the table shows
the process's peak RSS (VmHWM; see ``peak_rss_kb``) and, separately, the algorithm's own memory (peak
minus the RSS after imports and data generation). Time is ``time.perf_counter`` around the fit only.
Labels and grids come back through files, and the parent scores agreement of (a) and (b) by the
adjusted Rand index per direction.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_rdx.py                       # the full default benchmark
    .venv/bin/python scripts/bench_rdx.py --sizes 1000 2000 --dims 64 --out /tmp/bench.json
    .venv/bin/python scripts/bench_rdx.py --sizes 5000 --dims 768 --floor --repeats 5   # fit vs its floor

With ``--floor`` the worker of (a) also times the floor of the exact method on the same data, in the same
process, alternating with the fits: both models' distance products (the blocked matrix multiplies of
the fit) and the sorts of their rows (the packed-key sort the fit's ranks use, on already packed keys),
nothing else; after the fits it also times ``method_floor``, the floor plus the parts any exact RDX with
the fit's labels must also do (a lower bound of the fit). ``--repeats`` repeats (a)'s fit (and floor)
in its process; times are medians, with the process CPU time beside the wall time (a shared machine
inflates wall times).

Importable by path (``importlib``): ``plain_rdx`` and ``make_pair`` are what the tests use.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib.util
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

IMPLEMENTATIONS = {"a": "project RDX (rdx.methods.rdx.RDX)", "b": "plain reference (tests/plain_rdx.py)"}
PLAIN_REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "plain_rdx.py"
DIRECTIONS = ("10", "01")
DIRECTION_TO_SIDE = {"10": "B", "01": "A"}
COLUMNS = [
    "N",
    "d",
    "time a (s)",
    "time b (s)",
    "speed-up b/a",
    "peak a (GB)",
    "peak b (GB)",
    "alg. memory a/b (GB)",
    "ARI 10",
    "ARI 01",
]
DASH = "—"
TIE_RTOL = 1e-6  # grid scores this close (relative) to the best count as tied when grids are compared
KB_PER_GB = 1024**2  # ru_maxrss, VmRSS and VmHWM are in KiB on Linux; GB here means GiB


# ----------------------------------------------------------------------------------------------------
# Synthetic data


def make_pair(
    n: int,
    d: int,
    seed: int = 0,
    n_clusters: int = 10,
    return_truth: bool = False,
    merges: int = 1,
    splits: int = 1,
) -> tuple[np.ndarray, ...]:
    """Two float32 representations of the same N synthetic images with planted differences.

    Model A: ``n_clusters`` Gaussian clusters in d dimensions. Model B sees the same images with the
    same within-cluster offsets plus fresh noise, but merges ``merges`` pairs of A's clusters (2p and
    2p + 1 get one centre: what B groups and A separates) and splits the next ``splits`` clusters in two
    (half of each moves to a new centre: what A groups and B separates). Deterministic from seed; the
    defaults (one merge of clusters 0 and 1, one split of cluster 2) are the benchmark's original data.

    Args:
        n: number of images.
        d: dimension of both representations.
        seed: seed of everything random.
        n_clusters: clusters in model A (at least 2 * merges + splits).
        return_truth: also return the cluster labels of A and of B.
        merges, splits: planted differences of each kind.

    Returns:
        (X_A, X_B) as (n, d) float32 arrays, or (X_A, X_B, truth_A, truth_B) with ``return_truth``.
    """
    if merges < 0 or splits < 0 or n_clusters < max(3, 2 * merges + splits):
        raise ValueError(
            f"n_clusters must be at least 3 and hold the planted merges and splits (2 x {merges} + "
            f"{splits}), got {n_clusters}"
        )
    rng = np.random.default_rng(seed)
    separation = 2.5  # centre spread relative to the unit within-cluster spread
    truth_A = rng.permutation(np.arange(n) % n_clusters)
    centres_A = separation * rng.standard_normal((n_clusters, d), dtype=np.float32)
    offsets = rng.standard_normal((n, d), dtype=np.float32)  # each image's own place in its cluster
    X_A = centres_A[truth_A] + offsets

    # B: clusters 2p + 1 merged into 2p; cluster 2 * merges + q split into itself and n_clusters + q.
    centres_B = np.concatenate([centres_A, separation * rng.standard_normal((splits, d), dtype=np.float32)])
    truth_B = truth_A.copy()
    for pair in range(merges):
        centres_B[2 * pair + 1] = centres_B[2 * pair]
        truth_B[truth_B == 2 * pair + 1] = 2 * pair
    for split in range(splits):
        members = np.flatnonzero(truth_A == 2 * merges + split)
        truth_B[rng.permutation(members)[: len(members) // 2]] = n_clusters + split
    noise = 0.5 * rng.standard_normal((n, d), dtype=np.float32)
    X_B = centres_B[truth_B] + offsets + noise
    X_A, X_B = X_A.astype(np.float32, copy=False), X_B.astype(np.float32, copy=False)
    if return_truth:
        return X_A, X_B, truth_A, truth_B
    return X_A, X_B


# ----------------------------------------------------------------------------------------------------
# The plain implementation (b): the frozen reference of the equivalence tests, timed stage by stage


@functools.cache
def plain_reference() -> ModuleType:
    """``tests/plain_rdx.py``, the project's one plain reference (scripts and tests are not packages, so
    it is imported by path)."""
    spec = importlib.util.spec_from_file_location("plain_rdx", PLAIN_REFERENCE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # before running it: its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def plain_rdx(
    X_A: np.ndarray,
    X_B: np.ndarray,
    n_concepts: int,
    gamma: float,
    beta: float,
    random_state: int,
    grid_size: int = 9,
) -> dict[str, Any]:
    """RDX with the null cluster by the plain reference's steps. What the project's estimator is timed
    against.

    Distances (scipy ``cdist``, float64), double-argsort ranks, the locally-biased difference,
    Aff = exp(-beta D) per direction, ``SpectralClustering`` of (Aff + Aff^T) / 2 with k + 1 clusters,
    clusters ordered by ascending mean within-cluster affinity, and "maximize_total_neighborhood_affinity"
    grids (each member's neighbourhood scored by its affinity sum; the best block, lowest anchor first
    among exact ties).

    Returns:
        {"labels": {"10": (N,), "01": (N,)}, "grids": {"10": [grid per label], "01": [...]},
        "grid_ties": {"10": [[every block within TIE_RTOL of the best] per label], ...},
        "cluster_affinity": {"10": [m_c per label], "01": [...]}, "timings": {stage: seconds}}.
        Labels are ordered by ascending mean within-cluster affinity (0 = null cluster); grids are
        indexed by label, the null cluster's first. Direction "10" explains B (grids in X_B), "01" A.
    """
    plain = plain_reference()
    timings: dict[str, float] = {}
    start = time.perf_counter()
    E = {"A": plain.distances(X_A), "B": plain.distances(X_B)}
    timings["distances"] = time.perf_counter() - start

    start = time.perf_counter()
    R = {side: plain.ranks_from_distances(dist) for side, dist in E.items()}
    timings["ranks"] = time.perf_counter() - start

    start = time.perf_counter()
    D_10 = plain.locally_biased(R["A"].astype(np.float64), R["B"].astype(np.float64), gamma)
    affinities = {"10": plain.affinity(D_10, beta), "01": plain.affinity(-D_10, beta)}
    timings["difference_affinity"] = time.perf_counter() - start

    labels_out: dict[str, np.ndarray] = {}
    grids_out: dict[str, list[list[int]]] = {}
    ties_out: dict[str, list[list[list[int]]]] = {}
    means_out: dict[str, list[float]] = {}
    timings["clustering"] = timings["ordering"] = timings["grids"] = 0.0
    for direction in DIRECTIONS:
        affinity = affinities[direction]
        start = time.perf_counter()
        raw = plain.spectral(affinity, n_concepts + 1, random_state)
        timings["clustering"] += time.perf_counter() - start

        start = time.perf_counter()
        labels = plain.ordered(affinity, raw)
        means = plain.cluster_means(affinity, labels)
        labels_out[direction] = labels
        means_out[direction] = [means[label] for label in sorted(means)]
        timings["ordering"] += time.perf_counter() - start

        start = time.perf_counter()
        side = DIRECTION_TO_SIDE[direction]
        features = {"A": X_A, "B": X_B}[side]
        grids_out[direction], ties_out[direction] = [], []
        for label in range(int(labels.max()) + 1):
            members = np.flatnonzero(labels == label)
            scored = plain.neighbourhood_scores(members, features, affinity, grid_size, distances=E[side])
            grids_out[direction].append(plain.tied_best(scored)[0])
            ties_out[direction].append(plain.tied_best(scored, TIE_RTOL))
        timings["grids"] += time.perf_counter() - start
    return {
        "labels": labels_out,
        "grids": grids_out,
        "grid_ties": ties_out,
        "cluster_affinity": means_out,
        "timings": timings,
    }


def project_grids(model: Any) -> dict[str, list[np.ndarray]]:
    """Grids of a fitted project RDX per direction, indexed by label (null cluster first)."""
    explanation = model.explanation_
    grids = {}
    for direction, side in DIRECTION_TO_SIDE.items():
        null = explanation.null.get(side)
        concepts = ([null] if null is not None else []) + list(explanation.concepts[side])
        grids[direction] = [np.asarray(c.grid, dtype=np.int64) for c in concepts]
    return grids


def packed_keys(keys: Any) -> Any:
    """(b, N) float32 squared-distance keys (used up) -> int64 (key bits << c) | column, c = bits of
    N - 1: what the fit's ranks sort (negative keys count as 0)."""
    import torch

    n = keys.shape[1]
    shift = max(1, (n - 1).bit_length())
    packed = keys.clamp_(min=0.0).view(torch.int32).to(torch.int64).mul_(1 << shift)
    return packed.add_(torch.arange(n, device=keys.device))


def distance_floor(
    X_A: np.ndarray, X_B: np.ndarray, dtype: str = "float32", device: str = "auto"
) -> dict[str, float]:
    """Seconds of the work no exact RDX can skip, timed alone: both models' distance products and the
    sorts of every row (the fit's own primitives, block by block as the fit runs them).

    Products: the float32 matrix multiply of each row block with all features (as the fit's ranks do,
    without the norms added). Sorts: each row of packed (distance bits, column) keys sorted, the sort
    the fit's ranks use, timed on keys already packed. Returns {"products_s", "sorts_s", "floor_s",
    "cpu_s"} (the floor's process CPU time).
    """
    import torch

    from rdx.methods.neighbourhoods import (
        DEFAULT_BLOCK_BYTES,
        ROW_BYTES_PER_ENTRY,
        centred_features,
        resolve_device,
        row_blocks,
        sort_rows_in_place,
        torch_dtype,
    )

    device = resolve_device(device)
    synchronise = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    products = sorts = 0.0
    cpu_started = time.process_time()
    n = X_A.shape[0]
    for X in (X_A, X_B):
        features, _ = centred_features(X, torch_dtype(dtype), device)
        for rows in row_blocks(n, n, 2 * ROW_BYTES_PER_ENTRY + 12, DEFAULT_BLOCK_BYTES):
            synchronise()
            started = time.perf_counter()
            keys = features[rows] @ features.T
            synchronise()
            products += time.perf_counter() - started
            packed = packed_keys(keys)
            synchronise()
            started = time.perf_counter()
            sort_rows_in_place(packed)
            synchronise()
            sorts += time.perf_counter() - started
    return {
        "products_s": products,
        "sorts_s": sorts,
        "floor_s": products + sorts,
        "cpu_s": time.process_time() - cpu_started,
    }


def _median_seconds(work: Any, repeats: int, synchronise: Any) -> float:
    times = []
    for _ in range(repeats):
        synchronise()
        started = time.perf_counter()
        work()
        synchronise()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def method_floor(
    X_A: np.ndarray, X_B: np.ndarray, model: Any, floor_s: float, repeats: int = 5, device: str = "auto"
) -> dict[str, Any]:
    """What an exact RDX with this fit's labels must do besides the floor, each part timed alone here.

    Beyond the distance products and row sorts (``distance_floor``), any exact RDX on neighbour ranks
    with this fit's labels has to: invert each sorted row into ranks (a scatter per row block), evaluate
    the difference formula once per pair (tanh of a ratio), exponentiate the difference once per
    direction (the affinity), multiply the direction's graph with as many blocks of vectors as this fit's
    eigensolver needed for its labels (``model``'s recorded block products, each product timed on a
    graph of the same size and dtype) and run the same k-means (10 initialisations, one thread) on the
    same embedding. Everything else the fit does is left out (packing the sort keys, symmetrising the
    graph, degrees, the Krylov basis and Rayleigh-Ritz, ordering the clusters, the grids), so the sum
    is a lower bound: no implementation with this fit's labels, made of these operations, can be
    faster than ``floor_s`` + the parts. Medians of ``repeats``. Returns the parts' seconds,
    "bound_s" (floor + parts) and "bound_over_floor".
    """
    import torch

    from rdx.methods.neighbourhoods import resolve_device

    device = resolve_device(device)
    synchronise = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    inversion, ranks = _rank_inversion(X_A, X_B, device, repeats, synchronise)
    formula, difference = _difference_formula(ranks, model.gamma_, repeats, synchronise)
    del ranks
    parts = {"rank_inversion_s": inversion, "difference_formula_s": formula}
    graph = torch.empty_like(difference)
    for direction, sign in (("10", 1.0), ("01", -1.0)):
        record = model.explanation_.info["exact"]["spectral"][direction]
        found = _direction_parts(difference, -model.beta * sign, graph, record, model, repeats, synchronise)
        for key, seconds in found.items():
            parts[key] = parts.get(key, 0.0) + seconds
    bound = floor_s + sum(parts.values())
    return {**parts, "floor_s": floor_s, "bound_s": bound, "bound_over_floor": bound / floor_s}


def _rank_inversion(X_A: np.ndarray, X_B: np.ndarray, device: Any, repeats: int, synchronise: Any) -> tuple:
    """Both models' rank matrices, made as the floor makes its sorted rows; (seconds of the scatters that
    invert the sorted rows alone, [ranks_A, ranks_B] (N, N) int32)."""
    import torch

    from rdx.methods.neighbourhoods import (
        DEFAULT_BLOCK_BYTES,
        ROW_BYTES_PER_ENTRY,
        centred_features,
        row_blocks,
        sort_rows_in_place,
        torch_dtype,
    )

    n = X_A.shape[0]
    shift = max(1, (n - 1).bit_length())
    positions = torch.arange(n, dtype=torch.int32, device=device)
    ranks = [torch.empty((n, n), dtype=torch.int32, device=device) for _ in range(2)]
    seconds = 0.0
    for X, model_ranks in zip((X_A, X_B), ranks, strict=True):
        features, _ = centred_features(X, torch_dtype("float32"), device)
        for rows in row_blocks(n, n, 2 * ROW_BYTES_PER_ENTRY + 12, DEFAULT_BLOCK_BYTES):
            packed = packed_keys(features[rows] @ features.T)
            sort_rows_in_place(packed)
            order = packed.bitwise_and_((1 << shift) - 1)
            scatter = functools.partial(
                model_ranks[rows].scatter_, 1, order, positions.expand(len(order), -1)
            )
            seconds += _median_seconds(scatter, repeats, synchronise)
    return seconds, ranks


def _difference_formula(ranks: list, gamma: float, repeats: int, synchronise: Any) -> tuple:
    """(seconds of the locally biased difference of the two rank matrices, row block by row block, the
    fit's function and blocks; the (N, N) float32 difference)."""
    import torch

    from rdx.methods.neighbourhoods import DEFAULT_BLOCK_BYTES, ROW_BYTES_PER_ENTRY, row_blocks
    from rdx.methods.rdx import locally_biased_rows

    n = ranks[0].shape[0]
    difference = torch.empty((n, n), dtype=torch.float32, device=ranks[0].device)
    blocks = list(row_blocks(n, n, 2 * ROW_BYTES_PER_ENTRY + 12, DEFAULT_BLOCK_BYTES))
    scratch = torch.empty((blocks[0].stop, n), dtype=torch.float32, device=ranks[0].device)

    def formula() -> None:
        for rows in blocks:
            lower = scratch[: rows.stop - rows.start]
            a, b = ranks[0][rows], ranks[1][rows]
            locally_biased_rows(a, b, gamma, torch.float32, out=difference[rows], scratch=lower)

    return _median_seconds(formula, repeats, synchronise), difference


def _direction_parts(
    difference: Any, exponent: float, graph: Any, record: dict, model: Any, repeats: int, synchronise: Any
) -> dict[str, float]:
    """One direction's parts of ``method_floor``: its exp pass, its eigensolver's block products (the
    fit's count times one product on its graph) and its k-means on its embedding; ``graph`` is (N, N)
    memory to use."""
    import torch
    from sklearn.cluster import k_means

    from rdx.methods.eigensolvers import single_thread
    from rdx.methods.rdx import graph_spectral_embedding, symmetric_affinity

    exp_pass = _median_seconds(
        lambda: torch.mul(difference, exponent, out=graph).exp_(), repeats, synchronise
    )
    symmetric_affinity(difference, exponent, out=graph)
    block = torch.randn((graph.shape[0], record["block"]), dtype=graph.dtype, device=graph.device)
    product = _median_seconds(lambda: graph @ block, 4 * repeats, synchronise)
    embedding, generator, _ = graph_spectral_embedding(graph, model.n_clusters, model.random_state)
    state = generator.get_state()

    def cluster() -> None:
        generator.set_state(state)  # every repeat runs the fit's k-means from the fit's generator state
        with single_thread():
            k_means(embedding, model.n_clusters, random_state=generator, n_init=10)

    return {
        "affinity_exp_s": exp_pass,
        "eigensolver_products_s": record["block_products"] * product,
        "k_means_s": _median_seconds(cluster, repeats, synchronise),
    }


# ----------------------------------------------------------------------------------------------------
# Worker: one (N, d, implementation) in this process


def proc_status_kb(field: str) -> int | None:
    """A memory field of /proc/self/status in KiB ("VmRSS": now, "VmHWM": peak), None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kb() -> int:
    """This process's peak RSS (KiB).

    VmHWM where /proc exists: ``getrusage(RUSAGE_SELF).ru_maxrss`` of a process started by fork/vfork +
    exec also counts the parent's high-water mark at the exec (Linux carries it over), so a worker
    spawned by a large parent (a pytest session holding torch, say) would report the parent's size.
    ru_maxrss is kept in the result as ``ru_maxrss_kb`` for reference.
    """
    hwm = proc_status_kb("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kb() -> int:
    """Resident set size now (KiB); falls back to the peak so far."""
    rss = proc_status_kb("VmRSS")
    return rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_worker(args: argparse.Namespace) -> None:
    workdir = Path(args.workdir)
    result: dict[str, Any] = {"impl": args.worker, "n": args.n, "d": args.d, "pid": os.getpid()}
    if args.worker == "a":
        import rdx.methods.rdx as project
        from rdx.hashing import file_digest

        result["project_file_sha256"] = file_digest(project.__file__)[:12]
    else:
        plain_reference()  # imports before the baseline, like (a)'s

    X_A, X_B = make_pair(args.n, args.d, args.seed, n_clusters=args.clusters)
    gc.collect()
    result["baseline_rss_kb"] = current_rss_kb()
    result["baseline_peak_rss_kb"] = peak_rss_kb()

    if args.worker == "a":
        fits, floors = [], []
        for _ in range(args.repeats):
            if args.floor:
                floors.append(distance_floor(X_A, X_B))
            fit_started, cpu_started = time.perf_counter(), time.process_time()
            model = project.RDX(
                n_concepts=args.n_concepts, gamma=args.gamma, beta=args.beta, random_state=args.seed
            ).fit(X_A, X_B)
            fits.append(
                {"wall_s": time.perf_counter() - fit_started, "cpu_s": time.process_time() - cpu_started}
            )
        result["time_s"] = float(np.median([fit["wall_s"] for fit in fits]))
        result["cpu_s"] = float(np.median([fit["cpu_s"] for fit in fits]))
        result["fits"] = fits
        result["stage_times_s"] = dict(model.timings_)
        if floors:
            result["floor"] = {key: float(np.median([floor[key] for floor in floors])) for key in floors[0]}
            result["floors"] = floors
        labels = dict(model.labels_)
        grids = project_grids(model) if labels else {}
    else:
        start = time.perf_counter()
        out = plain_rdx(X_A, X_B, args.n_concepts, args.gamma, args.beta, args.seed)
        result["time_s"] = time.perf_counter() - start
        labels, grids = out["labels"], out["grids"]
        result["stage_times_s"] = out["timings"]
        result["grid_ties"] = {
            k: [[[int(i) for i in b] for b in t] for t in v] for k, v in out["grid_ties"].items()
        }

    result["peak_rss_kb"] = peak_rss_kb()
    result["ru_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.worker == "a" and args.floor and labels and "exact" in model.explanation_.info:
        # after the peak is taken: the bound's own matrices are not the fit's memory
        result["method_floor"] = method_floor(X_A, X_B, model, result["floor"]["floor_s"], args.repeats)
    for direction in DIRECTIONS:
        if direction in labels:
            np.save(workdir / f"labels_{args.worker}_{direction}.npy", np.asarray(labels[direction]))
    result["grids"] = {k: [[int(i) for i in g] for g in v] for k, v in grids.items()}
    (workdir / f"result_{args.worker}.json").write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------------
# Parent: runs the workers, scores agreement, writes the table


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
    }
    if hasattr(os, "sched_getaffinity"):
        info["usable_cores"] = len(os.sched_getaffinity(0))
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    info["ram_gb"] = round(int(line.split()[1]) / KB_PER_GB, 1)
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: pool.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer")}
            for pool in threadpool_info()
            if pool.get("user_api") == "blas"
        ]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    try:
        import scipy
        import sklearn

        info["scipy"], info["sklearn"] = scipy.__version__, sklearn.__version__
    except ImportError:
        pass
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10
        )
        status = ["git", "status", "--porcelain", "--", "rdx"]
        dirty = subprocess.run(status, cwd=repo, capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            info["git_head"] = head.stdout.strip() + (" (rdx/ modified)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def header_lines(info: dict[str, Any]) -> list[str]:
    blas = info.get("blas")
    if isinstance(blas, list):
        blas_text = (
            ", ".join(f"{b['internal_api']} {b['version']} ({b['num_threads']} threads)" for b in blas)
            or "none found"
        )
    else:
        blas_text = str(blas)
    return [
        f"machine: {info.get('cpu_count')} cores ({info.get('usable_cores', '?')} usable), "
        f"{info.get('ram_gb', '?')} GB RAM, {info['platform']}",
        f"python {info['python']}, numpy {info['numpy']}, scipy {info.get('scipy', '?')}, "
        f"scikit-learn {info.get('sklearn', '?')}; BLAS: {blas_text}",
        f"project: git {info.get('git_head', '?')}",
    ]


def run_one(impl: str, n: int, d: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run one worker subprocess; never raises for a failed worker."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        impl,
        "--n",
        str(n),
        "--d",
        str(d),
        "--n-concepts",
        str(args.n_concepts),
        "--gamma",
        repr(args.gamma),
        "--beta",
        repr(args.beta),
        "--seed",
        str(args.seed),
        "--clusters",
        str(args.clusters),
        "--repeats",
        str(args.repeats),
        "--workdir",
        str(workdir),
    ] + (["--floor"] if args.floor else [])
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    result = run_worker_process(
        cmd, {"impl": impl, "n": n, "d": d}, workdir / f"result_{impl}.json", args.timeout
    )
    if result["status"] != "ok":
        return result
    result["alg_memory_kb"] = result["peak_rss_kb"] - result["baseline_rss_kb"]
    result["load_avg_1min_before"] = load_before  # other work on the machine skews the times
    return result


def run_worker_process(
    cmd: list[str], base: dict[str, Any], result_file: Path, timeout: float, cwd: Path | None = None
) -> dict[str, Any]:
    """Run one worker subprocess that writes ``result_file`` (JSON); never raises for a failed worker.

    Returns ``base`` plus the worker's result and status "ok", or status "timeout" / "failed" (with the
    exit code, a hint when it was SIGKILLed, and the end of its stderr); ``wall_s`` either way.
    """
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        return {**base, "status": "timeout", "wall_s": time.perf_counter() - started}
    if proc.returncode != 0 or not result_file.exists():
        reason = f"exit {proc.returncode}" + (" (SIGKILL: out of memory?)" if proc.returncode == -9 else "")
        return {
            **base,
            "status": "failed",
            "reason": reason,
            "stderr_tail": proc.stderr[-3000:],
            "wall_s": time.perf_counter() - started,
        }
    result = {**base, **json.loads(result_file.read_text()), "status": "ok"}
    result["wall_s"] = time.perf_counter() - started
    return result


def labels_ari(workdir: Path, names: tuple[str, str]) -> dict[str, float | None]:
    """{"ari_10": ..., "ari_01": ...}: adjusted Rand index between two workers' saved labels
    (``labels_<name>_<direction>.npy`` in ``workdir``), None where either file is missing."""
    from sklearn.metrics import adjusted_rand_score

    out: dict[str, float | None] = {}
    for direction in DIRECTIONS:
        files = [workdir / f"labels_{name}_{direction}.npy" for name in names]
        present = all(f.exists() for f in files)
        out[f"ari_{direction}"] = (
            float(adjusted_rand_score(np.load(files[0]), np.load(files[1]))) if present else None
        )
    return out


def agreement(workdir: Path, run_a: dict[str, Any], run_b: dict[str, Any]) -> dict[str, Any]:
    """ARI per direction between (a)'s and (b)'s labels, and whether the grids are identical."""
    out: dict[str, Any] = labels_ari(workdir, ("a", "b"))
    for direction in DIRECTIONS:
        grids_a = run_a.get("grids", {}).get(direction)
        grids_b = run_b.get("grids", {}).get(direction)
        ties_b = run_b.get("grid_ties", {}).get(direction)
        out[f"grids_equal_{direction}"] = grids_a is not None and grids_a == grids_b
        # equivalent: each of (a)'s grids is one of (b)'s tied-best blocks (same labels needed)
        out[f"grids_equivalent_{direction}"] = (
            grids_a is not None
            and ties_b is not None
            and len(grids_a) == len(ties_b)
            and all(grid in ties for grid, ties in zip(grids_a, ties_b, strict=True))
        )
    return out


def cell_status(run: dict[str, Any] | None) -> str | None:
    if run is None:
        return DASH
    if run["status"] == "timeout":
        return "timeout"
    if run["status"] != "ok":
        return "failed"
    return None


def table_row(row: dict[str, Any]) -> list[str]:
    a, b = row["a"], row["b"]

    def time_cell(run: dict[str, Any] | None) -> str:
        return cell_status(run) or f"{run['time_s']:.2f}"

    def peak_cell(run: dict[str, Any] | None) -> str:
        return cell_status(run) or f"{run['peak_rss_kb'] / KB_PER_GB:.2f}"

    def alg_cell(run: dict[str, Any] | None) -> str:
        return cell_status(run) or f"{run['alg_memory_kb'] / KB_PER_GB:.2f}"

    both_ok = cell_status(a) is None and cell_status(b) is None
    speed_up = f"{b['time_s'] / a['time_s']:.1f}×" if both_ok and a["time_s"] > 0 else DASH

    def ari_cell(direction: str) -> str:
        value = row.get("agreement", {}).get(f"ari_{direction}")
        return f"{value:.3f}" if both_ok and value is not None else DASH

    return [
        str(row["n"]),
        str(row["d"]),
        time_cell(a),
        time_cell(b),
        speed_up,
        peak_cell(a),
        peak_cell(b),
        f"{alg_cell(a)} / {alg_cell(b)}",
        ari_cell("10"),
        ari_cell("01"),
    ]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(table_row(row)) + " |" for row in rows]
    return "\n".join(lines)


FLOOR_COLUMNS = [
    "N",
    "d",
    "fit a (s)",
    "fit a CPU (s)",
    "floor (s)",
    "products (s)",
    "sorts (s)",
    "floor CPU (s)",
    "fit / floor",
    "bound (s)",
    "bound / floor",
    "time b (s)",
    "b / a",
]


def floor_row(row: dict[str, Any]) -> list[str] | None:
    """(a)'s fit next to its floor (medians over the repeats), and (b)'s time; None without a floor."""
    a, b = row["a"], row["b"]
    if cell_status(a) is not None or "floor" not in a:
        return None
    floor = a["floor"]
    b_time = cell_status(b) or f"{b['time_s']:.2f}"
    speed_up = f"{b['time_s'] / a['time_s']:.1f}×" if cell_status(b) is None else DASH
    return [
        str(row["n"]),
        str(row["d"]),
        f"{a['time_s']:.2f}",
        f"{a['cpu_s']:.2f}",
        f"{floor['floor_s']:.2f}",
        f"{floor['products_s']:.2f}",
        f"{floor['sorts_s']:.2f}",
        f"{floor['cpu_s']:.2f}",
        f"{a['time_s'] / floor['floor_s']:.1f}×",
        f"{a['method_floor']['bound_s']:.2f}" if "method_floor" in a else DASH,
        f"{a['method_floor']['bound_over_floor']:.2f}×" if "method_floor" in a else DASH,
        b_time,
        speed_up,
    ]


def floor_table(rows: list[dict[str, Any]]) -> str:
    body = [cells for cells in (floor_row(row) for row in rows) if cells is not None]
    if not body:
        return ""
    lines = ["| " + " | ".join(FLOOR_COLUMNS) + " |", "|" + "|".join("---" for _ in FLOOR_COLUMNS) + "|"]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in body])


def progress_line(index: int, total: int, run: dict[str, Any]) -> str:
    head = f"[{index}/{total}] N={run['n']} d={run['d']} impl={run['impl']}:"
    if run["status"] == "ok":
        floor = run.get("floor")
        extra = ""
        if floor:
            parts = f"products {floor['products_s']:.2f}, sorts {floor['sorts_s']:.2f}"
            extra = f", floor {floor['floor_s']:.2f} s ({parts})"
        cpu = f" (CPU {run['cpu_s']:.2f} s)" if "cpu_s" in run else ""
        return (
            f"{head} fit {run['time_s']:.2f} s{cpu}{extra}, peak {run['peak_rss_kb'] / KB_PER_GB:.2f} GB "
            f"(alg. {run['alg_memory_kb'] / KB_PER_GB:.2f} GB), process wall {run['wall_s']:.1f} s, "
            f"load before {run['load_avg_1min_before']:.1f}"
        )
    return f"{head} {run['status']} {run.get('reason', '')} after {run['wall_s']:.1f} s".rstrip()


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    info = machine_info()
    for line in header_lines(info):
        print(line, flush=True)
    print(
        f"settings: n_concepts={args.n_concepts} gamma={args.gamma} beta={args.beta} seed={args.seed} "
        f"max_plain_n={args.max_plain_n} timeout={args.timeout} s",
        flush=True,
    )
    plan = [(n, d) for n in args.sizes for d in args.dims]
    total = sum(2 if n <= args.max_plain_n else 1 for n, _ in plan)
    rows, index = [], 0
    for n, d in plan:
        workdir = Path(tempfile.mkdtemp(prefix="rdx_bench_"))
        try:
            row: dict[str, Any] = {"n": n, "d": d, "a": None, "b": None}
            for impl in ("a", "b"):
                if impl == "b" and n > args.max_plain_n:
                    continue
                index += 1
                row[impl] = run_one(impl, n, d, args, workdir)
                print(progress_line(index, total, row[impl]), flush=True)
            if row["a"] and row["b"] and row["a"]["status"] == row["b"]["status"] == "ok":
                row["agreement"] = agreement(workdir, row["a"], row["b"])
            for impl in ("a", "b"):
                if row[impl] is not None:
                    row[impl].pop("grids", None)  # compared above; not worth keeping in the JSON
                    row[impl].pop("grid_ties", None)
            rows.append(row)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    table = markdown_table(rows)
    notes = [
        "time: perf_counter around the fit only (data generation excluded); peak: the worker process's "
        "peak RSS; alg. memory: peak minus the RSS after imports and data generation; GB = GiB.",
        "ARI: adjusted Rand index of (a)'s and (b)'s labels per direction; "
        f"{DASH}: (b) skipped (N > --max-plain-n) or a run failed.",
    ]
    grid_notes = []
    for r in rows:
        for direction in DIRECTIONS:
            if "agreement" not in r or r["agreement"][f"grids_equal_{direction}"]:
                continue
            how = "tied-best block" if r["agreement"][f"grids_equivalent_{direction}"] else "DIFFERENT"
            grid_notes.append(f"N={r['n']} d={r['d']} dir {direction} ({how})")
    grid_note = "differ at " + ", ".join(grid_notes) if grid_notes else "identical"
    notes.append(
        f"grids of (a) and (b): {grid_note}. A 'tied-best block' differs from (b)'s only in the choice "
        f"among anchors whose scores tie (within {TIE_RTOL:g} relative); 'DIFFERENT' grids are not optimal "
        "for (b) (expected where the labels differ)."
    )
    report = {
        "machine": info,
        "settings": {
            k: getattr(args, k)
            for k in (
                "sizes",
                "dims",
                "clusters",
                "n_concepts",
                "gamma",
                "beta",
                "seed",
                "max_plain_n",
                "timeout",
                "floor",
                "repeats",
            )
        },
        "implementations": IMPLEMENTATIONS,
        "rows": rows,
        "columns": COLUMNS,
        "markdown": table,
        "floor_markdown": floor_table(rows),
        "notes": notes,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print()
    if args.markdown:
        print(table)
    else:
        for row in rows:
            print(dict(zip(COLUMNS, table_row(row), strict=True)))
    if report["floor_markdown"]:
        print()
        print(report["floor_markdown"])
        print(
            "floor: (a)'s distance products and row sorts alone, in its process between its fits; times are "
            f"medians of {args.repeats} repeat(s); CPU: process CPU time (wall times include waiting for a "
            "shared machine's cores). bound: the floor plus what any exact RDX with (a)'s labels must "
            "also do (method_floor: rank inversion, difference formula, one exp per direction, the "
            "eigensolver's block products, k-means), each timed alone after the fits."
        )
        for row in rows:
            bound = (row["a"] or {}).get("method_floor")
            if bound:
                parts = ", ".join(f"{k[:-2]} {v:.3f}" for k, v in bound.items() if k.endswith("_s"))
                print(f"N={row['n']} d={row['d']} bound parts (s): {parts}")
    print()
    for note in notes:
        print(note)
    print(f"written: {out}", flush=True)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 768])
    parser.add_argument("--n-concepts", type=int, default=5)
    parser.add_argument("--gamma", type=float, default=0.05)
    parser.add_argument("--beta", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clusters", type=int, default=10, help="clusters of model A in make_pair")
    parser.add_argument("--floor", action="store_true", help="also time (a)'s floor in its process")
    parser.add_argument("--repeats", type=int, default=1, help="fits of (a) in its process (median)")
    parser.add_argument("--max-plain-n", type=int, default=10000, help="skip (b) above this N")
    parser.add_argument("--out", default="outputs/bench/rdx_bench.json")
    parser.add_argument(
        "--markdown",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="print the result as a Markdown table (the JSON always holds it)",
    )
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per run before it is killed")
    # internal: one run in this process
    parser.add_argument("--worker", choices=sorted(IMPLEMENTATIONS), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--d", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
    else:
        run_benchmark(args)


if __name__ == "__main__":
    main()
