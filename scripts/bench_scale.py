"""Benchmark RDX at scale: the exact and the sparse path, their time, peak memory and agreement.

For each data set, N and d, the exact path (``RDX(path="exact")``) and the sparse path
(``RDX(path="sparse")``) each run in a fresh subprocess, so each peak memory is its own (VmHWM, read right
after the fit; see ``bench_rdx.peak_rss_kb``). Time is ``time.perf_counter`` around the fit only. Where
both ran, the parent scores their agreement: the adjusted Rand index of the labels per direction, the
overlap of the concept grids (for each grid of the exact path, the largest share of its images found in
one grid of the sparse path's same side, averaged over the shown concepts of both sides), and the mBSR
(SILB) of each path's explanation. The load average before each run is recorded: the machine may be
shared.

Data:
    planted: ``bench_rdx.make_pair`` with as many planted differences as concepts asked for: 20
        Gaussian clusters, model B merges 5 pairs of A's clusters and splits 5 others; k = 5,
        gamma = 0.05. Each direction has 5 real concepts.
    synthetic: ``bench_rdx.make_pair`` with its defaults (10 Gaussian clusters; model B merges two of
        A's clusters and splits a third), the data of ``scripts/bench_rdx.py``; k = 5, gamma = 0.05 (its
        settings). Only one planted difference per direction for 5 concepts asked: the rest of each
        partition splits undifferentiated clusters along near-degenerate eigenvectors.
    mnist: 64-d ConvNet features (block2, global average pooled) of the 70,000 MNIST images (60k train
        + 10k test, in a fixed seeded order; the first N are used), model A = the m35 ConvNet (5s
        labelled as 3s), model B = the all-digit ConvNet: the paper's "m35 vs MNIST" pair with its
        settings k = 3, gamma = 0.1. Features are extracted once into ``--mnist-cache``; the checkpoints
        come from ``rdx-compare experiment=m35_vs_mnist`` (which trains them when missing) or
        ``rdx-train training=m35`` / ``training=mnist_all``, under ``outputs/checkpoints/``.

Usage (from the repository root)::

    .venv/bin/python scripts/bench_scale.py                          # the full benchmark (~1 hour)
    .venv/bin/python scripts/bench_scale.py --data planted --sizes 5000 --dims 64 --out outputs/bench/one.json

Each case also reports the sparse path's rank estimate against exact counts (``--rank-check``, on by
default up to N = 20,000): the share of union pairs whose rank in one model is estimated, the median
relative error of those ranks and the mean absolute error they cause in the difference D.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DIRECTIONS = ("10", "01")
DIRECTION_TO_SIDE = {"10": "B", "01": "A"}
KB_PER_GB = 1024**2
DASH = "—"
DATA_SETTINGS = {
    "planted": {"n_concepts": 5, "gamma": 0.05},
    "synthetic": {"n_concepts": 5, "gamma": 0.05},
    "mnist": {"n_concepts": 3, "gamma": 0.1},
}
MNIST_MODELS = {"A": "m35", "B": "mnist_all"}


def bench_rdx() -> Any:
    """``scripts/bench_rdx.py`` as a module (its data generator and memory helpers)."""
    spec = importlib.util.spec_from_file_location("bench_rdx", HERE / "bench_rdx.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------------
# Data


def final_checkpoint(run_name: str, root: Path) -> Path:
    """The last checkpoint in ``index.csv`` of the newest complete training run ``<run_name>-*``."""
    complete = [p for p in root.glob(f"{run_name}-*") if (p / "index.json").exists()]
    runs = sorted(complete, key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(
            f"no complete training run {run_name!r} under {root}; train it with "
            f"`.venv/bin/rdx-train training={run_name}` (or run rdx-compare experiment=m35_vs_mnist)"
        )
    lines = (runs[-1] / "index.csv").read_text().strip().splitlines()
    return runs[-1] / lines[-1].split(",")[-1]


def mnist_features(cache: Path, checkpoints: Path) -> dict[str, np.ndarray]:
    """X_A, X_B (70000, 64) float32 and labels of all MNIST images in a seeded order; cached in ``cache``."""
    if cache.exists():
        with np.load(cache) as data:
            return {key: data[key] for key in data.files}
    import torch

    from rdx.data.mnist import images_to_tensor, load_mnist
    from rdx.models.checkpoints import load_convnet_checkpoint
    from rdx.models.features import extract_features

    images, labels = zip(*(load_mnist(split) for split in ("train", "test")), strict=True)
    images, labels = np.concatenate(images), np.concatenate(labels)
    order = np.random.default_rng(0).permutation(len(labels))
    inputs = images_to_tensor(images[order])
    out: dict[str, np.ndarray] = {"labels": labels[order], "order": order}
    for side, run in MNIST_MODELS.items():
        path = final_checkpoint(run, checkpoints)
        with torch.inference_mode():
            network = load_convnet_checkpoint(path)
            out[f"X_{side}"] = extract_features(
                network, inputs, "block2", "gap", batch_size=1000, device="cpu", progress=False
            )
        out[f"checkpoint_{side}"] = np.array(str(path))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def load_data(name: str, n: int, d: int, seed: int, mnist_cache: Path, checkpoints: Path) -> tuple:
    """(X_A, X_B) of one case."""
    if name == "synthetic":
        return bench_rdx().make_pair(n, d, seed)
    if name == "planted":
        k = DATA_SETTINGS["planted"]["n_concepts"]
        return bench_rdx().make_pair(n, d, seed, n_clusters=4 * k, merges=k, splits=k)
    if name == "mnist":
        features = mnist_features(mnist_cache, checkpoints)
        if n > len(features["labels"]):
            raise ValueError(f"MNIST has {len(features['labels'])} images, asked for {n}")
        if d != features["X_A"].shape[1]:
            raise ValueError(f"the MNIST features are {features['X_A'].shape[1]}-d, asked for d={d}")
        return np.ascontiguousarray(features["X_A"][:n]), np.ascontiguousarray(features["X_B"][:n])
    raise ValueError(f"unknown data {name!r}")


# ----------------------------------------------------------------------------------------------------
# Worker: one (data, N, d, path) in this process


def rank_check(X_A: np.ndarray, X_B: np.ndarray, model: Any) -> dict[str, Any]:
    """How far the sampled rank estimate is from exact counts on the union pairs, and what it does to D."""
    from rdx.methods import sparse_rdx

    common = dict(n_neighbors=model.n_neighbors, dtype=model.dtype, device=model.device)
    common.update(random_state=model.random_state)
    sampled = sparse_rdx.union_neighbour_ranks(X_A, X_B, rank_estimate="sampled", **common)
    exact = sparse_rdx.union_neighbour_ranks(X_A, X_B, rank_estimate="exact", **common)
    out: dict[str, Any] = {"union_pairs": int(len(sampled.rows))}
    for side in ("A", "B"):
        estimated = ~getattr(sampled, f"exact_{side}")
        truth = getattr(exact, f"rank_{side}")[estimated]
        guess = getattr(sampled, f"rank_{side}")[estimated]
        relative = np.abs(guess - truth) / np.maximum(truth, 1.0)
        out[f"estimated_fraction_{side}"] = float(estimated.mean())
        out[f"median_relative_error_{side}"] = float(np.median(relative)) if len(relative) else 0.0
        out[f"p90_relative_error_{side}"] = float(np.quantile(relative, 0.9)) if len(relative) else 0.0
    difference = {
        name: sparse_rdx.locally_biased_values(ranks.rank_A, ranks.rank_B, model.gamma_)
        for name, ranks in (("sampled", sampled), ("exact", exact))
    }
    error = np.abs(difference["sampled"] - difference["exact"])
    out["mean_abs_difference_error"] = float(error.mean())
    out["max_abs_difference_error"] = float(error.max())
    return out


def run_worker(args: argparse.Namespace) -> None:
    import torch

    from rdx.devices import resolve_device
    from rdx.methods import RDX
    from rdx.metrics.bsr import binary_success_rate

    bench = bench_rdx()
    torch.set_num_threads(args.threads or torch.get_num_threads())
    workdir = Path(args.workdir)
    X_A, X_B = load_data(args.data, args.n, args.d, args.seed, Path(args.mnist_cache), Path(args.checkpoints))
    gc.collect()
    result: dict[str, Any] = {"path": args.worker, "data": args.data, "n": args.n, "d": args.d}
    result["baseline_rss_kb"] = bench.current_rss_kb()
    settings = DATA_SETTINGS[args.data]
    model = RDX(
        n_concepts=settings["n_concepts"],
        gamma=settings["gamma"],
        beta=args.beta,
        random_state=args.seed,
        path=args.worker,
        **({"n_neighbors": args.n_neighbors} if args.n_neighbors is not None else {}),
        background_cells=args.background_cells,
        rank_estimate=args.rank_estimate,
        eigensolver=args.eigensolver,
        device=args.device,
    )
    on_gpu = resolve_device(args.device).type == "cuda"
    start = time.perf_counter()
    model.fit(X_A, X_B)
    if on_gpu:
        torch.cuda.synchronize()
    result["time_s"] = time.perf_counter() - start
    result["peak_rss_kb"] = bench.peak_rss_kb()
    if on_gpu:
        result["gpu_peak_gb"] = torch.cuda.max_memory_allocated() / 1024**3
    result["timings_s"] = dict(model.timings_)
    keep = ("path", "path_reason", "sparse", "exact")
    result["info"] = {k: v for k, v in model.explanation_.info.items() if k in keep}
    start = time.perf_counter()
    result["mbsr"] = binary_success_rate(model.explanation_, X_A, X_B)
    result["bsr_time_s"] = time.perf_counter() - start
    result["grids"] = {
        side: [[int(i) for i in c.grid] for c in model.explanation_.concepts[side]] for side in ("A", "B")
    }
    for direction in DIRECTIONS:
        if direction in model.labels_:
            np.save(workdir / f"labels_{args.worker}_{direction}.npy", model.labels_[direction])
    if args.worker == "sparse" and args.rank_check:
        result["rank_check"] = rank_check(X_A, X_B, model)
    (workdir / f"result_{args.worker}.json").write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------------
# Parent


def run_one(path: str, data: str, n: int, d: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run one worker subprocess; never raises for a failed worker."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", path, "--data", data]
    cmd += ["--n", str(n), "--d", str(d), "--workdir", str(workdir), "--seed", str(args.seed)]
    cmd += ["--beta", repr(args.beta)]
    if args.n_neighbors is not None:
        cmd += ["--n-neighbors", str(args.n_neighbors)]
    cmd += ["--rank-estimate", args.rank_estimate, "--eigensolver", args.eigensolver]
    if args.background_cells is not None:
        cmd += ["--background-cells", str(args.background_cells)]
    cmd += ["--device", args.device, "--mnist-cache", args.mnist_cache, "--checkpoints", args.checkpoints]
    cmd += ["--threads", str(args.threads)]
    if n <= args.rank_check_max_n:
        cmd += ["--rank-check"]
    load = os.getloadavg()
    base = {"path": path, "data": data, "n": n, "d": d, "load_before": [round(x, 2) for x in load]}
    return bench_rdx().run_worker_process(cmd, base, workdir / f"result_{path}.json", args.timeout, cwd=REPO)


def agreement(workdir: Path, exact: dict[str, Any], sparse: dict[str, Any]) -> dict[str, Any]:
    """ARI per direction, grid overlap and the mBSR difference of the two paths."""
    out: dict[str, Any] = bench_rdx().labels_ari(workdir, ("exact", "sparse"))
    overlaps = []
    for side in ("A", "B"):
        for grid in exact["grids"][side]:
            best = max((len(set(grid) & set(other)) for other in sparse["grids"][side]), default=0)
            overlaps.append(best / max(len(grid), 1))
    out["grid_overlap"] = float(np.mean(overlaps)) if overlaps else None
    out["mbsr_difference"] = sparse["mbsr"]["mean"] - exact["mbsr"]["mean"]
    return out


COLUMNS = [
    "data",
    "N",
    "d",
    "exact time (s)",
    "exact peak (GB)",
    "sparse time (s)",
    "sparse peak (GB)",
    "ARI 10",
    "ARI 01",
    "grid overlap",
    "mBSR exact / sparse",
    "ΔmBSR",
    "load before (exact / sparse)",
]


def table_row(row: dict[str, Any]) -> list[str]:
    exact, sparse, agree = row.get("exact"), row.get("sparse"), row.get("agreement", {})

    def status(run: dict[str, Any] | None) -> str | None:
        if run is None:
            return DASH
        return None if run["status"] == "ok" else run["status"]

    def time_cell(run: dict[str, Any] | None) -> str:
        return status(run) or f"{run['time_s']:.1f}"

    def peak_cell(run: dict[str, Any] | None) -> str:
        return status(run) or f"{run['peak_rss_kb'] / KB_PER_GB:.2f}"

    def number(key: str, digits: int = 3, sign: bool = False) -> str:
        value = agree.get(key)
        return DASH if value is None else (f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}")

    def mbsr(run: dict[str, Any] | None) -> str:
        return status(run) or f"{run['mbsr']['mean']:.3f}"

    def load(run: dict[str, Any] | None) -> str:
        return DASH if run is None else f"{run['load_before'][0]:.1f}"

    return [
        row["data"],
        str(row["n"]),
        str(row["d"]),
        time_cell(exact),
        peak_cell(exact),
        time_cell(sparse),
        peak_cell(sparse),
        number("ari_10"),
        number("ari_01"),
        number("grid_overlap", 2),
        f"{mbsr(exact)} / {mbsr(sparse)}",
        number("mbsr_difference", 3, sign=True),
        f"{load(exact)} / {load(sparse)}",
    ]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
    return "\n".join(lines + ["| " + " | ".join(table_row(row)) + " |" for row in rows])


def rank_table(rows: list[dict[str, Any]]) -> str:
    """The sampled rank estimate against exact counts, per case where it was checked."""
    head = (
        "| data | N | d | union pairs | estimated in A / B | median rel. error A / B | 90th pct A / B "
        "| mean abs. ΔD |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        check = (row.get("sparse") or {}).get("rank_check")
        if not check:
            continue
        lines.append(
            f"| {row['data']} | {row['n']} | {row['d']} | {check['union_pairs']} | "
            f"{check['estimated_fraction_A']:.2f} / {check['estimated_fraction_B']:.2f} | "
            f"{check['median_relative_error_A']:.3f} / {check['median_relative_error_B']:.3f} | "
            f"{check['p90_relative_error_A']:.3f} / {check['p90_relative_error_B']:.3f} | "
            f"{check['mean_abs_difference_error']:.4f} |"
        )
    return "\n".join(lines)


def progress_line(run: dict[str, Any]) -> str:
    head = f"{run['data']} N={run['n']} d={run['d']} {run['path']}:"
    if run["status"] != "ok":
        return f"{head} {run['status']} {run.get('reason', '')} {run.get('stderr_tail', '')[-500:]}"
    stages = ", ".join(f"{k} {v:.1f}" for k, v in run.get("timings_s", {}).items())
    return (
        f"{head} fit {run['time_s']:.1f} s ({stages}), peak {run['peak_rss_kb'] / KB_PER_GB:.2f} GB, "
        f"mBSR {run['mbsr']['mean']:.3f}, load before {run['load_before']}"
    )


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    bench = bench_rdx()
    info = bench.machine_info()
    import torch

    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    for line in bench.header_lines(info):
        print(line, flush=True)
    print(f"torch {torch.__version__}, device {args.device}, GPU: {info.get('gpu', 'none')}", flush=True)
    out = Path(args.out)
    settings = {
        key: portable_path(value) if key in PATH_SETTINGS else value for key, value in vars(args).items()
    }
    rows: list[dict[str, Any]] = []
    if args.resume and out.exists():
        rows = json.loads(out.read_text())["rows"]
    done = {(r["data"], r["n"], r["d"]) for r in rows}
    plan = []
    for data in args.data:
        dims = [64] if data == "mnist" else args.dims
        sizes = [n for n in args.sizes if data != "mnist" or n <= args.mnist_max_n]
        plan += [(data, n, d) for n in sizes for d in dims if (data, n, d) not in done]
    for data, n, d in plan:
        with tempfile.TemporaryDirectory(prefix="rdx_scale_") as tmp:
            workdir = Path(tmp)
            row: dict[str, Any] = {"data": data, "n": n, "d": d, "exact": None, "sparse": None}
            paths = ["exact"] if n <= args.max_exact_n else []
            paths += ["sparse"] if n >= args.min_sparse_n else []
            for path in paths:
                row[path] = run_one(path, data, n, d, args, workdir)
                print(progress_line(row[path]), flush=True)
            if all(row[p] and row[p]["status"] == "ok" for p in ("exact", "sparse")):
                row["agreement"] = agreement(workdir, row["exact"], row["sparse"])
                print(f"  agreement: {row['agreement']}", flush=True)
            rows.append(row)
        report = write_report(out, info, settings, rows)  # after every case: a killed run keeps its rows
    report = write_report(out, info, settings, rows)
    print()
    print(report["markdown"])
    print()
    print(report["rank_markdown"])
    print(f"written: {out}", flush=True)
    return report


PATH_SETTINGS = ("out", "mnist_cache", "checkpoints")


def portable_path(path: str) -> str:
    """A path as the report records it: relative to the repository when inside it, else only its file
    name (so a report names no folder of the machine it ran on)."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(REPO))
    except ValueError:
        return resolved.name


