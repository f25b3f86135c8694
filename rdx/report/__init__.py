"""Reports: benchmark tables (CSV, Markdown) and their figures over many runs (``rdx.report.table``), and
the arrays behind one run's explorable HTML report (``rdx.report.assets``, imported by its own name).

The table names below load on first use: ``rdx.report.table`` pulls in pandas and matplotlib, which
``rdx.report.assets`` must not (importing a submodule runs this file first).
"""

from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in __all__:
        from rdx.report import table

        return getattr(table, name)
    raise AttributeError(f"module 'rdx.report' has no attribute {name!r}")
