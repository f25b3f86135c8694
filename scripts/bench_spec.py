"""Benchmark SPEC's random-Fourier-feature path at large N: seconds and peak memory of one fit.

Data: ``bench_rdx.make_pair`` (10 Gaussian clusters in d dimensions, float32; model B merges A's
clusters 0 and 1 and splits cluster 2 in two). ``SPECBaseline(path="rff")`` fits both sides with k
concepts. Time is ``time.perf_counter`` around the fit only; memory is the process's peak RSS (VmHWM,
``bench_rdx.peak_rss_kb``), which includes the data (2 x N x d float32) and the imports, and the RSS
just before the fit, so their difference bounds what the fit itself added. The load average before the
fit is recorded: the machine may be shared. For each concept the members are counted by A's and by B's
planted cluster, to see the planted merge (side B) and split (side A).

Usage (from the repository root)::

    .venv/bin/python scripts/bench_spec.py                                  # N = 100,000, d = 768
    .venv/bin/python scripts/bench_spec.py --n 20000 --d 128 --out outputs/bench/spec.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
KB_PER_GB = 1024**2


def bench_rdx() -> Any:
    """``scripts/bench_rdx.py`` as a module (its data generator and memory helpers)."""
    spec = importlib.util.spec_from_file_location("bench_rdx", HERE / "bench_rdx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def top_counts(labels: np.ndarray, top: int = 3) -> dict[str, int]:
    """The ``top`` most frequent labels and their counts, most frequent first (JSON keys)."""
    values, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:top]
    return {str(int(values[i])): int(counts[i]) for i in order}


def run(n: int, d: int, rff_dimension: int, n_concepts: int, seed: int) -> dict[str, Any]:
    """Fit SPEC's rff path once on ``make_pair(n, d, seed)`` and measure it."""
    from rdx.methods.baselines.spec import SPECBaseline

    helpers = bench_rdx()
    X_A, X_B, truth_A, truth_B = helpers.make_pair(n, d, seed, return_truth=True)
    model = SPECBaseline(n_concepts=n_concepts, path="rff", rff_dimension=rff_dimension, random_state=seed)
    rss_before_kb = helpers.current_rss_kb()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    model.fit(X_A, X_B)
    seconds = time.perf_counter() - started
    peak_kb = helpers.peak_rss_kb()
    explanation = model.explanation_
    return {
        "n": n,
        "d": d,
        "rff_dimension": rff_dimension,
        "features_per_model": 2 * rff_dimension,
        "n_concepts": n_concepts,
        "seed": seed,
        "path": model.path_,
        "seconds": round(seconds, 2),
        "peak_rss_gb": round(peak_kb / KB_PER_GB, 3),
        "rss_before_fit_gb": round(rss_before_kb / KB_PER_GB, 3),
        "load_average_before": round(load_before, 2),
        "cpu_count": os.cpu_count(),
        "bandwidths": model.bandwidths_,
        "eigenvalues": {
            side: [round(float(v), 5) for v in values] for side, values in model.eigenvalues_.items()
        },
        "concepts": {
            side: [
                {
                    "index": concept.index,
                    "size": concept.size,
                    "members_by_cluster_A": top_counts(truth_A[concept.members]),
                    "members_by_cluster_B": top_counts(truth_B[concept.members]),
                }
                for concept in concepts
            ]
            for side, concepts in explanation.concepts.items()
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="images (default 100,000)")
    parser.add_argument("--d", type=int, default=768, help="feature dimension of both models (default 768)")
    parser.add_argument("--rff-dimension", type=int, default=None, help="random frequencies per model")
    parser.add_argument("--n-concepts", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="write the result here as JSON")
    args = parser.parse_args(argv)
    if args.rff_dimension is None:
        from rdx.methods.baselines.spec import SPECBaseline

        args.rff_dimension = SPECBaseline().rff_dimension
    result = run(args.n, args.d, args.rff_dimension, args.n_concepts, args.seed)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
