"""scripts/bench_scale.py and scripts/device_agreement.py: a tiny end-to-end run of the scale benchmark,
and the device check's refusal without CUDA."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_scale_runs_both_paths_and_scores_their_agreement(tmp_path):
    out = tmp_path / "scale.json"
    load("bench_scale").main(
        ["--data", "planted", "--sizes", "600", "--dims", "8", "--n-neighbors", "40", "--out", str(out)]
    )
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["exact"]["status"] == row["sparse"]["status"] == "ok"
    assert row["exact"]["info"]["path"] == "exact" and row["sparse"]["info"]["path"] == "sparse"
    agreement = row["agreement"]
    # Measured on this tiny run (seed 0): ARI 0.995 / 0.995, grid overlap 1.0, mBSR 0.676 on both paths;
    # seeds 1-3: ARI >= 0.916, overlap >= 0.978, |mBSR difference| <= 0.004, mBSR 0.68-0.71. Shuffled
    # labels score ARI ~0, grids that ignore the other model an mBSR ~0.5.
    for key in ("ari_10", "ari_01"):
        assert agreement[key] >= 0.9, key
    assert agreement["grid_overlap"] >= 0.9
    assert agreement["mbsr_difference"] == pytest.approx(
        row["sparse"]["mbsr"]["mean"] - row["exact"]["mbsr"]["mean"]
    )
    assert abs(agreement["mbsr_difference"]) <= 0.02
    for path in ("exact", "sparse"):
        assert row[path]["mbsr"]["mean"] >= 0.6, path
    assert row["sparse"]["rank_check"]["union_pairs"] > 0  # the rank check ran (N <= 20,000)
    assert "| planted | 600 | 8 |" in report["markdown"]
    assert report["settings"]["out"] == "scale.json"  # outside the repository: the file name only


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_device_agreement_refuses_without_cuda(tmp_path):
    with pytest.raises(SystemExit, match="no CUDA device"):
        load("device_agreement").main(["--n", "100", "--d", "4", "--out", str(tmp_path / "d.json")])
