"""Finished comparisons: their run key, and finding them again so reruns and resumed sweeps skip them.

Light on purpose (no torch, sklearn or matplotlib): rdx-compare checks for a finished run before it
imports the heavy parts, so a rerun sweep costs seconds per job.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rdx.hashing import json_digest
from rdx.record import RESULTS_FILE, RecordError, RunResult, load_run
from rdx.sinks.files import write_json_atomic

log = logging.getLogger(__name__)

# What cannot change a comparison's results, left out of its run key: where things live, logging, the
# resume and cache switches (the cache returns what would be computed), progress bars, loader workers.
_RUN_KEY_IGNORED_TOP = {"paths", "logger", "resume", "cache"}
_RUN_KEY_IGNORED_NAMES = {"progress", "enable_progress_bar", "root", "download", "num_workers"}


def run_key(cfg: DictConfig) -> str:
    """sha256 (hex) of the resolved config minus what cannot change the results (see above)."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _RUN_KEY_IGNORED_NAMES}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    container = OmegaConf.to_container(cfg, resolve=True)
    return json_digest(
        {k: strip(v) for k, v in container.items() if k not in _RUN_KEY_IGNORED_TOP}, int_keys=True
    )


def _complete_record(path: Path, key: str) -> RunResult | None:
    """The record in ``path`` when it is a finished run with this run key, else None."""
    try:
        record = load_run(path)
    except RecordError:
        return None
    return record if record.run_key == key and record.complete else None


def find_completed_run(key: str, output_dir: Path, index_dir: Path) -> RunResult | None:
    """A finished run of the same config: in ``output_dir`` itself, or wherever the index says."""
    candidates = [output_dir / RESULTS_FILE]
    entry = index_dir / f"{key}.json"
    if entry.is_file():
        try:
            candidates.append(Path(json.loads(entry.read_text())["results"]))
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable run index entry %s", entry)
    for path in candidates:
        record = _complete_record(path, key)
        if record is not None:
            return record
    return None


def resume_finished_run(
    cfg: DictConfig, output_dir: Path, job: dict[str, Any] | None = None
) -> RunResult | None:
    """The record of a finished run of this config (marked ``skipped``), or None when there is none.

    When it lies in another folder it is copied into ``output_dir/results.json`` with ``reused_from``
    (and this job's ``job`` info), so a sweep folder always holds every job's results; its members file
    and figures stay where they are (the record resolves them against ``reused_from``).
    """
    output_dir = Path(output_dir)
    record = find_completed_run(run_key(cfg), output_dir, Path(cfg.paths.runs_index))
    if record is None:
        return None
    log.info("skipped: finished results of this config exist in %s (resume=false reruns)", record.run_dir)
    if record.run_dir.resolve() != output_dir.resolve():
        record.reused_from = record.reused_from or str(record.run_dir)
        if job is not None:
            record.job = job
        write_json_atomic(output_dir / RESULTS_FILE, record.to_json())
        record.run_dir = output_dir
    record.skipped = True
    return record
