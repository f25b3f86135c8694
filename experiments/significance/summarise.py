"""Write the significance calibration study's results.md from a finished sweep.

The two summary tables (share of concepts significant at q < alpha, median stability) are rdx-table's
own output, ``<sweep>/table/significant.csv`` and ``stability.csv``, shown as they are; the per-concept
rows of RDX come from each comparison's results.json (``rdx.record.load_run``).

Usage: python experiments/significance/summarise.py SWEEP_DIR --columns a,b,... [--elapsed S] [--output F]
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rdx.record import MethodResult, RunResult, load_run
from rdx.report.table import find_runs, load_runs, newest_per_task

MAIN_METHOD = "rdx"


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    """p and q values: 3 significant digits, the smallest possible p (1 / 1001) included."""
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.3g}"


def table_markdown(csv: Path, columns: Sequence[str], digits: int = 2) -> str:
    """One of rdx-table's CSVs (index = method, columns = comparisons + mean) as a markdown table: the
    comparisons only (a mean over seed twins and planted pairs means nothing), methods without any value
    left out."""
    table = pd.read_csv(csv, index_col="method")
    shown = [column for column in columns if column in table.columns]
    table = table[table[shown].notna().any(axis=1)]
    lines = ["| method | " + " | ".join(shown) + " |", "|---|" + "---:|" * len(shown)]
    for method, row in table[shown].iterrows():
        cells = [_number(float(row[column]), digits) for column in shown]
        name = f"**{method}**" if method == MAIN_METHOD else str(method)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def grid_labels_text(record: RunResult, labels: dict[str, int]) -> str:
    """Grid label counts as "3:9" or "9:8 7:1" (label names where the run has them)."""
    names = record.label_names or {}
    ordered = sorted(labels.items(), key=lambda item: (-item[1], item[0]))
    return " ".join(f"{names.get(int(label), label)}:{count}" for label, count in ordered)


def _rdx_meaning(record: RunResult, side: str) -> str:
    """The RDX half of a side's meaning ("RDX direction 01: what A groups together that B separates")."""
    return record.side_meaning.get(side, side).split(";")[0].removeprefix("RDX direction ")


def concept_rows(record: RunResult, method: MethodResult) -> list[str]:
    """One markdown row per shown concept: side, index, size, grid BSR (SILB), p, q, stability, labels."""
    grids = method.metrics.get("silb", {}).get("grids", {})
    alpha = float((method.significance or {}).get("alpha", float("nan")))
    rows = []
    for side in ("A", "B"):
        side_grids = grids.get(side, [])
        for position, concept in enumerate(method.side(side)):
            bsr = side_grids[position].get("bsr") if position < len(side_grids) else None
            significant = concept.q_value is not None and concept.q_value < alpha
            rows.append(
                f"| {side} | {concept.index} | {concept.size} | {_number(bsr)} | {_p(concept.p_value)} | "
                f"{_p(concept.q_value)}{' *' if significant else ''} | {_number(concept.stability, 2)} | "
                f"{grid_labels_text(record, concept.grid_label_counts)} |"
            )
    return rows


def write_results(sweep: Path, columns: Sequence[str], output: Path, elapsed: float | None = None) -> str:
    """Compose results.md from the sweep's rdx-table CSVs and its runs; returns the text written."""
    table_dir = sweep / "table"
    runs = {run.column: run for run in newest_per_task(load_runs(find_runs(sweep, exclude=table_dir)))}
    records = {column: load_run(runs[column].path) for column in columns if column in runs}
    some_rdx = next(record.methods[MAIN_METHOD] for record in records.values())
    settings = some_rdx.significance or {}
    lines = [
        "# Significance calibration: measured results",
        "",
        f"Written by `experiments/significance/summarise.py` from the sweep `{sweep}`: the two tables are",
        "rdx-table's `significant.csv` and `stability.csv`; the per-concept rows are from each run's",
        "results.json.",
        f"Test settings: R = {settings.get('n_null')} tight groups, alpha = {settings.get('alpha')} "
        f"(Benjamini-Hochberg over a method's concepts), stability over {settings.get('n_refits')} refits "
        f"on {settings.get('fraction')} subsamples (RDX only), seed {settings.get('seed')}.",
        "",
    ]
    if elapsed is not None:
        lines += [f"Whole sweep (training, comparisons, tables): {elapsed:.0f} s.", ""]
    lines += [
        f"## Share of concepts significant (q < {settings.get('alpha')})",
        "",
        table_markdown(table_dir / "significant.csv", columns),
        "",
        "## Median concept stability over refits (only RDX is refitted: `significance.stability=rdx`)",
        "",
        table_markdown(table_dir / "stability.csv", columns),
        "",
        "## Time per comparison",
        "",
        "From each run's results.json `timings`: the sum of its stages, training (models trained on",
        "demand), and significance (test + stability).",
        "",
        "| comparison | images | all stages (s) | training (s) | RDX signif. (s) | all signif. (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for column, record in records.items():
        timings = record.timings
        significance = sum(value for key, value in timings.items() if key.endswith("_significance_s"))
        cells = [
            str(record.dataset.get("n_images")),
            _number(sum(timings.values()), 0),
            _number(timings.get("training_s"), 0),
            _number(timings.get(f"{MAIN_METHOD}_significance_s"), 0),
            _number(significance, 0),
        ]
        lines.append(f"| {column} | " + " | ".join(cells) + " |")
    lines += ["", "## RDX, per concept", ""]
    for column, record in records.items():
        method = record.methods[MAIN_METHOD]
        lines += [
            f"### {column}",
            "",
            f"Side A = {_rdx_meaning(record, 'A')}; side B = {_rdx_meaning(record, 'B')}. "
            f"Significant {method.significance_text().split('significant ')[-1]}.",
            "",
            "| side | concept | size | grid BSR (SILB) | p | q (* < alpha) | stability | grid labels |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
            *concept_rows(record, method),
            "",
        ]
    text = "\n".join(lines)
    output.write_text(text, encoding="utf-8")
    return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the sweep folder (rdx-table has written <sweep>/table/)")
    parser.add_argument("--columns", required=True, help="comma-separated task names, in table order")
    parser.add_argument("--elapsed", type=float, default=None, help="the whole sweep's seconds")
    parser.add_argument("--output", type=Path, default=Path("experiments/significance/results.md"))
    args = parser.parse_args(argv)
    columns = [column.strip() for column in args.columns.split(",") if column.strip()]
    write_results(args.sweep, columns, args.output, args.elapsed)
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
