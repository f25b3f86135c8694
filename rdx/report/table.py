"""Benchmark tables from a folder of comparison runs: every ``results.json`` below it → one table per metric.

Rows are methods (their labels), columns are comparisons (each run's ``task_name``) plus their mean.
The functions from ``find_runs`` to ``to_markdown`` are pure (they read files but write nothing);
``write_report`` is the edge that writes the CSV/Markdown files, the box plot and ``report.html`` (the
sweep report, built by rdx.report.sweep_page).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rdx.record import RESULTS_FILE, MethodResult, RecordError, RunResult, load_run
from rdx.sinks.files import atomic_file, save_figure
from rdx.viz.boxplot import bsr_boxplot

log = logging.getLogger(__name__)

MEAN_COLUMN = "mean"
MISSING = "–"  # how a NaN cell (e.g. a side without concepts) reads in Markdown


class RunsError(ValueError):
    """The runs folder cannot be read into tables: missing, empty, or holding a malformed results.json."""


@dataclass
class Run:
    """One comparison in a table: its record, where it was read from, and its column name."""

    path: Path
    modified: float
    record: RunResult
    column: str = ""


@dataclass(frozen=True)
class TableSpec:
    """One benchmark table: its Markdown heading, which way is better, and how a method's cell is read."""

    title: str
    higher_is_better: bool
    cell: Callable[[MethodResult], float]


def _score(distance: str, metric: str, side: str) -> Callable[[MethodResult], float]:
    return lambda method: method.score(distance, metric, side)


def _recovery_score(method: MethodResult) -> float:
    recovery = method.recovery
    return float("nan") if not recovery or recovery.get("score") is None else recovery["score"]


# Table key (also the CSV file name) → spec, in the order they appear in table.md.
TABLES: dict[str, TableSpec] = {
    "mbsr_silb": TableSpec("mBSR (SILB)", True, _score("silb", "bsr", "mean")),
    "mbsr_mned": TableSpec("mBSR (MNED)", True, _score("mned", "bsr", "mean")),
    "mbsr_lsed": TableSpec("mBSR (LSED)", True, _score("lsed", "bsr", "mean")),
    "tsd_silb": TableSpec("TSD (SILB), mean of both sides", True, _score("silb", "tsd", "mean")),
    "eq_silb": TableSpec("Tie rate EQ (SILB), mean of both sides", False, _score("silb", "eq", "mean")),
    "bsr_a_silb": TableSpec("BSR (SILB), side A", True, _score("silb", "bsr", "A")),
    "bsr_b_silb": TableSpec("BSR (SILB), side B", True, _score("silb", "bsr", "B")),
    "recovery": TableSpec("Planted-difference recovery score", True, _recovery_score),
    "significant": TableSpec(
        "Share of concepts significant (difference test, q < alpha)", True, MethodResult.significant_share
    ),
    "stability": TableSpec("Median concept stability over refits", True, MethodResult.median_stability),
    "agreement": TableSpec(
        "Agreement with the main method (mean matched member Jaccard, both sides)",
        True,
        MethodResult.agreement_with_main,
    ),
}
OPTIONAL_TABLES = (
    "recovery",
    "significant",
    "stability",
    "agreement",
)  # written only when some run reports them


def find_runs(folder: str | Path, exclude: str | Path | None = None) -> list[Path]:
    """Every ``results.json`` below ``folder`` (recursively, sorted), skipping those inside ``exclude``.

    Raises:
        RunsError: the folder does not exist, or holds no results.json outside ``exclude``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RunsError(f"runs folder {folder} does not exist or is not a folder")
    excluded = None if exclude is None else Path(exclude).resolve()
    paths = [
        path
        for path in sorted(folder.rglob(RESULTS_FILE))
        if path.is_file() and (excluded is None or excluded not in path.resolve().parents)
    ]
    if not paths:
        raise RunsError(f"no {RESULTS_FILE} found below {folder}")
    return paths


def load_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Read each results.json through the run-record loader, and name each run's column.

    Raises:
        RunsError: a file is not JSON or not a run record; the message names the file.
    """
    runs = []
    for path in map(Path, paths):
        try:
            record = load_run(path)
        except RecordError as error:
            raise RunsError(f"{error} (not a results.json written by rdx-compare?)") from error
        runs.append(Run(path, path.stat().st_mtime, record))
    assign_columns(runs)
    return runs


