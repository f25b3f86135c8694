"""scripts/gpu_checks.py: its steps run at tiny sizes on the CPU (--smoke), each result is recorded, and a
step out of time is killed and reported without stopping the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu_checks.py"


def run(tmp_path: Path, *args: str) -> dict:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--smoke", "--out", str(tmp_path), *args], check=True
    )
    return json.loads((tmp_path / "gpu_checks.json").read_text())


def test_smoke_run_records_every_step(tmp_path):
    report = run(tmp_path, "--steps", "exact", "auto", "--budget", "300")
    steps = report["steps"]
    assert set(steps) == {"exact_400", "exact_800", "auto"}
    exact = steps["exact_400"]
    assert exact["status"] == "ok" and len(exact["result"]["fits"]) == 2
    fit = exact["result"]["fits"][0]
    assert fit["path"] == "exact" and fit["time_s"] > 0 and set(fit["stages_s"]) >= {"difference", "grids_01"}
    assert exact["result"]["floor"]["floor_s"] > 0
    assert steps["auto"]["result"]["choices"]["20000"][0] == "exact"  # the CPU's rule
    assert (tmp_path / "gpu_checks.log").read_text().count("=====") == 6


def test_a_step_out_of_time_is_reported(tmp_path):
    report = run(tmp_path, "--steps", "sparse_1m", "auto", "--budget", "6")
    assert report["steps"]["sparse_1m"]["status"] == "timeout"
    assert report["steps"]["auto"]["status"] == "skipped"
