"""Reports over many runs: benchmark tables (CSV, Markdown) and their figures from results.json files."""

from rdx.report.table import (
    TABLES,
    RunsError,
    benchmark_tables,
    find_runs,
    grid_bsr_values,
    load_runs,
    newest_per_task,
    runs_table,
    to_markdown,
    write_report,
)

__all__ = [
    "TABLES",
    "RunsError",
    "benchmark_tables",
    "find_runs",
    "grid_bsr_values",
    "load_runs",
    "newest_per_task",
    "runs_table",
    "to_markdown",
    "write_report",
]
