"""rdx-report: write a comparison run's report.html again, or for the first time.

Examples:
    rdx-report outputs/mnist_835/2026-11-28_03-45-31
    rdx-report multirun/mnist_835/2026-11-25_19-57-08/3 --neighbours 20 --no-umap

A run that has its report (``report`` in results.json and its files in ``report_files/``): report.html is
rendered again from the record and the files it has (nothing recomputed), e.g. after upgrading rdx.

A run without one (written before reports, or with ``report.enabled=false``), or any run with
``--rebuild``, ``--neighbours`` or ``--no-umap``: its config is composed again from the overrides in its
record, its images are loaded and checked to be the run's (the input digests in results.json), both
models' features come through the feature cache (usually a hit; a model is never trained), and the
report is written and recorded in results.json (only its ``report`` entry changes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rdx.record import MEMBERS_FILE, RESULTS_FILE, RecordError, RunResult, load_run, read_members

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from rdx.data.imageset import ImageSet

log = logging.getLogger(__name__)


class ReportError(RuntimeError):
    """A run whose report cannot be written; the message says why and what to do."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdx-report",
        description="Write a comparison run's report.html: rendered again from the record when the run has "
        "its report files, else built from the run's images and cached features.",
    )
    parser.add_argument("run_dir", type=Path, help="a comparison run dir (holds results.json)")
    parser.add_argument(
        "--rebuild", action="store_true", help="recompute the report files even when the run has them"
    )
    parser.add_argument(
        "--neighbours",
        type=int,
        default=None,
        help="nearest neighbours per image and model (default: the run's report.neighbours); rebuilds",
    )
    parser.add_argument("--no-umap", action="store_true", help="PCA maps only, no UMAP; rebuilds")
    return parser


def finished_run(run_dir: Path) -> RunResult:
    """The complete run record in ``run_dir`` with its members; ReportError saying why not."""
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: no such folder")
    if not (run_dir / RESULTS_FILE).is_file():
        if (run_dir / MEMBERS_FILE).is_file() or (run_dir / ".hydra").is_dir():
            raise ReportError(
                f"{run_dir}: an incomplete run: rdx-compare stopped before writing {RESULTS_FILE} (its last "
                "step); run the comparison again"
            )
        raise ReportError(f"{run_dir}: not a comparison run dir (no {RESULTS_FILE})")
    try:
        record = load_run(run_dir)
    except RecordError as error:
        raise ReportError(str(error)) from error
    if not record.complete:
        raise ReportError(f"{run_dir}: the run is incomplete ({RESULTS_FILE} is not marked complete)")
    if record.reused_from is not None:
        raise ReportError(
            f"{run_dir}: this record was copied from {record.reused_from}, which holds its files: "
            f"run rdx-report {record.reused_from}"
        )
    if record.members_file is None:
        raise ReportError(f"{run_dir}: the record has no members file (written before schema 2)")
    try:
        read_members(record)
    except RecordError as error:
        raise ReportError(str(error)) from error
    return record


def report_files(record: RunResult) -> list[Path]:
    """The files the record's report entry names (the points file and the thumbnail pages)."""
    from rdx.report.page import POINTS_FILE

    pages = record.report["thumbs"]["pages"] if record.report else []
    return [record.path(POINTS_FILE), *(record.path(page) for page in pages)]


def member_labels(record: RunResult) -> Any:
    """Each image's label from the members file (``label`` column), in image order."""
    import pandas as pd

    return pd.read_csv(record.path(record.members_file), usecols=["label"])["label"].to_numpy()


def render_again(record: RunResult) -> Path:
    """Write report.html from the record and its report entry (the page code of this rdx version)."""
    from rdx.report.page import render_page
    from rdx.sinks.files import atomic_file
    from rdx.sinks.report_files import page_data

    path = record.path(record.report["file"])
    data = page_data(record, record.report, member_labels(record))
    with atomic_file(path, "w") as handle:
        handle.write(render_page(data))
    return path


