"""The sweep report: ``<table folder>/report.html``, one page over every comparison of an rdx-table folder.

The page holds every benchmark table (best value per column shaded, rows sortable by clicking a column
header), the BSR box plot and the runs, each comparison linked to its own ``report.html``
(:mod:`rdx.report.page`). It is one file with its CSS and sorting script inline (``static/report.css``,
``static/sort.js``); its only other resources are the box plot beside it and the linked reports, all by
relative paths, so it works from ``file://`` and fetches nothing from the network.

:func:`find_report_links` finds each run's report (it reads the file system, writes nothing);
:func:`sweep_page` and the functions under it are pure. ``rdx.report.table.write_report`` writes the page.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from rdx.report.page import REPORT_FILE, escape_html, static_text
from rdx.report.table import MEAN_COLUMN, MISSING, TABLES, Run, best_mask, format_value

NO_REPORT = "no report"


def run_report(run: Run) -> Path | None:
    """The run's report.html: the file its record names (``report["file"]``, relative to the run dir),
    else, for runs recorded before that field, ``report.html`` in the run dir; None when that file does
    not exist."""
    run_dir = Path(run.path).parent
    report = run.record.report or {}
    path = run_dir / (report.get("file") or REPORT_FILE)
    return path if path.is_file() else None


def find_report_links(runs: Sequence[Run], page_dir: str | Path) -> dict[str, str | None]:
    """Each run's column name → the href of its report relative to ``page_dir`` (URL-quoted, ``/``
    separated), or None when the run has no report."""
    page_dir = Path(page_dir).resolve()
    links: dict[str, str | None] = {}
    for run in runs:
        report = run_report(run)
        relative = None if report is None else Path(os.path.relpath(report.resolve(), page_dir)).as_posix()
        links[run.column or run.record.task_name] = None if relative is None else quote(relative)
    return links


def _link(text: str, href: str | None) -> str:
    return escape_html(text) if href is None else f'<a href="{escape_html(href)}">{escape_html(text)}</a>'


def _data_value(value: float) -> str:
    """The full-precision number the sorting script reads ("" for a missing value)."""
    return "" if value is None or math.isnan(value) else repr(float(value))


def benchmark_table_html(
    key: str, table: pd.DataFrame, links: Mapping[str, str | None], digits: int = 3
) -> str:
    """One benchmark table as a ``<section>``: heading and direction from ``TABLES[key]``, a row per method,
    a column per comparison (its header linked to the comparison's report when it has one) and the mean;
    the best cell of each column has class ``best`` (``best_mask``: as table.md bolds it)."""
    spec = TABLES.get(key)
    higher = True if spec is None else spec.higher_is_better
    heading = key if spec is None else spec.title
    direction = "higher is better" if higher else "lower is better"
    columns = [str(column) for column in table.columns]
    head = ['<th class="sortable" data-key="method">method</th>']
    for column in columns:
        label = escape_html(column) if column == MEAN_COLUMN else _link(column, links.get(column))
        head.append(f'<th class="sortable" data-key="{escape_html(column)}">{label}</th>')
    best = {column: best_mask(table[column].tolist(), digits, higher) for column in table.columns}
    rows = []
    for position, method in enumerate(table.index):
        cells = [f'<td data-value="{escape_html(str(method))}">{escape_html(str(method))}</td>']
        for column in table.columns:
            value = table[column].iloc[position]
            shaded = ' class="best"' if best[column][position] else ""
            cells.append(
                f'<td data-key="{escape_html(str(column))}" data-value="{_data_value(value)}"{shaded}>'
                f"{escape_html(format_value(value, digits))}</td>"
            )
        rows.append(f'<tr data-method="{escape_html(str(method))}">{"".join(cells)}</tr>')
    return (
        f'<section id="table-{escape_html(key)}">\n<h2>{escape_html(heading)}</h2>\n'
        f'<p class="muted small"><code>{escape_html(key)}.csv</code>, {direction}.</p>\n'
        f'<table class="data benchmark" data-table="{escape_html(key)}">\n'
        f"<thead><tr>{''.join(head)}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>\n"
        "</section>"
    )


def runs_table_html(runs_frame: pd.DataFrame, links: Mapping[str, str | None], digits: int = 3) -> str:
    """The runs (runs.csv) as a ``<section>``: a row per comparison, its ``task_name`` (the column name)
    linked to its report, or followed by "no report"."""
    columns = [str(column) for column in runs_frame.columns]
    head = "".join(f"<th>{escape_html(column)}</th>" for column in columns)
    rows = []
    for record in runs_frame.to_dict("records"):
        cells = []
        for column in columns:
            value = record[column]
            if column == "task_name":
                href = links.get(str(value))
                note = "" if href is not None else f' <span class="muted small no-report">{NO_REPORT}</span>'
                cells.append(f'<td class="run-name">{_link(str(value), href)}{note}</td>')
            else:
                cells.append(f"<td>{escape_html(format_value(value, digits))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        '<section id="runs">\n<h2>Runs</h2>\n'
        '<p class="muted small">The comparisons in the tables (<code>runs.csv</code>); a name opens that '
        "comparison's own report.</p>\n"
        f'<table class="data runs">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n</section>"
    )


def trajectory_section_html(files: Mapping[str, str]) -> str:
    """The trajectory section: the scores against step (or depth), each step's top concepts, the CSV."""
    return (
        '<section id="trajectory">\n<h2>Trajectory</h2>\n'
        '<p class="muted small">Written by <code>rdx-trajectory</code>: one row per step of model A '
        "(or pair of layers) "
        f"({_link('trajectory.csv', files['csv'])}).</p>\n"
        f'<img class="boxplot" src="{escape_html(files["figure"])}" alt="scores against step">\n'
        f'<img class="boxplot" src="{escape_html(files["concepts"])}" alt="top concepts per step">\n'
        "</section>"
    )


def sweep_page(
    tables: Mapping[str, pd.DataFrame],
    runs_frame: pd.DataFrame,
    report_links: Mapping[str, str | None],
    boxplot_file: str | None,
    title: str,
    digits: int = 3,
    trajectory: Mapping[str, str] | None = None,
) -> str:
    """The sweep report's HTML.

    Args:
        tables: table key (``TABLES``) → DataFrame, index = methods, columns = comparisons + "mean"
            (``rdx.report.table.benchmark_tables``).
        runs_frame: the runs (``rdx.report.table.runs_table``), ``task_name`` = each comparison's column.
        report_links: column → href of the comparison's report relative to the page, or None
            (:func:`find_report_links`).
        boxplot_file: the BSR box plot's path relative to the page, or None for no plot.
        title: the page heading, e.g. "Benchmark: <folder name>".
        digits: decimals shown.
        trajectory: when the folder holds a trajectory summary (``rdx-trajectory FOLDER``), the paths of
            its files relative to the page: "figure", "concepts" (the top-concept strip) and "csv"; shown
            in a section of its own.
    """
    n_comparisons = len(runs_frame)
    heading = f"{title} · {n_comparisons} comparison{'s' if n_comparisons != 1 else ''}"
    nav = [f'<a href="#table-{escape_html(key)}">{escape_html(key)}</a>' for key in tables]
    nav += [] if boxplot_file is None else ['<a href="#boxplot">box plot</a>']
    nav += [] if trajectory is None else ['<a href="#trajectory">trajectory</a>']
    nav += ['<a href="#runs">runs</a>']
    boxplot = (
        ""
        if boxplot_file is None
        else '<section id="boxplot">\n<h2>BSR (SILB) per grid</h2>\n'
        f'<img class="boxplot" src="{escape_html(boxplot_file)}" alt="BSR (SILB) of every grid per method">'
        "\n"
        "</section>"
    )
    body = [
        '<section id="about">\n<p class="muted small">Rows are methods, columns are comparisons; '
        f"<code>{MEAN_COLUMN}</code> is over the comparisons with a value. The best value per column is "
        f"shaded; {MISSING} means no value (e.g. a side without concepts). Click a column header to sort "
        "the rows; a comparison's name opens its own report.</p>\n</section>",
        *(benchmark_table_html(key, table, report_links, digits) for key, table in tables.items()),
        boxplot,
        "" if trajectory is None else trajectory_section_html(trajectory),
        runs_table_html(runs_frame, report_links, digits),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape_html(heading)}</title>\n<style>\n{static_text('report.css')}</style>\n</head>\n"
        "<body>\n"
        f'<header class="top">\n<h1>{escape_html(heading)}</h1>\n<nav>{"".join(nav)}</nav>\n</header>\n'
        "<main>\n"
        + "\n".join(part for part in body if part)
        + f"\n</main>\n<script>\n{static_text('sort.js')}</script>\n</body>\n</html>\n"
    )
