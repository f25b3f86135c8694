"""rdx's front door for one comparison: skip it when it finished before, else run its stages.

Light at import (no torch, sklearn or matplotlib). A comparison first checks every parameter, the logger
and the run dir (:func:`rdx.preflight.preflight`), then loads the images: its run key holds their digest.
It hands them, with the key, to the comparison it runs; a finished one costs those checks and that
loading and nothing more. The stages themselves are
in :mod:`rdx.pipeline`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rdx.record import RunResult
from rdx.runs import input_digests, resume_finished_run, run_key

__all__ = ["input_digests", "run_compare", "run_key"]


def run_compare(cfg: DictConfig, output_dir: str | Path, job: dict[str, Any] | None = None) -> RunResult:
    """Run one comparison into ``output_dir`` and return its run record.

    The run key (``run_key``: the resolved config minus paths, logger and progress settings, plus the
    content digests of the run's input files and images, ``input_digests``) is computed once. With
    ``resume`` on, a comparison whose finished results exist for the same run key is not run again: its
    record is returned (``skipped``; copied into ``output_dir`` with ``reused_from`` when it lies
    elsewhere). ``job`` (the launcher's view: job number, overrides, sweep dir) is kept in the record;
    the table tool names sweep columns by the overrides that differ.
    """
    from rdx.preflight import preflight  # the estimators' modules (torch, scikit-learn)

    checked = preflight(cfg, Path(output_dir))  # every parameter, the logger, the run dir: before any data
    from rdx.data.registry import load_image_set  # the images' digest is part of the run key

    started = time.perf_counter()
    image_set = load_image_set(cfg.dataset)
    inputs = input_digests(cfg, image_set)
    key = run_key(cfg, inputs)
    if cfg.resume:
        finished = resume_finished_run(key, Path(output_dir), Path(cfg.paths.runs_index), job)
        if finished is not None:
            return finished
    from rdx.pipeline import compare_models  # the heavy imports, only for a comparison that runs

    timings = {"data_s": time.perf_counter() - started}
    return compare_models(
        cfg,
        Path(output_dir),
        job,
        checked=checked,
        image_set=image_set,
        inputs=inputs,
        key=key,
        timings=timings,
    )
