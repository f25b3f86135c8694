"""The run directory of a comparison: figures, the members file, then results.json as the commit point.

Everything here renders from the run record (:mod:`rdx.record`): :func:`write_figures` writes the
in-memory figures, :func:`write_members` the members file (one row per image: identity, label, 2-D
coordinates, concept under every method and side), :func:`commit_run` results.json and the runs-index
entry that lets a rerun find it. Every file is written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from rdx.record import MEMBERS_FILE, RESULTS_FILE, SIDES, RunResult, member_column
from rdx.sinks.files import atomic_file, safe_component, save_figure, save_png, write_json_atomic

log = logging.getLogger(__name__)


def figure_file(key: str) -> str:
    """Where a figure named ``key`` (:func:`rdx.viz.comparison.comparison_figures`) is written, relative
    to the run dir; method labels become safe folder names (``method.label=../../x`` stays inside)."""
    if key.startswith("grid/"):
        _, label, name = key.split("/", 2)
        return f"grids/{safe_component(label)}/{safe_component(name)}.png"
    return f"{safe_component(key)}.png"


def write_figures(
    figures: Mapping[str, Figure | np.ndarray], output_dir: Path, files: Mapping[str, str]
) -> dict[str, str]:
    """Write each figure (a matplotlib figure, or a uint8 image array as PNG) to ``output_dir /
    files[key]``; returns ``files`` for the record (paths relative to the run dir)."""
    for key, figure in figures.items():
        path = Path(output_dir) / files[key]
        if isinstance(figure, Figure):
            save_figure(figure, path)
        else:
            save_png(figure, path)
    return dict(files)


def write_members(
    record: RunResult,
    output_dir: Path,
    labels: np.ndarray,
    source_indices: np.ndarray,
    coordinates: Mapping[str, np.ndarray],
    paths: Sequence[str] | None = None,
) -> str:
    """Write the members file of ``record`` (every method's ``members`` in memory) into ``output_dir``.

    Returns its name relative to the run dir, which the record keeps (``record.members_file``).
    """
    import pandas as pd

    columns: dict[str, np.ndarray | Sequence[str]] = {
        "image": np.arange(len(labels)),
        "source_index": np.asarray(source_indices, dtype=np.int64),
    }
    if paths is not None:
        columns["path"] = list(paths)
    columns["label"] = np.asarray(labels, dtype=np.int64)
    for side in SIDES:
        for axis in (0, 1):
            columns[f"pca_{side}_{axis + 1}"] = np.asarray(coordinates[side])[:, axis]
    for label, method in record.methods.items():
        if method.members is None:
            raise ValueError(f"method {label!r} has no members to write")
        for side in SIDES:
            columns[member_column(label, side)] = method.members[side]
    with atomic_file(Path(output_dir) / MEMBERS_FILE, "w") as handle:
        pd.DataFrame(columns).to_csv(handle, index=False, float_format="%.7g")
    return MEMBERS_FILE


def commit_run(record: RunResult, output_dir: Path, index_dir: Path) -> Path:
    """Mark the record complete and write results.json (the commit point of the run), then the runs-index
    entry (run key → results.json) that lets reruns and resumed sweeps find it."""
    record.complete = True
    record.run_dir = Path(output_dir)
    path = write_json_atomic(Path(output_dir) / RESULTS_FILE, record.to_json())
    try:
        write_json_atomic(Path(index_dir) / f"{record.run_key}.json", {"results": str(path.resolve())})
    except OSError as error:  # the results are written; only finding them from elsewhere is lost
        log.warning(
            "results written to %s, but the runs index %s is not writable (%s): a rerun elsewhere will not "
            "find them (one in the same folder still does)",
            path,
            index_dir,
            error,
        )
    return path
