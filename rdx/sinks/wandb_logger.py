"""The W&B run logger: the only module in rdx that imports ``wandb`` (lazily, so "disabled" costs nothing).

Modes:
    "offline":  a local run folder ``<dir>/wandb/offline-run-<time>-<id>/`` (images under
                ``files/media/images``, table json under ``files/media/table``), no network; upload
                later with ``wandb sync <run folder>``. Tables are also staged as artifacts, with their
                image cells, under ``<dir>/wandb/data/artifacts/staging`` (unless WANDB_DATA_DIR is set).
    "online":   streams to the W&B server; the API key comes only from the environment / wandb login.
    "disabled": every method is a no-op, nothing is imported and no file is written.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from rdx.record import RunResult
from rdx.sinks.files import FIGURE_DPI

logger = logging.getLogger(__name__)

MODES = ("offline", "online", "disabled")


def figure_to_pil(figure: Figure, dpi: int = FIGURE_DPI) -> Image.Image:
    """Render a matplotlib figure to an RGB PIL image (no pyplot state involved)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    with Image.open(buffer) as image:
        return image.convert("RGB")


def _is_image(value: Any) -> bool:
    if isinstance(value, (Image.Image, Figure)):
        return True
    return isinstance(value, np.ndarray) and value.ndim in (2, 3) and value.dtype == np.uint8


def _plain(value: Any) -> Any:
    """Numpy scalars become Python scalars so that W&B tables and summaries store plain values."""
    return value.item() if isinstance(value, np.generic) else value