def _job_overrides(record: RunResult) -> dict[str, str]:
    """The job's command-line overrides (``job.overrides`` of the record, written by rdx-compare)."""
    overrides = (record.job or {}).get("overrides") or []
    return dict(o.split("=", 1) for o in overrides if "=" in o)


def assign_columns(runs: Sequence[Run]) -> None:
    """Name each run's column (``run.column``): its task_name, or, when several runs share a
    task_name but were started with different overrides (the jobs of a sweep), the task_name followed
    by the overrides that differ between them, e.g. ``mnist_835[beta=2.0 gamma=0.05]`` (keys shortened
    to their last part). Runs with the same task_name and overrides share a column (newest wins)."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.record.task_name, []).append(run)
    for task, group in groups.items():
        overrides = [_job_overrides(run.record) for run in group]
        keys = sorted({key for override in overrides for key in override})
        varying = [key for key in keys if len({override.get(key) for override in overrides}) > 1]
        for run, override in zip(group, overrides, strict=True):
            if not varying:
                run.column = task
                continue
            shown = " ".join(f"{key.rsplit('.', 1)[-1]}={override.get(key)}" for key in varying)
            run.column = f"{task}[{shown}]"


def newest_per_task(runs: Sequence[Run]) -> list[Run]:
    """Keep one run per column (``assign_columns``): the newest by results.json modification time (a
    warning names both).

    The kept runs stay in their input order.
    """
    kept: dict[str, Run] = {}
    for run in runs:
        task = run.column or run.record.task_name
        previous = kept.get(task)
        if previous is None:
            kept[task] = run
            continue
        newer, older = (run, previous) if run.modified >= previous.modified else (previous, run)
        log.warning("%r occurs twice: using the newer %s, not %s", task, newer.path, older.path)
        kept[task] = newer
    chosen = {id(run) for run in kept.values()}
    return [run for run in runs if id(run) in chosen]


def column_order(runs: Sequence[Run], columns: Sequence[str] | None = None) -> list[str]:
    """The comparison columns: ``columns`` as given (a subset is allowed), else all task names sorted.

    Raises:
        RunsError: a requested column is no run's task_name.
    """
    available = sorted({run.column for run in runs})
    if MEAN_COLUMN in available:
        raise RunsError(f"a run's task_name is {MEAN_COLUMN!r}, the name of the mean column; rename the task")
    if columns is None:
        return available
    unknown = [column for column in columns if column not in available]
    if unknown:
        raise RunsError(f"--columns names {unknown}, which no run has; available: {available}")
    if len(set(columns)) != len(columns):
        raise RunsError(f"--columns repeats a name: {list(columns)}")
    return list(columns)


def method_order(runs: Sequence[Run]) -> list[str]:
    """Method labels: the main method(s) first, then the others in order of appearance."""
    main = [run.record.main_method for run in runs]
    others = [label for run in runs for label in run.record.methods]
    return list(dict.fromkeys([*main, *others]))


def _runs_by_column(runs: Sequence[Run], columns: Sequence[str] | None) -> list[Run]:
    runs = newest_per_task(runs)
    by_task = {run.column: run for run in runs}
    return [by_task[column] for column in column_order(runs, columns)]


def benchmark_tables(runs: Sequence[Run], columns: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """One DataFrame per table in ``TABLES``: index = method labels, columns = comparisons + "mean".

    A method absent from a comparison, or a NaN score, is NaN; "mean" is over the comparisons with a
    value. The optional tables (recovery, significance, stability) are included only when some method of
    some run has a value there.
    Duplicate task names keep the newest run (see ``newest_per_task``).
    """
    ordered = _runs_by_column(runs, columns)
    labels = method_order(ordered)
    tables = {}
    for key, spec in TABLES.items():
        if key in OPTIONAL_TABLES and not any(
            not math.isnan(_as_float(spec.cell(method)))
            for run in ordered
            for method in run.record.methods.values()
        ):
            continue
        cells = {
            run.column: [
                _as_float(spec.cell(run.record.methods[label]))
                if label in run.record.methods
                else float("nan")
                for label in labels
            ]
            for run in ordered
        }
        table = pd.DataFrame(cells, index=pd.Index(labels, name="method"), dtype=float)
        table[MEAN_COLUMN] = table.mean(axis=1, skipna=True)
        tables[key] = table
    return tables


def _as_float(value: Any) -> float:
    return float("nan") if value is None else float(value)


def grid_bsr_values(
    runs: Sequence[Run], columns: Sequence[str] | None = None, distance: str = "silb"
) -> dict[str, np.ndarray]:
    """Per method, the BSR of every shown grid of both sides across all comparisons (NaN dropped)."""
    ordered = _runs_by_column(runs, columns)
    values: dict[str, list[float]] = {label: [] for label in method_order(ordered)}
    for run in ordered:
        for label, method in run.record.methods.items():
            values[label] += method.grid_scores(distance, "bsr")
    return {label: np.array([v for v in bsr if not math.isnan(v)]) for label, bsr in values.items()}


def runs_table(runs: Sequence[Run], root: str | Path | None = None) -> pd.DataFrame:
    """One row per run: path (relative to ``root`` when inside it), task, methods, images, model
    validation accuracies and, when some run has them, the representation similarity columns."""
    root = None if root is None else Path(root).resolve()
    rows = []
    for run in runs:
        record = run.record
        path = Path(run.path).resolve()
        models = record.models
        row: dict[str, Any] = {
            "task_name": run.column or record.task_name,
            "path": str(path.relative_to(root)) if root is not None and root in path.parents else str(path),
            "main_method": record.main_method,
            "methods": " ".join(record.methods),
            "dataset": record.dataset.get("name"),
            "n_images": record.dataset.get("n_images"),
        }
        for side in ("A", "B"):
            row[f"model_{side}"] = models.get(side, {}).get("name")
            row[f"val_acc_{side}"] = models.get(side, {}).get("val_acc")
        representations = record.representations
        if representations:
            probe = representations.get("probe") or {}
            row["cka"] = representations.get("cka")
            row["probe_acc_A"] = probe.get("A")
            row["probe_acc_B"] = probe.get("B")
            row["probe_agreement"] = probe.get("agreement")
        rows.append(row)
    return pd.DataFrame(rows)


def format_value(value: Any, digits: int) -> str:
    """A cell as shown in table.md and report.html: None or NaN reads "–", a float has ``digits``
    decimals, anything else is its str."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value)


