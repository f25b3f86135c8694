"""The comparison report without a browser: its data from the record, the written files, the single-file
copy for W&B, its settings and the W&B HTML panel."""

from __future__ import annotations

import json
import re
import sys
import time

import numpy as np
import pytest

from rdx.report.page import points_data, render_page
from rdx.sinks.report_files import ReportSettings, page_data, report_settings, single_file_page, write_report
from rdx.sinks.run_dir import figure_file, write_figures
from rdx.sinks.wandb_logger import RunLogger
from rdx.viz.comparison import grid_key
from tests.test_record import LABELS, record


def images(n: int = len(LABELS)) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def features() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"A": rng.normal(size=(len(LABELS), 5)), "B": rng.normal(size=(len(LABELS), 7))}


@pytest.fixture
def written(tmp_path):
    """A record with grid figures on disk and its report written (PCA maps only, 3 neighbours)."""
    run = record()
    grids = {
        grid_key(label, c.side, c.index): np.full((12, 12), 200, dtype=np.uint8)
        for label, method in run.methods.items()
        for c in method.concepts
    }
    run.figures = write_figures(grids, tmp_path, {key: figure_file(key) for key in grids})
    settings = ReportSettings(neighbours=3, umap=False)
    entry, page = write_report(run, tmp_path, images(), LABELS, features(), settings, single_file=True)
    return run, entry, page, tmp_path


def inline_data(html: str, name: str) -> dict:
    match = re.search(rf"window\.{name} = (.*?);\n", html, re.S)
    assert match, name
    return json.loads(match.group(1).replace("<\\/", "</").replace("<\\!--", "<!--"))


def test_the_page_holds_the_records_scores_and_concepts(written):
    run, entry, _, out = written
    data = inline_data((out / "report.html").read_text(), "RDX_REPORT")
    assert [m["label"] for m in data["methods"]] == list(run.methods)
    rdx = data["methods"][0]
    assert rdx["table"]["mbsr_silb"] == pytest.approx(run.main.mbsr)
    assert [(c["side"], c["index"], c["size"], c["grid"]) for c in rdx["concepts"]] == [
        (c.side, c.index, c.size, c.grid) for c in run.main.concepts
    ]
    # each concept's grid figure, relative to the page, exists
    for concept in rdx["concepts"]:
        assert (out / concept["grid_file"]).is_file()
    assert data["n"] == len(LABELS) and data["neighbours_k"] == 3 and data["maps"] == ["pca"]
    assert data["label_names"]["3"] == "three" and set(data["label_colours"]) == {"3", "5", "8"}
    assert [c["key"] for c in data["score_columns"]][-1] == "fit_s"
    assert "recovery" not in [c["key"] for c in data["score_columns"]]  # no planted difference declared


def test_the_points_file_holds_members_maps_and_neighbours(written):
    run, entry, _, out = written
    points = inline_data((out / "report_files" / "points.js").read_text(), "RDX_POINTS")
    assert points["labels"] == LABELS.tolist()
    assert points["members"]["rdx/A"] == run.main.members["A"].tolist()
    for side in ("A", "B"):
        xy = np.array(points["embeddings"]["pca"][side]).reshape(-1, 2)
        assert xy.shape == (len(LABELS), 2) and xy.min() >= 0 and xy.max() <= 1
        index = np.array(points["neighbours"][side]["index"]).reshape(-1, 3)
        X = features()[side]
        distances = np.linalg.norm(X[:, None] - X[None], axis=-1)
        np.fill_diagonal(distances, np.inf)
        assert (index == np.argsort(distances, axis=1, kind="stable")[:, :3]).all()
    assert entry["bytes"] == sum(
        (out / name).stat().st_size
        for name in {
            "report.html",
            "report_files/points.js",
            *entry["thumbs"]["pages"],
            *(run.figures[key] for key in run.figures),
        }
    )


def test_the_single_file_copy_needs_no_other_file(written):
    run, entry, page, out = written
    assert page is not None
    assert "report_files/" not in page and "grids/" not in page
    data = inline_data(page, "RDX_REPORT")
    assert all(p.startswith("data:image/png;base64,") for p in data["thumbs"]["pages"])
    assert data["points_file"] is None and "window.RDX_POINTS = " in page
    # above the limit it is left out
    points = inline_data(page, "RDX_POINTS")
    assert single_file_page(page_data(run, entry, LABELS), points, out, max_mb=0.001) is None


def test_inserted_text_cannot_break_out_of_the_page(written):
    run, entry, _, out = written
    run.models["A"]["name"] = "</script><script>alert(1)</script>__JS__"
    html = render_page(page_data(run, entry, LABELS))
    assert html.count("</script>") == 2  # only the data's and the code's own ends
    assert "<title>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;__JS__ vs b" in html
    assert inline_data(html, "RDX_REPORT")["models"]["A"]["name"] == run.models["A"]["name"]


def test_points_need_every_methods_members():
    run = record()
    run.methods["kmeans"].members = None
    with pytest.raises(ValueError, match="kmeans"):
        points_data(run, LABELS, {}, {})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"neighbours": 0}, "report.neighbours"),
        ({"thumbnail_px": 4}, "report.thumbnail_px"),
        ({"umap": "sometimes"}, "report.umap"),
        ({"member_page": 0}, "report.member_page"),
        ({"neighbors": 5}, "unknown setting"),
    ],
)
def test_bad_report_settings_fail_clearly(config, message):
    with pytest.raises(ValueError, match=message):
        report_settings(config)


def test_a_bad_report_setting_fails_before_any_work(tmp_path):
    from rdx.preflight import preflight
    from tests.conftest import compose_config

    cfg = compose_config("compare", ["experiment=mnist_835", "report.neighbours=0", "logger=disabled"])
    started = time.perf_counter()
    with pytest.raises(ValueError, match="report.neighbours must be at least 1"):
        preflight(cfg, tmp_path)
    assert time.perf_counter() - started < 5


def test_the_report_is_logged_as_an_html_panel(tmp_path, monkeypatch):
    for variable in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_DIR", "WANDB_MODE", "WANDB_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    page = "<!DOCTYPE html><html><body><p>rdx report 42</p></body></html>"
    with RunLogger(mode="offline", dir=tmp_path, name="test") as run_logger:
        run_logger.log_html({"report": page})
        run_dir = run_logger.run_dir
    logged = list((run_dir / "files" / "media" / "html").glob("report_*.html"))
    assert len(logged) == 1 and "rdx report 42" in logged[0].read_text()
    print(f"logged {logged[0].name}", file=sys.stderr)
