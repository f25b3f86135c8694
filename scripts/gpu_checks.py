"""Every GPU figure of issue 19 in one run, under one hard time limit: for a lent GPU machine.

Steps, in this order (each in its own process with what is left of the time limit, so a step that runs
out of time is killed and reported and the rest still run; results are written after every step):

1. ``agreement``: ``scripts/device_agreement.py`` at N = 5,000, d = 768 (planted): the same fit on the
   CPU and on CUDA, both paths; ARI per direction, identical grids, mBSR, times.
2. ``exact``: the exact path on CUDA at N = 5,000 (3 fits), 20,000 (2) and 40,000 (1), d = 768,
   planted data: fit time (synchronised), stage times, GPU peak memory, and its floor on the GPU
   (``bench_rdx.distance_floor``: the two distance products and row sorts alone).
3. ``auto``: what ``RDX(path="auto", device="cuda")`` chooses at N = 20,000 ... 150,000 with the GPU's
   free memory now.
4. ``sparse_100k`` and 5. ``sparse_1m``: ``scripts/bench_scale.py`` with the sparse path on CUDA
   (planted data, d = 768, the torch eigensolver ``block_lanczos``) at N = 100,000 and 1,000,000.

Writes ``gpu_checks.json`` (every step's result, status and seconds) and ``gpu_checks.log`` (every
step's output) to ``--out`` (default ``$OUT``). Run from the repository root, e.g. on the device
machine::

    PYTHONUNBUFFERED=1 python3 scripts/gpu_checks.py --budget 540
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXACT_SIZES = {5000: 3, 20000: 2, 40000: 1}  # N: fits
AUTO_SIZES = [20000, 40000, 60000, 80000, 100000, 150000]
SPARSE_SIZES = {"sparse_100k": 100_000, "sparse_1m": 1_000_000}
# --smoke: the same steps at tiny sizes, for a check of this script on any machine (device "cpu" too)
SMOKE_EXACT_SIZES = {400: 2, 800: 1}
SMOKE_SPARSE_SIZES = {"sparse_100k": 1_500, "sparse_1m": 3_000}


def script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------------
# workers (run in their own processes)


def exact_worker(n: int, fits: int, out: Path, device: str) -> None:
    """The exact path on ``device`` at N (planted data, d = 768): fits, stages, GPU peak, floor."""
    import torch

    from rdx.methods import RDX

    on_gpu = device.startswith("cuda")
    synchronise = torch.cuda.synchronize if on_gpu else (lambda: None)

    bench_scale = script("bench_scale")
    settings = bench_scale.DATA_SETTINGS["planted"]
    X_A, X_B = bench_scale.load_data("planted", n, 768, 0, Path("unused"), Path("unused"))
    # warm up CUDA (context, cuBLAS handles, kernels) on a small fit, not timed
    warm_A, warm_B = bench_scale.load_data("planted", 500, 768, 1, Path("unused"), Path("unused"))
    RDX(**settings, path="exact", device=device).fit(warm_A, warm_B)
    synchronise()
    result: dict[str, Any] = {"n": n, "d": 768, "device": device, "fits": []}
    if on_gpu:
        result["gpu"] = torch.cuda.get_device_name()
    result["floor"] = script("bench_rdx").distance_floor(X_A, X_B, device=device)
    for _ in range(fits):
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        model = RDX(**settings, random_state=0, path="exact", device=device)
        started = time.perf_counter()
        model.fit(X_A, X_B)
        synchronise()
        fit = {"time_s": time.perf_counter() - started, "stages_s": dict(model.timings_), "path": model.path_}
        if on_gpu:
            fit["gpu_peak_gb"] = torch.cuda.max_memory_allocated() / 1024**3
        result["fits"].append(fit)
        out.write_text(json.dumps(result))  # after every fit: a step that runs out of time keeps its fits


def auto_worker(out: Path, device: str) -> None:
    import torch

    from rdx.methods import RDX

    result: dict[str, Any] = {"device": device}
    if device.startswith("cuda"):
        free, total = torch.cuda.mem_get_info()
        result.update(free_gb=free / 1024**3, total_gb=total / 1024**3)
    result["choices"] = {str(n): RDX(device=device).choose_path(n, 768) for n in AUTO_SIZES}
    out.write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------------
# driver


def run_step(
    name: str, cmd: list[str], deadline: float, log: Any, result_file: Path | None
) -> dict[str, Any]:
    """Run one step's command with what is left of the time; its output goes to the log."""
    left = deadline - time.monotonic()
    if left < 5:
        return {"status": "skipped", "reason": "no time left"}
    log.write(f"\n===== {name}: {' '.join(cmd)} (limit {left:.0f} s)\n")
    log.flush()
    started = time.monotonic()
    # its own process group, so a step out of time is killed with the workers it started
    # the repository first on the path, so the steps import this checkout's rdx without an install
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        status = "ok" if proc.wait(timeout=left) == 0 else f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        status = "timeout"
    step: dict[str, Any] = {"status": status, "seconds": time.monotonic() - started}
    if result_file is not None and result_file.exists():
        step["result"] = json.loads(result_file.read_text())
    log.write(f"===== {name}: {status} after {step['seconds']:.1f} s\n")
    log.flush()
    return step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "outputs/gpu_checks"))
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for all steps together")
    parser.add_argument("--steps", nargs="+", default=["agreement", "exact", "auto", *SPARSE_SIZES])
    parser.add_argument("--device", default="cuda", help="cuda (the checks); cpu only with --smoke")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a check of this script")
    # internal: one worker
    parser.add_argument("--worker", choices=["exact", "auto"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fits", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "exact":
        return exact_worker(args.n, args.fits, Path(args.result), args.device)
    if args.worker == "auto":
        return auto_worker(Path(args.result), args.device)
    exact_sizes = SMOKE_EXACT_SIZES if args.smoke else EXACT_SIZES
    sparse_sizes = SMOKE_SPARSE_SIZES if args.smoke else SPARSE_SIZES

    deadline = time.monotonic() + args.budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "budget_s": args.budget,
        "device": args.device,
        "smoke": args.smoke,
        "steps": {},
    }
    me = [sys.executable, str(Path(__file__).resolve()), "--device", args.device]
    with tempfile.TemporaryDirectory(prefix="gpu_checks_") as tmp, open(out / "gpu_checks.log", "w") as log:
        work = Path(tmp)
        plan: list[tuple[str, list[str], Path]] = []
        for step in args.steps:
            if step == "agreement":
                result = work / "agreement.json"
                size = "600" if args.smoke else "5000"
                cmd = [sys.executable, str(HERE / "device_agreement.py"), "--n", size, "--d", "768"]
                plan.append((step, [*cmd, "--out", str(result)], result))
            elif step == "exact":
                for n, fits in exact_sizes.items():
                    result = work / f"exact_{n}.json"
                    cmd = [
                        *me,
                        "--worker",
                        "exact",
                        "--n",
                        str(n),
                        "--fits",
                        str(fits),
                        "--result",
                        str(result),
                    ]
                    plan.append((f"exact_{n}", cmd, result))
            elif step == "auto":
                result = work / "auto.json"
                plan.append((step, [*me, "--worker", "auto", "--result", str(result)], result))
            elif step in sparse_sizes:
                result = work / f"{step}.json"
                cmd = [sys.executable, str(HERE / "bench_scale.py"), "--data", "planted", "--dims", "768"]
                cmd += ["--sizes", str(sparse_sizes[step]), "--max-exact-n", "0", "--rank-check-max-n", "0"]
                cmd += ["--device", args.device, "--eigensolver", "block_lanczos", "--out", str(result)]
                plan.append((step, cmd, result))
            else:
                raise SystemExit(f"unknown step {step!r}")
        for name, cmd, result in plan:
            report["steps"][name] = run_step(name, cmd, deadline, log, result)
            report["seconds_left"] = deadline - time.monotonic()
            (out / "gpu_checks.json").write_text(json.dumps(report, indent=2, default=str))
            print(f"{name}: {report['steps'][name]['status']}", flush=True)
    print(f"written: {out / 'gpu_checks.json'}", flush=True)


if __name__ == "__main__":
    main()