def write_report(
    out: Path, info: dict[str, Any], settings: dict[str, Any], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """Write the JSON report (machine, settings, rows and both markdown tables) and return it."""
    report = {"machine": info, "settings": settings, "rows": rows, "markdown": markdown_table(rows)}
    report["rank_markdown"] = rank_table(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", nargs="+", default=["planted", "mnist", "synthetic"], choices=sorted(DATA_SETTINGS)
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 50000, 100000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 768], help="generated data (MNIST: 64)")
    parser.add_argument("--max-exact-n", type=int, default=20000, help="run the exact path up to this N")
    parser.add_argument("--min-sparse-n", type=int, default=0, help="run the sparse path from this N")
    parser.add_argument("--mnist-max-n", type=int, default=70000)
    parser.add_argument("--rank-check-max-n", type=int, default=20000)
    parser.add_argument("--beta", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-neighbors", type=int, default=None, help="default: RDX's")
    parser.add_argument("--background-cells", type=int, default=None, help="default: by N (RDX's)")
    parser.add_argument("--rank-estimate", default="sampled", choices=["sampled", "exact"])
    parser.add_argument(
        "--eigensolver",
        default="lanczos",
        choices=["lanczos", "lobpcg", "block_lanczos"],
        help="sparse path's",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per worker; 0: torch's default")
    parser.add_argument("--mnist-cache", default="outputs/bench/mnist_m35_vs_all_features.npz")
    parser.add_argument("--checkpoints", default="outputs/checkpoints")
    parser.add_argument("--out", default="outputs/bench/rdx_scale.json")
    parser.add_argument("--resume", action="store_true", help="keep the cases already in --out")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run before it is killed")
    # internal: one run in this process
    parser.add_argument("--worker", choices=["exact", "sparse"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--d", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--rank-check", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        args.data = args.data[0] if isinstance(args.data, list) else args.data
        run_worker(args)
    else:
        run_benchmark(args)


if __name__ == "__main__":
    main()