def best_mask(values: Sequence[float], digits: int, higher_is_better: bool) -> list[bool]:
    """Which of a column's values are its best: the maximum (or minimum when lower is better) judged on
    the shown ``digits``, so every tied value is best; None and NaN never are."""
    present = [value is not None and not math.isnan(value) for value in values]
    shown = [round(value, digits) for value, ok in zip(values, present, strict=True) if ok]
    if not shown:
        return [False] * len(values)
    best = max(shown) if higher_is_better else min(shown)
    return [ok and round(value, digits) == best for value, ok in zip(values, present, strict=True)]


def _format_cell(value: Any, digits: int) -> str:
    return format_value(value, digits).replace("|", "\\|")


def dataframe_to_markdown(table: pd.DataFrame, digits: int = 3, higher_is_better: bool | None = None) -> str:
    """A pipe table of ``table`` with its index as the first column; NaN reads "–".

    With ``higher_is_better`` set, the best value of each numeric column is bold (all tied ones, judged
    on the shown digits); numbers are right-aligned.
    """
    header = [str(table.index.name or ""), *map(str, table.columns)]
    numeric = [pd.api.types.is_numeric_dtype(table[column]) for column in table.columns]
    body = [[_format_cell(label, digits) for label in table.index]]
    for column, is_numeric in zip(table.columns, numeric, strict=True):
        values = table[column].tolist()
        cells = [_format_cell(value, digits) for value in values]
        if is_numeric and higher_is_better is not None:
            best = best_mask(values, digits, higher_is_better)
            cells = [f"**{cell}**" if is_best else cell for cell, is_best in zip(cells, best, strict=True)]
        body.append(cells)
    rows = list(zip(*body, strict=True))
    lines = [
        "| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
        "|" + "|".join(["---", *("---:" if n else "---" for n in numeric)]) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def to_markdown(
    tables: dict[str, pd.DataFrame],
    runs: pd.DataFrame | None = None,
    title: str = "Benchmark",
    digits: int = 3,
) -> str:
    """All tables under one heading each (best per column bold), then the runs they come from."""
    parts = [
        f"# {title}",
        "Rows are methods, columns are comparisons (`task_name`); `mean` is over the comparisons with a "
        f"value. The best value per column is **bold**; {MISSING} means no value (e.g. a side without "
        "concepts).",
    ]
    for key, table in tables.items():
        spec = TABLES.get(key)
        higher = True if spec is None else spec.higher_is_better
        heading = key if spec is None else spec.title
        direction = "higher is better" if higher else "lower is better"
        parts += [f"## {heading}", f"`{key}.csv`, {direction}.", dataframe_to_markdown(table, digits, higher)]
    if runs is not None:
        parts += ["## Runs", dataframe_to_markdown(runs.set_index("task_name"), digits)]
    return "\n\n".join(parts) + "\n"


def _write_text(path: Path, text: str) -> Path:
    with atomic_file(path, "w") as handle:
        handle.write(text)
    return path


TRAJECTORY_FILES = {"figure": "trajectory.png", "concepts": "top_concepts.png", "csv": "trajectory.csv"}


def trajectory_files(folder: Path, page_dir: Path) -> dict[str, str] | None:
    """The trajectory summary of ``folder`` (``<folder>/trajectory``, written by ``rdx-trajectory``) as
    paths relative to ``page_dir``, or None when it is not there (or incomplete)."""
    paths = {key: folder / "trajectory" / name for key, name in TRAJECTORY_FILES.items()}
    if not all(path.is_file() for path in paths.values()):
        return None
    return {key: os.path.relpath(path, page_dir).replace(os.sep, "/") for key, path in paths.items()}


def write_report(
    folder: str | Path,
    out_dir: str | Path | None = None,
    columns: Sequence[str] | None = None,
    digits: int = 3,
) -> dict[str, Any]:
    """Read every results.json below ``folder`` and write the tables, runs.csv, the box plot and the page.

    Writes into ``out_dir`` (default ``<folder>/table``; results.json files inside it are skipped):
    ``<table key>.csv`` per table, ``table.md`` with all of them, ``runs.csv``, ``bsr_boxplot.png`` and
    ``report.html`` (all of them on one page, each comparison linked to its own report:
    rdx.report.sweep_page).

    Returns:
        {"tables": {key: DataFrame}, "runs": DataFrame, "files": {table key | "runs" | "markdown" |
        "boxplot" | "html": Path}, "figures": {"bsr_boxplot": the box plot, in memory}, "wandb_group": the W&B
        group all runs share, or None}
    """
    folder = Path(folder)
    out_dir = folder / "table" if out_dir is None else Path(out_dir)
    runs = newest_per_task(load_runs(find_runs(folder, exclude=out_dir)))
    used = set(column_order(runs, columns))
    runs = [run for run in runs if run.column in used]
    tables = benchmark_tables(runs, columns)
    runs_frame = runs_table(_runs_by_column(runs, columns), root=folder)

    files: dict[str, Path] = {}
    for key, table in tables.items():
        with atomic_file(out_dir / f"{key}.csv", "w") as handle:
            table.to_csv(handle, na_rep="")
        files[key] = out_dir / f"{key}.csv"
    with atomic_file(out_dir / "runs.csv", "w") as handle:
        runs_frame.to_csv(handle, index=False, na_rep="")
    files["runs"] = out_dir / "runs.csv"
    title = f"Benchmark: {folder.resolve().name}"
    files["markdown"] = _write_text(out_dir / "table.md", to_markdown(tables, runs_frame, title, digits))
    figure = bsr_boxplot(
        grid_bsr_values(runs, columns), title=f"BSR (SILB) per grid, {len(runs)} comparisons"
    )
    files["boxplot"] = save_figure(figure, out_dir / "bsr_boxplot.png")
    # imported here: the sweep page reuses rdx.report.page's helpers, and that module imports this one
    from rdx.report.sweep_page import find_report_links, sweep_page

    links = find_report_links(_runs_by_column(runs, columns), out_dir)
    page = sweep_page(
        tables, runs_frame, links, files["boxplot"].name, title, digits, trajectory_files(folder, out_dir)
    )
    files["html"] = _write_text(out_dir / "report.html", page)
    log.info("benchmark of %d runs written to %s", len(runs), out_dir)
    return {
        "tables": tables,
        "runs": runs_frame,
        "files": files,
        "figures": {"bsr_boxplot": figure},
        "wandb_group": shared_wandb_group(runs),
    }


def shared_wandb_group(runs: Sequence[Run]) -> str | None:
    """The W&B group every run was logged to (a sweep's), or None when they differ or have none."""
    groups = sorted({run.record.wandb_group for run in runs} - {None})
    return groups[0] if len(groups) == 1 else None