def run_config(record: RunResult) -> DictConfig:
    """The run's config, composed again from the overrides its record keeps (``job.overrides``)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from rdx.cli import compose_compare

    overrides = (record.job or {}).get("overrides")
    if overrides is None:
        raise ReportError(
            f"{record.run_dir}: the record keeps no command-line overrides (job.overrides), so its config "
            "cannot be composed again; only runs written by rdx-compare can be rebuilt"
        )
    try:
        return compose_compare(list(overrides))
    except (HydraException, OmegaConfBaseException) as error:
        raise ReportError(
            f"{record.run_dir}: its config does not compose from its overrides {list(overrides)} "
            f"with this rdx version: {error}"
        ) from error


def check_same_images(record: RunResult, cfg: DictConfig, image_set: ImageSet) -> None:
    """ReportError naming what differs when the config's inputs are not the run's (images moved or
    changed, another input file); a record without input digests is checked by its members file."""
    import numpy as np

    from rdx.runs import input_digests

    if record.inputs is None:
        labels = member_labels(record)
        if len(labels) != len(image_set) or not np.array_equal(labels, image_set.labels):
            raise ReportError(
                f"{record.run_dir}: the images its config loads now ({len(image_set)}) are not the run's "
                f"({len(labels)}, by the labels in its members file)"
            )
        log.warning("the record has no input digests: images checked by their labels only")
        return
    now = input_digests(cfg, image_set)
    differ = sorted(key for key in {*record.inputs, *now} if record.inputs.get(key) != now.get(key))
    if differ:
        details = ", ".join(
            f"{key} ({_digest_change(record.inputs.get(key), now.get(key))})" for key in differ
        )
        raise ReportError(
            f"{record.run_dir}: the inputs its config names now are not the run's: {details}. Were the "
            "images or files moved? Set the paths (e.g. RDX_ROOT, paths.*) as when the run was made"
        )


def _digest_change(recorded: str | None, now: str | None) -> str:
    if now is None:
        return "missing now"
    if recorded is None:
        return "missing in the run"
    return f"digest {recorded[:12]} in the run, {now[:12]} now"


def run_features(record: RunResult, cfg: DictConfig, image_set: ImageSet) -> dict[str, Any]:
    """Both models' features on the run's images, loaded as the pipeline loads them (through the feature
    cache); a model trained on demand whose checkpoints are missing is an error, never trained."""
    from rdx.models.loading import ModelSourceError, load_model
    from rdx.pipeline import extract_features, model_specs
    from rdx.training.on_demand import MissingTrainingRun, trained_models

    try:
        prepared = trained_models(model_specs(cfg), Path(cfg.paths.checkpoints))
        models = {
            side: load_model(spec, f"model_{side.lower()}", cfg.seed, trained)
            for side, (spec, trained) in prepared.items()
        }
    except (ModelSourceError, MissingTrainingRun) as error:
        raise ReportError(f"{record.run_dir}: cannot load the run's models: {error}") from error
    features, sources, _ = extract_features(models, image_set, cfg)
    for side, X in features.items():
        recorded = record.features.get(side, {}).get("dim")
        if recorded is not None and int(recorded) != X.shape[1]:
            raise ReportError(
                f"{record.run_dir}: model {side}'s features have {X.shape[1]} dimensions now, "
                f"{recorded} in the run"
            )
    log.info("features: A %s, B %s", sources["A"], sources["B"])
    return features


def rebuild(record: RunResult, changes: Mapping[str, Any]) -> Path:
    """Compute and write the run's report from its images and features and record it in results.json
    (the ``report`` entry; every other field as it was). ``changes``: report settings to override."""
    from omegaconf import OmegaConf

    from rdx.data.registry import load_image_set
    from rdx.devices import resolve_device
    from rdx.runs import run_key
    from rdx.sinks.files import write_json_atomic
    from rdx.sinks.report_files import report_settings, write_report

    cfg = run_config(record)
    try:
        settings = report_settings(
            OmegaConf.to_container(cfg.report, resolve=True) if "report" in cfg else None
        )
        settings = dataclasses.replace(settings, enabled=True, **changes)
    except ValueError as error:
        raise ReportError(f"{record.run_dir}: {error}") from error
    image_set = load_image_set(cfg.dataset)
    check_same_images(record, cfg, image_set)
    if record.inputs is not None and record.run_key is not None:
        if run_key(cfg, record.inputs) != record.run_key:
            log.warning(
                "the config composed now has another run key than the run's (rdx's defaults changed?)"
            )
    features = run_features(record, cfg, image_set)
    entry, _ = write_report(
        record,
        record.run_dir,
        image_set.images,
        image_set.labels,
        features,
        settings,
        device=str(resolve_device(cfg.device)),
        seed=cfg.seed,
    )
    # Only the report entry changes: the file as read, not the record written again, so nothing else
    # (older keys, number formatting) can drift.
    path = record.run_dir / RESULTS_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    data["report"] = entry
    write_json_atomic(path, data)
    record.report = entry
    return record.path(entry["file"])


def write_run_report(
    run_dir: Path, rebuild_files: bool = False, changes: Mapping[str, Any] | None = None
) -> Path:
    """report.html of the run in ``run_dir``: rendered again when the run has its report files and
    nothing asks for a rebuild, else rebuilt (:func:`rebuild`). Returns its path."""
    record = finished_run(Path(run_dir))
    changes = dict(changes or {})
    has_files = record.report is not None and all(path.is_file() for path in report_files(record))
    if has_files and not rebuild_files and not changes:
        return render_again(record)
    if record.report is not None and not has_files:
        log.info("the run's report files are incomplete: rebuilding them")
    return rebuild(record, changes)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] %(name)s: %(message)s")
    changes: dict[str, Any] = {}
    if args.neighbours is not None:
        changes["neighbours"] = args.neighbours
    if args.no_umap:
        changes["umap"] = False
    try:
        path = write_run_report(args.run_dir, args.rebuild, changes)
    except ReportError as error:
        parser.exit(1, f"rdx-report: error: {error}\n")
    print(f"report: {path}")


if __name__ == "__main__":
    main()
