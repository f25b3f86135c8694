"""scripts/bench_report.py on a tiny report written from a synthetic record: the sizes it reports are
the files' sizes, and it measures first paint, load and ready without errors or network requests."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from rdx.sinks.report_files import ReportSettings, write_report
from tests.test_record import LABELS, record

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_report.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_report(folder: Path) -> dict:
    """report.html and report_files/ of a 10-image record with one grid figure; the record's entry."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(len(LABELS), 12, 12), dtype=np.uint8)
    features = {side: rng.normal(size=(len(LABELS), 4)).astype(np.float32) for side in ("A", "B")}
    (folder / "grids" / "rdx").mkdir(parents=True)
    (folder / "grids" / "rdx" / "A1.png").write_bytes(b"\x89PNG not really, only its size counts")
    run = record(figures={"grid/rdx/sideA_concept1": "grids/rdx/A1.png"})
    settings = ReportSettings(umap=False, neighbours=3)
    entry, _ = write_report(run, folder, images, LABELS, features, settings)
    return entry


def test_the_sizes_are_those_of_the_files_the_page_loads(tmp_path):
    entry = tiny_report(tmp_path)
    bench = load_script()
    files = bench.report_files(tmp_path)
    assert [p.name for p in files["page"]] == ["report.html"]
    assert [p.name for p in files["points"]] == ["points.js"]
    assert len(files["thumbnails"]) == len(entry["thumbs"]["pages"]) == 1
    assert [p.relative_to(tmp_path).as_posix() for p in files["grids"]] == ["grids/rdx/A1.png"]
    every_file = [p for p in tmp_path.rglob("*") if p.is_file()]
    measured = bench.sizes(files)
    assert measured["total"] == sum(p.stat().st_size for p in every_file) == entry["bytes"]


def test_a_load_reports_first_paint_and_ready_without_errors(browser, tmp_path):
    tiny_report(tmp_path)
    bench = load_script()
    shot = tmp_path / "map.png"
    result = bench.bench(tmp_path, repeats=2, screenshot=shot, browser=browser)
    assert len(result["loads"]) == 2
    for key in ("first_paint_ms", "load_ms", "ready_ms"):
        assert 0 < result[key]["median"] <= result[key]["max"], key
    assert not result["ready_polled"]  # the page marks when it is ready
    assert result["console_errors"] == [] and result["network_requests"] == []
    assert shot.stat().st_size > 0
    assert "first paint" in bench.table(result)
    json.dumps(result)  # what --json writes
