"""rdx-table's report.html: fake runs with known numbers, the page read back with html.parser."""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest

from rdx.cli.table import main
from rdx.report.sweep_page import sweep_page
from rdx.report.table import write_report
from tests.test_table import NAN, method_entry, results, write_run

ODD_TASK = 'x<b>&"y'  # must be escaped everywhere it is shown


class PageParser(HTMLParser):
    """Every table (by its data-table, or "runs") as a header row and body rows of cells, each cell with
    its attributes, text and link; every attribute of every tag; the h1 text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, dict[str, list]] = {}
        self.attributes: list[tuple[str, str, str | None]] = []
        self.tags: list[str] = []
        self.h1 = ""
        self._table: dict[str, list] | None = None
        self._row: list[dict] | None = None
        self._cell: dict | None = None
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.tags.append(tag)
        self.attributes += [(tag, key, value) for key, value in attrs]
        if tag == "table":
            self._table = self.tables[named.get("data-table") or "runs"] = {"head": [], "rows": []}
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("th", "td") and self._row is not None:
            self._cell = {"tag": tag, "attrs": named, "text": "", "href": None}
        elif tag == "a" and self._cell is not None:
            self._cell["href"] = named.get("href")
        elif tag == "h1":
            self._in_h1 = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            if self._row and self._row[0]["tag"] == "th":
                self._table["head"] = self._row
            else:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell["text"] += data
        if self._in_h1:
            self.h1 += data


def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


@pytest.fixture
def sweep(tmp_path) -> Path:
    """Three comparisons: t_a's record names its report (pages/index.html); the odd-named one is an older
    run (report: None) with report.html in its dir; t_c has no report. In t_c, rdx (0.9) and kmeans
    (0.90002) tie on the shown digits of mBSR."""
    root = tmp_path / "sweep"
    write_run(
        root / "0",
        results(
            "t_a",
            [
                method_entry("rdx", (0.8, 0.6)),
                method_entry("kmeans", (0.7, NAN)),
                method_entry("pca", (0.9, 0.9)),
            ],
            report={"file": "pages/index.html"},
        ),
    )
    (root / "0" / "pages").mkdir()
    (root / "0" / "pages" / "index.html").write_text("<html></html>")
    write_run(
        root / "1",
        results(
            ODD_TASK,
            [method_entry("kmeans", (0.6, 0.4)), method_entry("rdx", (0.9, 0.7), eq=(0.0, 0.1))],
            report=None,
        ),
    )
    (root / "1" / "report.html").write_text("<html></html>")
    write_run(
        root / "2" / "nested",
        results("t_c", [method_entry("rdx", (1.0, 0.8)), method_entry("kmeans", (0.90004, 0.9))]),
    )
    return root


def best_methods(table: dict[str, list], column: str) -> set[str]:
    position = [cell["text"] for cell in table["head"]].index(column)
    return {row[0]["text"] for row in table["rows"] if "best" in row[position]["attrs"].get("class", "")}


def test_every_table_shows_the_csv_numbers_with_the_best_marked(sweep):
    report = write_report(sweep)
    out = sweep / "table"
    assert report["files"]["html"] == out / "report.html"
    page = parse(out / "report.html")
    assert set(report["tables"]) <= set(page.tables) and len(report["tables"]) >= 7
    for key in report["tables"]:
        csv = pd.read_csv(out / f"{key}.csv", index_col="method")
        higher = key != "eq_silb"
        table = page.tables[key]
        assert [cell["text"] for cell in table["head"]] == ["method", *csv.columns]
        assert [row[0]["text"] for row in table["rows"]] == list(csv.index)
        for position, column in enumerate(csv.columns, start=1):
            values = csv[column].tolist()
            cells = [row[position] for row in table["rows"]]
            shown = [float(f"{v:.3f}") for v in values if not math.isnan(v)]
            best = (max if higher else min)(shown) if shown else None
            for value, cell in zip(values, cells, strict=True):
                if math.isnan(value):
                    assert cell["text"] == "–" and cell["attrs"]["data-value"] == ""
                    assert "best" not in cell["attrs"].get("class", "")
                    continue
                assert cell["text"] == f"{value:.3f}", (key, column)
                assert float(cell["attrs"]["data-value"]) == pytest.approx(value, abs=1e-12)
                marked = "best" in cell["attrs"].get("class", "")
                assert marked == (float(cell["text"]) == best), (key, column, cell)


def test_best_cells_tie_on_shown_digits_and_lower_is_better_takes_the_minimum(sweep):
    write_report(sweep)
    page = parse(sweep / "table" / "report.html")
    mbsr = page.tables["mbsr_silb"]
    assert best_methods(mbsr, "t_a") == {"pca"}
    assert best_methods(mbsr, "t_c") == {"rdx", "kmeans"}  # 0.900 and 0.90002 both read 0.900
    assert best_methods(mbsr, ODD_TASK) == {"rdx"}
    assert best_methods(mbsr, "mean") == {"pca"}
    eq = page.tables["eq_silb"]  # tie rate: lower is better
    assert best_methods(eq, ODD_TASK) == {"rdx"}  # 0.05 against kmeans' 0.1
    assert best_methods(eq, "t_a") == {"rdx", "kmeans", "pca"}
    assert best_methods(eq, "mean") == {"rdx"}
    sortable = [cell for cell in mbsr["head"] if "sortable" in cell["attrs"].get("class", "")]
    assert [cell["attrs"]["data-key"] for cell in sortable] == ["method", "t_a", "t_c", ODD_TASK, "mean"]


@pytest.mark.parametrize("elsewhere", [False, True])
def test_comparisons_link_to_their_reports_relative_to_the_page(sweep, tmp_path, elsewhere):
    out = tmp_path / "other" / "tables" if elsewhere else sweep / "table"
    write_report(sweep, out)
    page = parse(out / "report.html")
    expected = {
        "t_a": sweep / "0" / "pages" / "index.html",  # the record's report field
        ODD_TASK: sweep / "1" / "report.html",  # an older run: report.html in its dir
        "t_c": None,
    }
    runs = {row[0]["text"].replace(" no report", ""): row[0] for row in page.tables["runs"]["rows"]}
    assert set(runs) == set(expected)
    for name, target in expected.items():
        cell = runs[name]
        if target is None:
            assert cell["href"] is None and cell["text"].endswith("no report")
            continue
        assert "no report" not in cell["text"]
        assert not cell["href"].startswith("/")
        assert (out / unquote(cell["href"])).resolve() == target.resolve() and target.is_file()
    for key, table in page.tables.items():
        if key == "runs":
            continue
        links = {cell["text"]: cell["href"] for cell in table["head"]}
        assert links == {"method": None, "mean": None} | {name: runs[name]["href"] for name in expected}


def test_text_is_escaped_and_nothing_comes_from_the_network(sweep):
    write_report(sweep)
    html = (sweep / "table" / "report.html").read_text(encoding="utf-8")
    assert ODD_TASK not in html and "x&lt;b&gt;&amp;&quot;y" in html
    page = parse(sweep / "table" / "report.html")
    assert "b" not in page.tags  # the task name's <b> stayed text
    assert ODD_TASK in [cell["text"] for cell in page.tables["mbsr_silb"]["head"]]
    assert page.h1.startswith("Benchmark: sweep") and "3 comparisons" in page.h1
    urls = [value for _, name, value in page.attributes if name in ("src", "href")]
    assert "bsr_boxplot.png" in urls and any(url.endswith("report.html") for url in urls)
    assert not [url for url in urls if re.match(r"\s*(https?:)?//", url or "")]
    assert "link" not in page.tags
    assert not [value for tag, name, value in page.attributes if tag == "script" and name == "src"]


def test_sweep_page_alone_escapes_method_names_and_marks_the_minimum():
    table = pd.DataFrame(
        {"c<1>": [0.2, 0.1], "mean": [0.2, 0.1]}, index=pd.Index(["<i>m&", "plain"], name="method")
    )
    runs = pd.DataFrame({"task_name": ["c<1>"], "path": ["0/results.json"]})
    html = sweep_page({"eq_silb": table}, runs, {"c<1>": None}, None, "Benchmark: <f>")
    assert "<i>m&" not in html and "&lt;i&gt;m&amp;" in html and "Benchmark: &lt;f&gt;" in html
    assert '<td data-key="c&lt;1&gt;" data-value="0.1" class="best">0.100</td>' in html
    assert "<img" not in html and "no report" in html


def test_cli_prints_the_report(sweep, capsys):
    main([str(sweep), "--wandb", "disabled"])
    assert f"report:   {sweep / 'table' / 'report.html'}" in capsys.readouterr().out
