"""The same RDX fit on the CPU and on CUDA: do the devices agree, and how long does each take?

For each path (exact, sparse) RDX is fitted on the same data with ``device="cpu"`` and
``device="cuda"``; the report gives the fit times, the adjusted Rand index of the two devices' labels
per direction, the share of concept grids that are identical, and each device's mBSR (SILB). Distances
are float32 on both devices, so exactly tied neighbour ranks can order differently and the labels need
not be identical: the check is that they agree within tolerance.

Usage (from the repository root, on a machine with a GPU)::

    .venv/bin/python scripts/device_agreement.py --n 5000 --d 768 --out outputs/bench/device_agreement.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def bench_scale() -> Any:
    spec = importlib.util.spec_from_file_location("bench_scale", HERE / "bench_scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="planted", choices=["planted", "synthetic"])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--d", type=int, default=768)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--paths", nargs="+", default=["exact", "sparse"])
    parser.add_argument("--out", default="outputs/bench/device_agreement.json")
    args = parser.parse_args(argv)

    import torch
    from sklearn.metrics import adjusted_rand_score

    from rdx.methods import RDX
    from rdx.metrics.bsr import binary_success_rate

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check compares the CPU with CUDA")
    scale = bench_scale()
    X_A, X_B = scale.load_data(args.data, args.n, args.d, args.seed, Path("unused"), Path("unused"))
    settings = scale.DATA_SETTINGS[args.data]
    report: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "data": args.data,
        "n": args.n,
        "d": args.d,
        "paths": {},
    }
    for path in args.paths:
        fits = {}
        for device in ("cpu", "cuda"):
            model = RDX(**settings, random_state=args.seed, path=path, device=device)
            started = time.perf_counter()
            model.fit(X_A, X_B)
            if device == "cuda":
                torch.cuda.synchronize()
            fits[device] = (model, time.perf_counter() - started)
        (cpu, cpu_time), (cuda, cuda_time) = fits["cpu"], fits["cuda"]
        grids = [
            (tuple(a.grid), tuple(b.grid))
            for side in ("A", "B")
            for a, b in zip(cpu.explanation_.concepts[side], cuda.explanation_.concepts[side], strict=True)
        ]
        result = {
            "time_cpu_s": cpu_time,
            "time_cuda_s": cuda_time,
            "timings_cuda_s": cuda.timings_,
            "ari": {d: float(adjusted_rand_score(cpu.labels_[d], cuda.labels_[d])) for d in ("10", "01")},
            "identical_grids": float(np.mean([a == b for a, b in grids])),
            "mbsr_cpu": binary_success_rate(cpu.explanation_, X_A, X_B)["mean"],
            "mbsr_cuda": binary_success_rate(cuda.explanation_, X_A, X_B)["mean"],
        }
        report["paths"][path] = result
        print(path, json.dumps(result), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
