"""rdx's front door for one comparison: skip it when it finished before, else run its stages.

Light on purpose (no torch, sklearn or matplotlib at import): a rerun sweep costs a second per finished
job. The stages themselves are in :mod:`rdx.pipeline`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rdx.record import RunResult
from rdx.runs import resume_finished_run, run_key

__all__ = ["run_compare", "run_key"]


def run_compare(cfg: DictConfig, output_dir: str | Path, job: dict[str, Any] | None = None) -> RunResult:
    """Run one comparison into ``output_dir`` and return its run record.

    With ``resume`` on, a comparison whose finished results exist for the same run key (``run_key``:
    the resolved config minus paths, logger and progress settings) is not run again: its record is
    returned (``skipped``; copied into ``output_dir`` with ``reused_from`` when it lies elsewhere).
    ``job`` (the launcher's view: job number, overrides, sweep dir) is kept in the record; the table
    tool names sweep columns by the overrides that differ.
    """
    if cfg.resume:
        finished = resume_finished_run(cfg, Path(output_dir), job)
        if finished is not None:
            return finished
    from rdx.pipeline import compare_models  # the heavy imports, only for a comparison that runs

    return compare_models(cfg, Path(output_dir), job)