class RunLogger:
    """One W&B run: metrics, images, tables and summary values, finished exactly once.

    Use as a context manager so the run is always finished, with a failing exit code when the block
    raises::

        with RunLogger(mode="offline", dir=run_dir, config=config) as run_logger:
            run_logger.log_metrics({"bsr": 0.8})

    Args:
        mode: "offline", "online" or "disabled".
        project, name, group, tags, config: passed to ``wandb.init``.
        dir: folder under which wandb creates its ``wandb/`` run folders (created if missing).
        settings: extra ``wandb.Settings`` fields (e.g. {"x_disable_stats": True}).
    """

    def __init__(
        self,
        mode: str = "offline",
        project: str = "rdx",
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        config: dict | None = None,
        dir: str | Path | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"RunLogger mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self._run: Any = None
        self._wandb: Any = None
        self._run_dir: Path | None = None
        self._finished = False
        self._staging_data_dir: str | None = None
        if mode == "disabled":
            return

        os.environ["WANDB_SILENT"] = "true"
        import wandb  # only here: "disabled" runs never import wandb

        if dir is not None:
            dir = Path(dir).resolve()
            dir.mkdir(parents=True, exist_ok=True)
            if mode == "offline" and "WANDB_DATA_DIR" not in os.environ:
                # wandb stages each logged table (and the images in it) as an artifact under
                # WANDB_DATA_DIR (default ~/.local/share/wandb) until `wandb sync`; keep those files
                # under ``dir`` with the offline run instead of in the home folder (.wandb refers to them).
                self._staging_data_dir = str(dir / "wandb" / "data")
                os.environ["WANDB_DATA_DIR"] = self._staging_data_dir
        self._wandb = wandb
        try:
            self._run = wandb.init(
                mode=mode,
                project=project,
                name=name,
                group=group,
                tags=tags,
                config=config,
                dir=None if dir is None else str(dir),
                # A multirun job may start several runs in one process: close any run left open first.
                reinit="finish_previous",
                settings=wandb.Settings(silent=True, **(settings or {})),
            )
        except BaseException:
            self._restore_data_dir()
            raise
        # run.dir is "<run folder>/files"; the run folder holds the .wandb log to sync later.
        self._run_dir = Path(self._run.dir).parent
        logger.info("W&B %s run %s in %s", mode, self._run.id, self._run_dir)

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"

    @property
    def run_dir(self) -> Path | None:
        """The local run folder (offline: ``<dir>/wandb/offline-run-...``), or None when disabled."""
        return self._run_dir

    def _active_run(self) -> Any:
        """The open wandb run, None when disabled; logging after ``finish`` is a bug and raises."""
        if self._finished:
            raise RuntimeError("RunLogger is finished; nothing more can be logged")
        return self._run

    def _to_image(self, value: Any, caption: str | None = None) -> Any:
        if isinstance(value, Figure):
            value = figure_to_pil(value)
        return self._wandb.Image(value, caption=caption)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Log scalar metrics (one history row)."""
        run = self._active_run()
        if run is not None:
            run.log({key: _plain(value) for key, value in metrics.items()}, step=step)

    def log_images(
        self,
        images: dict[str, np.ndarray | Image.Image | Figure],
        captions: dict[str, str] | None = None,
        step: int | None = None,
    ) -> None:
        """Log images by key: uint8 arrays (H, W) / (H, W, 3), PIL images or matplotlib figures."""
        run = self._active_run()
        if run is None:
            return
        captions = captions or {}
        run.log({key: self._to_image(value, captions.get(key)) for key, value in images.items()}, step=step)

    def log_table(
        self, name: str, columns: list[str], rows: list[list[Any]], step: int | None = None
    ) -> None:
        """Log a table; a cell holding a uint8 image array, PIL image or figure becomes a W&B image."""
        run = self._active_run()
        if run is None:
            return
        data = [[self._to_image(cell) if _is_image(cell) else _plain(cell) for cell in row] for row in rows]
        run.log({name: self._wandb.Table(columns=list(columns), data=data)}, step=step)

    def log_html(self, pages: Mapping[str, str], step: int | None = None) -> None:
        """Log HTML pages by key (W&B shows each as an HTML panel); each must be one self-contained file."""
        run = self._active_run()
        if run is not None and pages:
            run.log({key: self._wandb.Html(text, inject=False) for key, text in pages.items()}, step=step)

    def update_summary(self, values: dict[str, Any]) -> None:
        """Set run summary values (the numbers shown in W&B's runs table)."""
        run = self._active_run()
        if run is not None:
            run.summary.update({key: _plain(value) for key, value in values.items()})

    def finish(self, exit_code: int = 0) -> None:
        """Finish the run (safe to call more than once); a non-zero exit code marks it failed."""
        if self._finished:
            return
        self._finished = True
        try:
            if self._run is not None:
                self._run.finish(exit_code=exit_code)
        finally:
            self._restore_data_dir()

    def _restore_data_dir(self) -> None:
        """Undo this run's WANDB_DATA_DIR (a later run in the same process may log elsewhere)."""
        if self._staging_data_dir is not None and os.environ.get("WANDB_DATA_DIR") == self._staging_data_dir:
            del os.environ["WANDB_DATA_DIR"]

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish(exit_code=0 if exc_type is None else 1)


def add_folder_run_options(parser: Any) -> None:
    """The ``--wandb``, ``--project`` and ``--group`` options of a command that logs a :func:`folder_run`
    (an ``argparse.ArgumentParser``)."""
    parser.add_argument("--wandb", choices=MODES, default="offline", help="W&B mode (default: offline)")
    parser.add_argument("--project", default="rdx", help="W&B project (default: rdx)")
    parser.add_argument(
        "--group",
        default=None,
        help="W&B group (default: the group the runs were logged to, else the runs folder's name)",
    )


def folder_run(
    name: str,
    folder: Path,
    out_dir: Path,
    mode: str,
    project: str,
    group: str | None,
    runs_group: str | None,
    config: Mapping[str, Any],
) -> RunLogger:
    """The W&B run of a summary over a folder of runs (``rdx-table``: "table", ``rdx-trajectory``:
    "trajectory"): in ``group``, else the group the runs were logged to, else the folder's name."""
    return RunLogger(
        mode=mode,
        project=project,
        name=name,
        group=group or runs_group or Path(folder).resolve().name,
        tags=[name],
        config={"folder": str(Path(folder).resolve()), **config},
        dir=out_dir,
    )


def log_comparison(
    record: RunResult,
    figures: Mapping[str, Figure | np.ndarray],
    settings: Mapping[str, Any],
    config: dict[str, Any],
    output_dir: Path,
    pages: Mapping[str, str] | None = None,
) -> Path | None:
    """Log one comparison to W&B: its metrics and summary (from the record), every figure as it is in
    memory, the per-concept table with each concept's grid, and HTML ``pages`` (the single-file report)
    as HTML panels. Returns the W&B run dir (None when disabled).

    Args:
        record: the run record.
        figures: the figures of :func:`rdx.viz.comparison.comparison_figures`.
        settings: the logger config: ``mode``, ``project``, ``group``, ``tags``.
        config: the run's resolved config, stored with the W&B run.
    """
    from rdx.viz.comparison import grid_key

    rows = [
        [
            method.label,
            concept.side,
            concept.index,
            concept.size,
            concept.score,
            concept.p_value,
            concept.q_value,
            concept.stability,
            " ".join(f"{label}:{count}" for label, count in concept.grid_label_counts.items()),
            figures[grid_key(method.label, concept.side, concept.index)],
        ]
        for method, concept in record.concept_rows()
    ]
    with RunLogger(
        mode=settings["mode"],
        project=settings["project"],
        name=record.task_name,
        group=settings.get("group"),
        tags=list(settings.get("tags") or []),
        config=config,
        dir=output_dir,
    ) as run:
        run.log_metrics(record.wandb_metrics())
        run.log_images(dict(figures))
        columns = ["method", "side", "concept", "size", "score", "p", "q", "stability", "grid_labels", "grid"]
        run.log_table("concepts", columns, rows)
        if record.agreement is not None:
            pairs = [
                [side, pair["first"], pair["second"], pair["mean_jaccard"]]
                for side, side_pairs in record.agreement["pairs"].items()
                for pair in side_pairs
            ]
            run.log_table("agreement", ["side", "first", "second", "mean_jaccard"], pairs)
        run.log_html(dict(pages or {}))
        run.update_summary(record.wandb_summary())
        return run.run_dir
