"""Finished comparisons: their run key, and finding them again so reruns and resumed sweeps skip them.

A run key is the config that can change the results plus the content digests of every input the run
reads (weights and feature files, the dataset's files, the compared images): a changed input reruns, the
same files in another folder are found again. Light on purpose (no torch, sklearn or matplotlib at
import): only the images' digest needs the dataset loader, and rdx-compare passes the loaded images on
to the comparison it runs.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from rdx.hashing import array_digest, file_digest, json_digest
from rdx.record import RESULTS_FILE, RecordError, RunResult, load_run
from rdx.sinks.files import write_json_atomic

if TYPE_CHECKING:
    from rdx.data.imageset import ImageSet

log = logging.getLogger(__name__)

# What cannot change a comparison's results, left out of its run key: where things live, logging, the
# resume and cache switches (the cache returns what would be computed), progress bars, loader workers.
_RUN_KEY_IGNORED_TOP = {"paths", "logger", "resume", "cache"}
_RUN_KEY_IGNORED_NAMES = {"progress", "enable_progress_bar", "root", "image_root", "download", "num_workers"}
# Config keys that name a file the comparison reads, wherever they occur (model weights and checkpoints,
# a training run's initial weights, precomputed features, a dataset's labels and image list). Such a file
# enters the run key by its content digest (:func:`input_digests`), its path not at all.
INPUT_FILE_KEYS = ("checkpoint", "weights_file", "file", "labels_file", "image_list")


def _keyed_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config minus the ignored top-level sections (plain containers)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    return {k: v for k, v in container.items() if k not in _RUN_KEY_IGNORED_TOP}


def _names_input_file(name: Any, value: Any) -> bool:
    """An :data:`INPUT_FILE_KEYS` entry holding a path (null: the config names no such file)."""
    return name in INPUT_FILE_KEYS and isinstance(value, str) and bool(value)


def _input_files(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(dotted config key, path) of every input file a config names."""
    if isinstance(node, dict):
        for name, value in node.items():
            key = f"{where}.{name}" if where else str(name)
            if _names_input_file(name, value):
                yield key, value
            elif name not in _RUN_KEY_IGNORED_NAMES:
                yield from _input_files(value, key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _input_files(value, f"{where}[{index}]")


def _content_digest(path: str) -> str | None:
    """sha256 of a file's content; None when it is missing: the stage that reads it then fails with its
    own message, naming the file and the override (this is no place to judge a missing file)."""
    file = Path(path).expanduser()
    return file_digest(file) if file.is_file() else None


def input_digests(cfg: DictConfig, image_set: ImageSet | None = None) -> dict[str, str | None]:
    """Content digests of everything a comparison reads, by where the config names it.

    ``{dotted config key: sha256}`` of every input file (:data:`INPUT_FILE_KEYS`; None for a missing
    one), plus ``dataset.images`` (:meth:`~rdx.data.imageset.ImageSet.digest`, the feature cache's digest
    of what the models read: file bytes or pixels) and ``dataset.labels`` of the compared images.
    ``image_set`` is those images when the caller has loaded them; else they are loaded here (which
    imports torch). Models trained on demand have no file here: their training config is in the key.
    """
    if image_set is None:
        from rdx.data.registry import load_image_set

        image_set = load_image_set(cfg.dataset)
    inputs = {key: _content_digest(path) for key, path in _input_files(_keyed_config(cfg))}
    inputs["dataset.images"] = image_set.digest()
    inputs["dataset.labels"] = array_digest(image_set.labels)
    return inputs


def run_key(cfg: DictConfig, inputs: Mapping[str, str | None]) -> str:
    """sha256 (hex) of what determines a comparison's results: the resolved config minus what cannot
    change them (see above) and minus the paths of its input files, with the content digests of those
    files and of its images (``inputs``, from :func:`input_digests`). So a changed input reruns, and the
    same files moved elsewhere still match."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: strip(v)
                for k, v in node.items()
                if k not in _RUN_KEY_IGNORED_NAMES and not _names_input_file(k, v)
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    return json_digest({"config": strip(_keyed_config(cfg)), "inputs": dict(inputs)}, int_keys=True)


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
    key: str, output_dir: Path, index_dir: Path, job: dict[str, Any] | None = None
) -> RunResult | None:
    """The record of a finished run with run key ``key`` (marked ``skipped``), or None when there is none.

    When it lies in another folder it is copied into ``output_dir/results.json`` with ``reused_from``
    (and this job's ``job`` info), so a sweep folder always holds every job's results; its members file
    and figures stay where they are (the record resolves them against ``reused_from``).
    """
    output_dir = Path(output_dir)
    record = find_completed_run(key, output_dir, Path(index_dir))
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
