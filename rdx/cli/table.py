"""rdx-table: one benchmark table from a folder of comparison runs (every results.json below it).

Examples:
    rdx-table multirun/mnist_835/2026-11-25_19-57-08
    rdx-table outputs --columns m35_vs_mnist,m58_vs_mnist --wandb disabled
    rdx-table outputs --out-dir experiments/mnist_835/table --wandb online --project rdx

Writes into the output folder (default ``<folder>/table``): ``table.md`` (all tables), one CSV per table
(``mbsr_silb.csv``, ...), ``runs.csv`` (the runs used), ``bsr_boxplot.png`` and ``report.html`` (all of
them on one page, each comparison linked to its own report.html); and logs the same tables and figure to
a W&B run named "table".
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rdx.sinks.wandb_logger import add_folder_run_options

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdx-table",
        description="Benchmark tables (methods x comparisons) from every results.json below a folder.",
    )
    parser.add_argument("folder", type=Path, help="runs folder, e.g. a Hydra multirun sweep dir")
    parser.add_argument("--out-dir", type=Path, default=None, help="output folder (default: <folder>/table)")
    parser.add_argument(
        "--columns",
        default=None,
        help="comma-separated task names: the comparison columns, in this order (default: all, sorted)",
    )
    parser.add_argument("--digits", type=int, default=3, help="decimals shown in table.md (default: 3)")
    add_folder_run_options(parser)
    return parser


def _cell(value: Any) -> Any:
    """NaN becomes an empty W&B cell."""
    return None if isinstance(value, float) and math.isnan(value) else value


def log_report_to_wandb(
    report: dict[str, Any], folder: Path, out_dir: Path, mode: str, project: str, group: str | None
) -> Path | None:
    """Log each table, the runs list and the box plot to one W&B run named "table"; returns its dir."""

    from rdx.sinks.wandb_logger import folder_run

    tables = report["tables"]
    config = {
        "columns": [c for c in next(iter(tables.values())).columns if c != "mean"],
        "tables": list(tables),
    }
    with folder_run("table", folder, out_dir, mode, project, group, report.get("wandb_group"), config) as run:
        for key, table in tables.items():
            rows = [
                [label, *map(_cell, values)]
                for label, values in zip(table.index, table.values.tolist(), strict=True)
            ]
            run.log_table(key, ["method", *map(str, table.columns)], rows)
        runs = report["runs"]
        run.log_table("runs", list(runs.columns), [[_cell(v) for v in row] for row in runs.values.tolist()])
        run.log_images(report["figures"])
        run.update_summary(
            {f"mbsr_silb_mean/{label}": _cell(value) for label, value in tables["mbsr_silb"]["mean"].items()}
        )
        return run.run_dir


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s")

    from rdx.report.table import RunsError, write_report  # pandas/matplotlib after parsing

    columns = None if args.columns is None else [c.strip() for c in args.columns.split(",") if c.strip()]
    out_dir = args.folder / "table" if args.out_dir is None else args.out_dir
    try:
        report = write_report(args.folder, out_dir, columns=columns, digits=args.digits)
    except RunsError as error:
        parser.error(str(error))
    wandb_dir = log_report_to_wandb(report, args.folder, out_dir, args.wandb, args.project, args.group)

    table = report["tables"]["mbsr_silb"]
    log.info("mBSR (SILB), mean over %d comparisons:", table.shape[1] - 1)
    for label, value in table["mean"].items():
        log.info("  %-12s %.3f", label, value)
    print(f"tables:   {report['files']['markdown']}")
    print(f"csv:      {out_dir} ({', '.join(f'{key}.csv' for key in report['tables'])}, runs.csv)")
    print(f"box plot: {report['files']['boxplot']}")
    print(f"report:   {report['files']['html']}")
    if wandb_dir is not None:
        print(f"W&B run:  {wandb_dir}")


if __name__ == "__main__":
    main()
