"""One comparison as a sequence of stages: images → models (trained if missing) → features → methods →
scores → the run record → the run dir and W&B.

This is the edge of the package that reads the composed config; each stage calls the package that owns
it (``rdx.data`` for images, ``rdx.training`` and ``rdx.models`` for models and features, ``rdx.methods``
and ``rdx.metrics`` for the explanations and their scores, ``rdx.viz`` and ``rdx.sinks`` for what is
shown and written). :func:`compare_models` reads top to bottom as the list of stages.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from rdx.cache import FeatureCache
from rdx.data.imageset import ImageSet
from rdx.data.registry import load_image_set
from rdx.devices import resolve_device
from rdx.methods.checks import NotApplicableError
from rdx.metrics import explanation_scores
from rdx.metrics.planted import check_pairs, pair_separability, recovery_scores
from rdx.metrics.representations import representation_scores
from rdx.models.extraction import model_features
from rdx.models.loading import LoadedModel, check_model_source, load_model
from rdx.preflight import Preflight, preflight
from rdx.record import DISTANCES, SIDES, MethodResult, RunResult
from rdx.runs import input_digests, run_key
from rdx.sinks.report_files import write_report
from rdx.sinks.run_dir import commit_run, figure_file, write_figures, write_members
from rdx.sinks.wandb_logger import log_comparison
from rdx.training.on_demand import train_missing_models
from rdx.viz.comparison import comparison_figures
from rdx.viz.scatter import pca_embedding

log = logging.getLogger(__name__)


@dataclass
class StageClock:
    """Seconds per stage, in the order the stages ran (``results.json``'s ``timings``)."""

    timings: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[f"{stage}_s"] = time.perf_counter() - started


def compare_models(
    cfg: DictConfig,
    output_dir: Path,
    job: dict[str, Any] | None = None,
    *,
    checked: Preflight | None = None,
    image_set: ImageSet | None = None,
    inputs: dict[str, str | None] | None = None,
    key: str | None = None,
    timings: dict[str, float] | None = None,
) -> RunResult:
    """Run one comparison and write its record, members file, figures and W&B run into ``output_dir``.

    Checks come first (:func:`preflight`, or ``checked`` from the caller); results.json is written last,
    atomically. Images, input digests, run key and ``timings`` the caller has are used, not redone.
    """
    clock = StageClock(dict(timings or {}))
    checked = checked or preflight(cfg, Path(output_dir))
    if image_set is None:
        with clock("data"):
            image_set = load_image_set(cfg.dataset)
    specs = model_specs(cfg)
    with clock("training"):
        prepared = train_missing_models(specs, Path(cfg.paths.checkpoints))
    with clock("models"):
        models = {
            side: load_model(spec, f"model_{side.lower()}", cfg.seed, trained)
            for side, (spec, trained) in prepared.items()
        }
    with clock("features"):
        features, sources, cache = extract_features(models, image_set, cfg)
    methods, skipped = fit_methods(checked, features, image_set, cfg, clock)
    with clock("representations"):
        representations, planted = score_representations(features, image_set, cfg)
    record = build_record(
        cfg, job, models, image_set, features, sources, cache, methods, inputs=inputs, key=key
    )
    record.representations, record.planted, record.methods_skipped = representations, planted, skipped
    write_run(record, cfg, checked, Path(output_dir), image_set, features, clock)
    return record


def model_specs(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """Each side's model config as a plain dict, its weights or feature file checked to exist (both
    before either model is built, so a missing file of model B is reported before A loads)."""
    specs = {side: OmegaConf.to_container(cfg[f"model_{side.lower()}"], resolve=True) for side in SIDES}
    for side, spec in specs.items():
        check_model_source(spec, f"model_{side.lower()}")
    return specs


def extract_features(
    models: dict[str, LoadedModel], image_set: ImageSet, cfg: DictConfig
) -> tuple[dict[str, np.ndarray], dict[str, str], FeatureCache]:
    """Both models' features on the images through the feature cache, where each came from ("hit",
    "miss", "off" or "file"), and the cache."""
    cache = FeatureCache(cfg.cache.dir, enabled=cfg.cache.enabled)
    device = resolve_device(cfg.device)
    settings = OmegaConf.to_container(cfg.features, resolve=True)
    features, sources = {}, {}
    for side, model in models.items():
        features[side], sources[side] = model_features(model, image_set, cache, settings, device, cfg.seed)
    return features, sources, cache


def fit_methods(
    checked: Preflight,
    features: dict[str, np.ndarray],
    image_set: ImageSet,
    cfg: DictConfig,
    clock: StageClock,
) -> tuple[dict[str, MethodResult], dict[str, str]]:
    """Fit every method on the two representations and score its explanation (BSR/TSD/EQ for each
    distance, the recovery of the planted difference when the run has one, and each concept's
    significance and stability unless ``significance=off``).

    A baseline the representations do not allow (too narrow for its k or dictionary, negative values
    for NMF: :class:`NotApplicableError`) is skipped with a warning; the main method is never skipped.

    Returns:
        (label → result of every fitted method, label → why each skipped baseline was skipped)
    """
    planted = planted_spec(cfg.get("planted"))
    results: dict[str, MethodResult] = {}
    skipped: dict[str, str] = {}
    nulls: dict[tuple[str, int], np.ndarray] = {}  # the difference test's nulls, shared by all methods
    for label, (name, estimator) in checked.estimators.items():
        try:
            with clock(label):
                explanation = estimator.fit(features["A"], features["B"], y=image_set.labels).explanation_
        except NotApplicableError as error:
            if label == cfg.method.label:
                raise
            skipped[label] = str(error)
            log.warning("%s skipped: %s", label, error)
            continue
        started = time.perf_counter()
        scores, recovery = score_explanation(label, explanation, features, image_set.labels, cfg, planted)
        results[label] = MethodResult.from_explanation(
            label,
            name,
            explanation,
            image_set.labels,
            metrics=scores,
            fit_s=clock.timings[f"{label}_s"],
            metrics_s=time.perf_counter() - started,
            recovery=recovery,
        )
        log.info("%s: fitted in %.2f s, mBSR (SILB) %.3f", label, results[label].fit_s, results[label].mbsr)
        if checked.significance.enabled:
            with clock(f"{label}_significance"):
                method = results[label]
                inputs = (method, estimator, explanation, features, image_set, checked, nulls)
                recorded_if_failing(
                    f"{label}: significance",
                    partial(concept_significance, *inputs),
                    partial(significance_failed, method),
                )
    return results, skipped


def method_agreement(record: RunResult) -> None:
    """Every pair of methods' concept agreement (rdx.metrics.agreement: Hungarian-matched member Jaccard
    per side) onto ``record.agreement``, and each other method's agreement with the main method onto
    its ``agreement``; nothing with a single method. NaN (a side without concepts) is stored as None."""
    if len(record.methods) < 2:
        return
    from rdx.metrics.agreement import concept_agreement

    explanations = {label: method.to_explanation() for label, method in record.methods.items()}
    agreement = concept_agreement(explanations)
    record.agreement = _nan_as_none(agreement.to_dict())
    main = record.main_method
    for label, method in record.methods.items():
        if label != main:
            sides = {side: agreement.pair(side, main, label).mean_jaccard for side in SIDES}
            present = [value for value in sides.values() if not np.isnan(value)]
            mean = float(np.mean(present)) if present else None
            method.agreement = _nan_as_none({"with": main, **sides, "mean": mean})


def _nan_as_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _nan_as_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_as_none(item) for item in value]
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def significance_failed(method: MethodResult, reason: str) -> None:
    """Record why a method's significance could not be computed (its scores stay)."""
    method.significance = {"failed": reason}


def concept_significance(
    method: MethodResult,
    estimator: Any,
    explanation: Any,
    features: dict[str, np.ndarray],
    image_set: ImageSet,
    checked: Preflight,
    nulls: dict[tuple[str, int], np.ndarray] | None = None,
) -> None:
    """Each concept's difference test (p, and q over the method's concepts) and, for the methods the
    settings choose, its stability over refits on subsamples (rdx.metrics.significance); written onto
    the method's record. ``nulls`` carries the test's null distributions from method to method."""
    from sklearn.base import clone

    from rdx.metrics.significance import concept_tests, stability

    settings, labels = checked.significance, image_set.labels
    started = time.perf_counter()
    tests = concept_tests(explanation, features["A"], features["B"], settings.n_null, settings.seed, nulls)
    stable = None
    if settings.wants_stability(method.name):

        def refit(indices: np.ndarray) -> dict[str, np.ndarray]:
            fitted = clone(estimator).fit(features["A"][indices], features["B"][indices], y=labels[indices])
            coded = MethodResult.from_explanation(
                "refit", method.name, fitted.explanation_, labels[indices], metrics={}
            )
            return coded.members

        methods_log = logging.getLogger("rdx.methods")  # the refits would repeat the fit's own lines
        level = methods_log.level
        methods_log.setLevel(logging.WARNING)
        try:
            stable = stability(method.members, refit, settings.n_refits, settings.fraction, settings.seed)
        finally:
            methods_log.setLevel(level)
    for concept in method.concepts:
        test = tests["concepts"].get((concept.side, concept.index), {})
        concept.p_value, concept.q_value = test.get("p"), test.get("q")
        if stable is not None:
            concept.stability = stable["concepts"].get((concept.side, concept.index))
    method.significance = settings.to_dict() | {
        "stability_computed": stable is not None,
        "seconds": time.perf_counter() - started,
    }


def score_explanation(
    label: str,
    explanation: Any,
    features: dict[str, np.ndarray],
    labels: np.ndarray,
    cfg: DictConfig,
    planted: dict[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A method's BSR/TSD/EQ scores for every distance, and its recovery of the planted difference (when
    the run has one); a failing metric is recorded as failed (:func:`recorded_if_failing`)."""
    scores = recorded_if_failing(
        f"{label}: scoring",
        lambda: explanation_scores(
            explanation, features["A"], features["B"], reference_compat=cfg.metrics.lsed_reference_compat
        ),
        failed_scores,
    )
    if planted is None:
        return scores, None
    recovery = recorded_if_failing(
        f"{label}: planted-difference recovery",
        lambda: recovery_scores(explanation, labels, planted["mix_A"], planted["mix_B"], planted["min_each"]),
        lambda reason: {"score": None, "A": None, "B": None, "failed": reason},
    )
    return scores, recovery


def recorded_if_failing(what: str, compute: Callable[[], Any], failed: Callable[[str], Any]) -> Any:
    """``compute()``; a metric that fails once the run's work is done (degenerate data, say) is recorded
    as ``failed(reason)`` with a warning instead of discarding the finished results."""
    try:
        return compute()
    except Exception as error:  # noqa: BLE001 - any metric failure is recorded, never lost
        reason = f"{type(error).__name__}: {error}"
        log.warning("%s failed; recorded as failed: %s", what, reason)
        return failed(reason)


def failed_scores(reason: str) -> dict[str, Any]:
    """The scores of a method whose scoring failed: NaN everywhere (tables show "–"), and why."""
    nan = {"A": float("nan"), "B": float("nan"), "mean": float("nan")}
    return {
        distance: {
            "bsr": dict(nan),
            "tsd": dict(nan),
            "eq": dict(nan),
            "grids": {"A": [], "B": []},
            "failed": reason,
        }
        for distance in DISTANCES
    }


def planted_spec(planted_cfg: DictConfig | None) -> dict[str, Any] | None:
    """The configured known difference (validated label pairs), or None."""
    if planted_cfg is None:
        return None
    return {
        "description": planted_cfg.description,
        "mix_A": [list(p) for p in check_pairs(planted_cfg.mix_A, "planted.mix_A")],
        "mix_B": [list(p) for p in check_pairs(planted_cfg.mix_B, "planted.mix_B")],
        "min_each": int(planted_cfg.min_each),
    }


def score_representations(
    features: dict[str, np.ndarray], image_set: ImageSet, cfg: DictConfig
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """CKA and probe scores of the two representations, and the planted difference's label-pair
    separability in each (when the run has a planted difference)."""
    representations = recorded_if_failing(
        "representation scores (CKA, probes)",
        lambda: representation_scores(
            features["A"],
            features["B"],
            image_set.labels if cfg.metrics.probes else None,
            n_splits=cfg.metrics.probe_folds,
            random_state=cfg.seed,
        ),
        lambda reason: {"failed": reason},
    )
    planted = planted_spec(cfg.get("planted"))
    if planted is not None:
        pairs = planted["mix_A"] + planted["mix_B"]
        planted["separability"] = recorded_if_failing(
            "planted label-pair separability",
            lambda: {
                side: pair_separability(X, image_set.labels, pairs, cfg.metrics.probe_folds, cfg.seed)
                for side, X in features.items()
            },
            lambda reason: {"failed": reason},
        )
    return representations, planted


def build_record(
    cfg: DictConfig,
    job: dict[str, Any] | None,
    models: dict[str, LoadedModel],
    image_set: ImageSet,
    features: dict[str, np.ndarray],
    sources: dict[str, str],
    cache: FeatureCache,
    methods: dict[str, MethodResult],
    *,
    inputs: dict[str, str | None] | None = None,
    key: str | None = None,
) -> RunResult:
    """The run record of a finished comparison (not yet written), with its input digests and the run key
    computed from them (:mod:`rdx.runs`; computed here when not given)."""
    inputs = inputs if inputs is not None else input_digests(cfg, image_set)
    names = {side: model.name for side, model in models.items()}
    classes = cfg.dataset.get("classes")
    dataset: dict[str, Any] = {
        "name": cfg.dataset.name,
        "n_images": len(image_set),
        "classes": OmegaConf.to_container(classes, resolve=True)
        if classes is not None
        else sorted(int(label) for label in np.unique(image_set.labels)),
    }
    if image_set.label_names is not None:
        dataset["label_names"] = {str(k): v for k, v in image_set.label_names.items()}
    return RunResult(
        task_name=cfg.task_name,
        main_method=cfg.method.label,
        methods=methods,
        models={side: model.info for side, model in models.items()},
        dataset=dataset,
        features={side: {"dim": int(X.shape[1]), "cache": sources[side]} for side, X in features.items()},
        cache={
            "enabled": cache.enabled,
            "dir": str(cache.root),
            "hits": cache.hits,
            "misses": cache.misses,
            "unwritable": cache.unwritable,  # why nothing was stored (None: the folder is writable)
        },
        side_meaning={
            "A": f"RDX direction 01: what {names['A']} groups together that {names['B']} separates; "
            f"baselines: {names['A']}'s own concepts",
            "B": f"RDX direction 10: what {names['B']} groups together that {names['A']} separates; "
            f"baselines: {names['B']}'s own concepts",
        },
        run_key=key if key is not None else run_key(cfg, inputs),
        inputs=inputs,
        job=job,
    )


def write_run(
    record: RunResult,
    cfg: DictConfig,
    checked: Preflight,
    output_dir: Path,
    image_set: ImageSet,
    features: dict[str, np.ndarray],
    clock: StageClock,
) -> None:
    """The methods' agreement, then the members file, figures, the HTML report and the W&B run from the
    record, then results.json (the commit point)."""
    logger = checked.logger
    with clock("agreement"):  # the methods' agreement is in the figures, the report and the W&B run
        method_agreement(record)
    with clock("figures"):
        embedding = pca_embedding(features["A"], features["B"])
        record.embedding = {
            "kind": "pca",
            "explained_variance_ratio": {side: ratios.tolist() for side, (_, ratios) in embedding.items()},
        }
        coordinates = {side: points for side, (points, _) in embedding.items()}
        record.members_file = write_members(
            record, output_dir, image_set.labels, image_set.source_indices, coordinates, image_set.paths
        )
        figures = comparison_figures(
            record, image_set.images, image_set.labels, embedding, cfg.figures.grid_scale
        )
        record.figures = write_figures(figures, output_dir, {key: figure_file(key) for key in figures})
    pages = {}
    if checked.report.enabled:
        with clock("report"):
            record.report, page = write_report(
                record,
                output_dir,
                image_set.images,
                image_set.labels,
                features,
                checked.report,
                device=str(resolve_device(cfg.device)),
                seed=cfg.seed,
                single_file=logger["mode"] != "disabled",
            )
        pages = {"report": page} if page is not None else {}
    record.timings = clock.timings
    config = OmegaConf.to_container(cfg, resolve=True)
    wandb_dir = log_comparison(record, figures, logger, config, output_dir, pages=pages)
    if wandb_dir is not None:
        record.wandb_run_dir, record.wandb_group = str(wandb_dir), logger.get("group")
    commit_run(record, output_dir, Path(cfg.paths.runs_index))
