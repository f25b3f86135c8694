"""The run record: one comparison's results as typed data, the only way results are written and read.

A :class:`RunResult` holds what ``rdx-compare`` found: the two models, the images, every method's
concepts and scores, the representation scores and where the figures are. It is written once per run as
``results.json`` (:meth:`RunResult.to_json`) plus the members file (``members.csv``: one row per image,
its identity, its label, its 2-D PCA coordinates in each model and its concept under every method and
side). Everything that reads runs (``rdx-table``, the console summary, W&B) goes through
:func:`load_run` / :meth:`RunResult.from_json`; nothing re-walks the raw JSON.

Light on purpose (numpy only; pandas on reading the members file): ``rdx-compare`` checks for a finished
run before it imports the heavy parts.

Members file columns: ``image`` (the row position, which grids and concepts index), ``source_index``
(the image's index in its dataset), ``path`` (image files only), ``label``, ``pca_A_1``, ``pca_A_2``,
``pca_B_1``, ``pca_B_2`` (the coordinates of the PCA figure), then one column ``<method label>/<side>``
per method and side holding the image's concept index there: 1..k, :data:`NULL_CONCEPT` (0) for a
cluster the method computed but does not show (RDX's null cluster), :data:`NO_CONCEPT` (-1) for none.
Read it with ``pandas.read_csv(run_dir / "members.csv")``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rdx.methods.explanation import Concept, Explanation, label_counts

SCHEMA_VERSION = 2
RESULTS_FILE = "results.json"
MEMBERS_FILE = "members.csv"
SIDES = ("A", "B")
DISTANCES = ("silb", "mned", "lsed")
SCORE_METRICS = ("bsr", "tsd", "eq")
SCORE_SIDES = ("A", "B", "mean")
NULL_CONCEPT = 0
NO_CONCEPT = -1
# Label purity: a grid is "dominated by one label" when its majority label fills this much of it.
DOMINATED_AT = 2 / 3


class RecordError(ValueError):
    """A results.json (or members file) that is not a run record this version can read; names the file."""


def member_column(label: str, side: str) -> str:
    """The members-file column of one method's side, e.g. ``rdx/A``."""
    return f"{label}/{side}"


# ------------------------------------------------------------------------------------------------
# concepts and methods
# ------------------------------------------------------------------------------------------------


@dataclass
class ConceptRecord:
    """One concept of one method and side.

    ``index`` is the concept's number on its side (1..k; 0 for a null cluster), ``grid`` the indices
    (rows of the image set) shown, ``size`` the number of members (listed in the members file).
    ``p_value`` / ``q_value`` are the difference test's (rdx.metrics.significance: the grid's BSR
    against tight groups of the explained model; q is Benjamini-Hochberg over the method's concepts) and
    ``stability`` the median best Jaccard overlap over refits on subsamples; None when not computed.
    """

    side: str
    index: int
    size: int
    score: float
    grid: list[int]
    grid_labels: list[int] = field(default_factory=list)
    member_label_counts: dict[str, int] = field(default_factory=dict)
    p_value: float | None = None
    q_value: float | None = None
    stability: float | None = None

    @property
    def grid_label_counts(self) -> dict[str, int]:
        return label_counts(self.grid_labels)

    @property
    def grid_majority_fraction(self) -> float:
        counts = list(self.grid_label_counts.values())
        return float(max(counts) / sum(counts)) if counts else float("nan")

    @property
    def grid_n_labels(self) -> int:
        return len(self.grid_label_counts)

    def significance_text(self) -> str:
        """ ", q 0.003, stability 0.95" for the console ("" when neither was computed)."""
        parts = [f"q {self.q_value:.3g}" if self.q_value is not None else ""]
        parts.append(f"stability {self.stability:.2f}" if self.stability is not None else "")
        shown = [part for part in parts if part]
        return ", " + ", ".join(shown) if shown else ""

    def to_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "index": self.index,
            "size": self.size,
            "score": self.score,
            "grid": list(self.grid),
            "grid_labels": list(self.grid_labels),
            "grid_label_counts": self.grid_label_counts,
            "grid_majority_fraction": self.grid_majority_fraction,
            "grid_n_labels": self.grid_n_labels,
            "member_label_counts": dict(self.member_label_counts),
            **{
                key: value
                for key, value in (
                    ("p_value", self.p_value),
                    ("q_value", self.q_value),
                    ("stability", self.stability),
                )
                if value is not None
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConceptRecord:
        return cls(
            side=str(data["side"]),
            index=int(data["index"]),
            size=int(data["size"]),
            score=float(data["score"]),
            grid=[int(i) for i in data["grid"]],
            grid_labels=[int(v) for v in data.get("grid_labels", [])],
            member_label_counts={str(k): int(v) for k, v in (data.get("member_label_counts") or {}).items()},
            p_value=_optional_float(data.get("p_value")),
            q_value=_optional_float(data.get("q_value")),
            stability=_optional_float(data.get("stability")),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass
class MethodResult:
    """One method's explanation of the comparison and its scores.

    Attributes:
        label: how this configuration is called (the key in ``RunResult.methods``, a table row).
        name: the registry name of the estimator.
        concepts: the shown concepts of both sides, side A first, each side in concept order.
        null: per side, the computed but unshown cluster (RDX's null cluster), or None.
        info: the estimator's own record (parameters used, path, alignment, ...).
        metrics: ``{distance: {"bsr" | "tsd" | "eq": {"A", "B", "mean"}, "grids": {side: [...]}}}``.
        recovery: the planted-difference recovery scores, when the run has a planted difference.
        significance: how the concepts' difference test and stability were computed (settings, alpha,
            seconds), when they were; the per-concept values are on the concepts.
        agreement: how much this method's concepts agree with the main method's (rdx.metrics.agreement:
            mean member Jaccard of the Hungarian-matched concepts): {"with": main label, "A", "B",
            "mean"}; None for the main method itself or a run with one method.
        members: per side, each image's concept index (N,) int64 (:data:`NULL_CONCEPT`,
            :data:`NO_CONCEPT`); in memory after a fit, read from the members file by :func:`load_run`.
    """

    label: str
    name: str
    concepts: list[ConceptRecord]
    null: dict[str, ConceptRecord | None]
    info: dict[str, Any]
    metrics: dict[str, Any]
    fit_s: float = float("nan")
    metrics_s: float = float("nan")
    recovery: dict[str, Any] | None = None
    significance: dict[str, Any] | None = None
    agreement: dict[str, Any] | None = None
    members: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def side(self, side: str) -> list[ConceptRecord]:
        """The shown concepts of one side, in order."""
        return [concept for concept in self.concepts if concept.side == side]

    def score(self, distance: str = "silb", metric: str = "bsr", side: str = "mean") -> float:
        """One score: ``score("silb", "bsr", "mean")`` is the mBSR with SILB distances (NaN if absent)."""
        value = self.metrics.get(distance, {}).get(metric, {}).get(side)
        return float("nan") if value is None else float(value)

    def agreement_with_main(self) -> float:
        """Mean matched member Jaccard with the main method's concepts, over both sides (NaN: not
        computed, or this is the main method)."""
        return _float((self.agreement or {}).get("mean"))

    def significant_share(self) -> float:
        """The share of shown concepts whose difference test has q below the run's alpha (NaN when the
        test did not run or no concept has a q-value)."""
        if not self.significance or "alpha" not in self.significance:  # not run, or failed
            return float("nan")
        alpha = float(self.significance["alpha"])
        tested = [c.q_value for c in self.concepts if c.q_value is not None and not np.isnan(c.q_value)]
        return float(np.mean([q < alpha for q in tested])) if tested else float("nan")

    def significance_text(self) -> str:
        """ " | significant 4/6 (q < 0.05), median stability 0.91" for the console ("" when not run)."""
        if not self.significance:
            return ""
        if "failed" in self.significance:
            return " | significance failed"
        alpha = self.significance["alpha"]
        tested = [c for c in self.concepts if c.q_value is not None and not np.isnan(c.q_value)]
        text = f" | significant {sum(c.q_value < alpha for c in tested)}/{len(tested)} (q < {alpha:g})"
        stability = self.median_stability()
        return text + ("" if np.isnan(stability) else f", median stability {stability:.2f}")

    def median_stability(self) -> float:
        """The median stability of the shown concepts (NaN when not computed)."""
        values = [c.stability for c in self.concepts if c.stability is not None and not np.isnan(c.stability)]
        return float(np.median(values)) if values else float("nan")

    @property
    def mbsr(self) -> float:
        """The headline score: mean BSR over both sides, SILB distances."""
        return self.score("silb", "bsr", "mean")

    def grid_scores(self, distance: str = "silb", metric: str = "bsr") -> list[float]:
        """The per-grid values of one metric, both sides (side A first)."""
        grids = self.metrics.get(distance, {}).get("grids", {})
        return [_float(grid.get(metric)) for side in SIDES for grid in grids.get(side, [])]

    def grid_composition(self, dominated_at: float = DOMINATED_AT) -> dict[str, Any]:
        """How label-pure each side's grids are (reported, never used to tune a method)."""
        summary: dict[str, Any] = {"dominated_at": dominated_at}
        for side in SIDES:
            concepts = self.side(side)
            fractions = [concept.grid_majority_fraction for concept in concepts]
            summary[side] = {
                "grids": len(concepts),
                "dominated_by_one_label": sum(fraction >= dominated_at for fraction in fractions),
                "mixing_labels": sum(concept.grid_n_labels > 1 for concept in concepts),
                "mean_majority_fraction": float(np.mean(fractions)) if fractions else None,
            }
        return summary

    def concept_members(self, side: str, index: int) -> np.ndarray:
        """The image indices (rows of the image set) of one concept, sorted; needs ``members``."""
        if self.members is None:
            raise RecordError(f"method {self.label!r}: members are not loaded (load_run(..., members=True))")
        return np.flatnonzero(self.members[side] == index)

    @classmethod
    def from_explanation(
        cls, label: str, name: str, explanation: Explanation, labels: np.ndarray, **fields: Any
    ) -> MethodResult:
        """The record of a fitted method's ``explanation`` on images with ``labels`` (N,).

        Raises:
            ValueError: an image belongs to two concepts of one side (the members file holds one each).
        """
        labels = np.asarray(labels)
        concepts, null, members = [], {}, {}
        for side in SIDES:
            codes = np.full(len(labels), NO_CONCEPT, dtype=np.int64)
            side_null = explanation.null.get(side)
            shown = [(concept, False) for concept in explanation.concepts.get(side, [])]
            for concept, is_null in [*([(side_null, True)] if side_null is not None else []), *shown]:
                taken = codes[concept.members] != NO_CONCEPT
                if taken.any():
                    raise ValueError(
                        f"method {label!r} side {side}: concept {concept.index} shares images with another "
                        "concept; members must be disjoint"
                    )
                codes[concept.members] = NULL_CONCEPT if is_null else concept.index
                record = ConceptRecord(
                    side=side,
                    index=int(concept.index),
                    size=concept.size,
                    score=float(concept.score),
                    grid=[int(i) for i in concept.grid],
                    grid_labels=[int(v) for v in labels[concept.grid]],
                    member_label_counts=label_counts(labels[concept.members]),
                )
                if is_null:
                    null[side] = record
                else:
                    concepts.append(record)
            null.setdefault(side, None)
            members[side] = codes
        return cls(label, name, concepts, null, dict(explanation.info), members=members, **fields)

    def to_explanation(self) -> Explanation:
        """The method's ``Explanation`` rebuilt from the record (members from ``members``)."""
        if self.members is None:
            raise RecordError(f"method {self.label!r}: members are not loaded (load_run(..., members=True))")

        def concept(record: ConceptRecord, code: int) -> Concept:
            members = np.flatnonzero(self.members[record.side] == code)
            return Concept(record.index, members, np.asarray(record.grid, dtype=np.int64), record.score)

        return Explanation(
            self.name,
            {side: [concept(c, c.index) for c in self.side(side)] for side in SIDES},
            {side: None if c is None else concept(c, NULL_CONCEPT) for side, c in self.null.items()},
            info=self.info,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "name": self.name,
            "fit_s": self.fit_s,
            "metrics_s": self.metrics_s,
            "concepts": [concept.to_json() for concept in self.concepts],
            "null": {side: None if c is None else c.to_json() for side, c in self.null.items()},
            "info": self.info,
            "metrics": self.metrics,
            "grid_composition": self.grid_composition(),
        }
        if self.recovery is not None:
            out["recovery"] = self.recovery
        if self.significance is not None:
            out["significance"] = self.significance
        if self.agreement is not None:
            out["agreement"] = self.agreement
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MethodResult:
        null = data.get("null") or {}
        return cls(
            label=str(data["label"]),
            name=str(data["name"]),
            concepts=[ConceptRecord.from_json(c) for c in data.get("concepts", [])],
            null={
                side: None if null.get(side) is None else ConceptRecord.from_json(null[side])
                for side in SIDES
            },
            info=dict(data.get("info") or {}),
            metrics=dict(data["metrics"]),
            fit_s=_float(data.get("fit_s")),
            metrics_s=_float(data.get("metrics_s")),
            recovery=data.get("recovery"),
            significance=data.get("significance"),
            agreement=data.get("agreement"),
        )


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """One comparison: its models, images, methods and scores (``results.json`` + members file).

    ``models[side]`` is the model's record (name, kind, layer, pooling, weights, training checkpoint and
    validation accuracy where there is one); ``dataset`` names the images (name, n_images, classes,
    label_names); ``features[side]`` gives the dimension and where the features came from; ``figures``
    maps figure names to paths relative to the run dir; ``report`` says where the HTML report is
    (``file``, relative to the run dir) and how it was made (rdx.sinks.report_files). ``inputs`` are the
    content digests its ``run_key`` was computed from (input file by config key, the images, their
    labels: rdx.runs). ``methods_skipped`` maps each baseline the representations did not allow (e.g. NMF
    on signed features, a dictionary narrower than its top-k) to why; it is not in ``methods``.
    ``agreement`` is every pair of methods' concept agreement per side
    (``rdx.metrics.agreement.Agreement.to_dict``: matched concepts, mean Jaccard, the concepts at least
    two methods find), None with one method. ``run_dir`` (not stored) is where the record was read from
    or written to.
    """

    task_name: str
    main_method: str
    methods: dict[str, MethodResult]
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    side_meaning: dict[str, str] = field(default_factory=dict)
    representations: dict[str, Any] | None = None
    planted: dict[str, Any] | None = None
    embedding: dict[str, Any] | None = None
    members_file: str | None = None
    figures: dict[str, str] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    agreement: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    run_key: str | None = None
    inputs: dict[str, str | None] | None = None
    job: dict[str, Any] | None = None
    complete: bool = False
    wandb_run_dir: str | None = None
    wandb_group: str | None = None
    reused_from: str | None = None
    methods_skipped: dict[str, str] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    run_dir: Path | None = field(default=None, repr=False, compare=False)
    skipped: bool = field(default=False, repr=False, compare=False)

    @property
    def main(self) -> MethodResult:
        """The main method's result (RDX in the paper's experiments)."""
        return self.methods[self.main_method]

    def objective(self) -> float:
        """What a sweeper optimises: the main method's mBSR with SILB distances."""
        return self.main.mbsr

    def path(self, relative: str) -> Path:
        """Where a file the record names (a figure, the members file) lies: below the run dir that
        wrote it (``reused_from`` for a record copied from another run)."""
        base = Path(self.reused_from) if self.reused_from else self.run_dir
        path = Path(relative)
        return path if path.is_absolute() or base is None else base / path

    def figure_path(self, name: str) -> Path:
        """Path of a figure (``summary``, ``pca_scatter``, ``comparison``, ``grid/<label>/side..``)."""
        return self.path(self.figures[name])

    @property
    def label_names(self) -> dict[int, str] | None:
        names = self.dataset.get("label_names")
        return None if names is None else {int(k): str(v) for k, v in names.items()}

    # -- JSON ------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "task_name": self.task_name,
            "run_key": self.run_key,
            "inputs": self.inputs,
            "complete": self.complete,
            "main_method": self.main_method,
            "job": self.job,
            "models": self.models,
            "dataset": self.dataset,
            "features": self.features,
            "cache": self.cache,
            "side_meaning": self.side_meaning,
            "methods": {label: method.to_json() for label, method in self.methods.items()},
            "representations": self.representations,
            "planted": self.planted,
            "members": None if self.members_file is None else _members_json(self),
            "embedding": self.embedding,
            "figures": self.figures,
            "report": self.report,
            "agreement": self.agreement,
            "timings": self.timings,
            "wandb_run_dir": self.wandb_run_dir,
            "wandb_group": self.wandb_group,
        }
        if self.reused_from is not None:
            out["reused_from"] = self.reused_from
        if self.methods_skipped:
            out["methods_skipped"] = dict(self.methods_skipped)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "results") -> RunResult:
        """A record from its JSON object; RecordError (naming ``where``) when it is not one."""
        if not isinstance(data, Mapping):
            raise RecordError(f"{where}: the file does not hold a JSON object (not a results.json?)")
        for key in ("task_name", "main_method", "methods"):
            if key not in data:
                raise RecordError(f"{where}: missing key {key!r}")
        if not isinstance(data["methods"], Mapping) or not data["methods"]:
            raise RecordError(f"{where}: 'methods' is empty or not an object")
        version = data.get("schema_version")
        if version is None:
            data = _upgrade_v1(data, where)
        elif version != SCHEMA_VERSION:
            raise RecordError(
                f"{where}: schema_version {version} is not {SCHEMA_VERSION}; written by another rdx version"
            )
        try:
            methods = {str(label): MethodResult.from_json(m) for label, m in data["methods"].items()}
            record = cls(
                task_name=str(data["task_name"]),
                main_method=str(data["main_method"]),
                methods=methods,
                models=dict(data.get("models") or {}),
                dataset=dict(data.get("dataset") or {}),
                features=dict(data.get("features") or {}),
                cache=dict(data.get("cache") or {}),
                side_meaning=dict(data.get("side_meaning") or {}),
                representations=data.get("representations"),
                planted=data.get("planted"),
                embedding=data.get("embedding"),
                members_file=(data.get("members") or {}).get("file"),
                figures=dict(data.get("figures") or {}),
                report=data.get("report"),
                agreement=data.get("agreement"),
                timings=dict(data.get("timings") or {}),
                run_key=data.get("run_key"),
                inputs=data.get("inputs"),
                job=data.get("job"),
                complete=bool(data.get("complete", False)),
                wandb_run_dir=data.get("wandb_run_dir"),
                wandb_group=data.get("wandb_group"),
                reused_from=data.get("reused_from"),
                methods_skipped={str(k): str(v) for k, v in (data.get("methods_skipped") or {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise RecordError(f"{where}: not a run record ({type(error).__name__}: {error})") from error
        record.check(where)
        return record

    def check(self, where: str = "results") -> None:
        """Raise RecordError when the record lacks what readers rely on (every score of every method)."""
        if not self.methods:
            raise RecordError(f"{where}: 'methods' is empty")
        if self.main_method not in self.methods:
            raise RecordError(f"{where}: main_method {self.main_method!r} is not one of {list(self.methods)}")
        for label, method in self.methods.items():
            for distance in DISTANCES:
                scores = method.metrics.get(distance)
                if not isinstance(scores, Mapping) or not isinstance(scores.get("grids"), Mapping):
                    raise RecordError(f"{where}: method {label!r} lacks metrics.{distance}.grids")
                for metric in SCORE_METRICS:
                    values = scores.get(metric)
                    if not isinstance(values, Mapping) or any(side not in values for side in SCORE_SIDES):
                        raise RecordError(
                            f"{where}: method {label!r} lacks metrics.{distance}.{metric}.{{A,B,mean}}"
                        )

    # -- what the sinks report -------------------------------------------------------------------

    def wandb_metrics(self) -> dict[str, float]:
        """The scalar metrics logged to W&B (one history row)."""
        metrics: dict[str, float] = {f"time/{k}": v for k, v in self.timings.items()}
        for side, info in self.models.items():
            if "val_acc" in info:
                metrics[f"model_{side}/val_acc"] = info["val_acc"]
        representations = self.representations or {}
        if representations.get("cka") is not None:
            metrics["representations/cka"] = representations["cka"]
        for key, value in (representations.get("probe") or {}).items():
            if isinstance(value, (int, float)):
                metrics[f"representations/probe_{key}"] = value
        for side, separability in (self.planted or {}).get("separability", {}).items():
            if isinstance(separability, Mapping) and "mean" in separability:  # not when it failed
                metrics[f"planted/pair_separability/{side}"] = separability["mean"]
        for label, method in self.methods.items():
            for distance in DISTANCES:
                for metric in SCORE_METRICS:
                    for side in SCORE_SIDES:
                        metrics[f"{label}/{metric}_{distance}/{side}"] = method.score(distance, metric, side)
            if method.recovery is not None:
                for key in ("score", "A", "B"):
                    metrics[f"{label}/recovery/{key}"] = method.recovery[key]
            if method.agreement is not None:
                metrics[f"{label}/agreement_with_{method.agreement['with']}"] = method.agreement_with_main()
            if method.significance and "alpha" in method.significance:
                metrics[f"{label}/significant_share"] = method.significant_share()
                metrics[f"{label}/median_stability"] = method.median_stability()
            for direction, alignment in method.info.get("alignment", {}).items():
                for key in ("initial_heldout_cka", "heldout_cka", "train_cka"):
                    metrics[f"{label}/alignment_{direction}/{key}"] = alignment[key]
        return metrics

    def wandb_summary(self) -> dict[str, Any]:
        """The run's summary values in W&B's runs table."""
        summary: dict[str, Any] = {"n_images": self.dataset.get("n_images")}
        for label, method in self.methods.items():
            summary[f"{label}/mBSR_silb"] = method.mbsr
            if method.recovery is not None:
                summary[f"{label}/recovery"] = method.recovery["score"]
            composition = method.grid_composition()
            for side in SIDES:
                for key, value in composition[side].items():
                    summary[f"{label}/grids_{side}/{key}"] = value
        return summary

    def concept_rows(self) -> Iterator[tuple[MethodResult, ConceptRecord]]:
        """Every shown concept of every method, methods in order."""
        for method in self.methods.values():
            for concept in method.concepts:
                yield method, concept

    def console_lines(self) -> list[str]:
        """The summary ``rdx-compare`` prints: models, the main method's concepts, every method's BSR,
        and why a baseline was skipped."""
        lines = []
        for side, info in self.models.items():
            accuracy = f", val acc {info['val_acc']:.4f}" if "val_acc" in info else ""
            lines.append(f"model {side} = {info.get('name')} ({info.get('checkpoint')}{accuracy})")
        main = self.main
        for concept in main.concepts:
            lines.append(
                f"{main.label} side {concept.side} concept {concept.index}: {concept.size} images, "
                f"score {concept.score:.3f}, grid labels {concept.grid_label_counts}"
                + concept.significance_text()
            )
        for direction, alignment in main.info.get("alignment", {}).items():
            lines.append(
                f"alignment {direction}: held-out CKA {alignment['initial_heldout_cka']:.4f} -> "
                f"{alignment['heldout_cka']:.4f} (train {alignment['train_cka']:.4f}), "
                f"kept step {alignment['kept_step']}"
            )
        for label, method in self.methods.items():
            lines.append(
                f"{label:<12} fit {method.fit_s:6.2f} s | BSR SILB A {method.score('silb', 'bsr', 'A'):.3f} "
                f"B {method.score('silb', 'bsr', 'B'):.3f} mean {method.mbsr:.3f} | mBSR MNED "
                f"{method.score('mned'):.3f} LSED {method.score('lsed'):.3f}" + method.significance_text()
            )
        for label, reason in self.methods_skipped.items():
            lines.append(f"{label:<12} skipped: {reason}")
        return lines


def _members_json(record: RunResult) -> dict[str, Any]:
    return {
        "file": record.members_file,
        "codes": {"null": NULL_CONCEPT, "none": NO_CONCEPT},
        "columns": [member_column(label, side) for label in record.methods for side in SIDES],
    }


def _upgrade_v1(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A results.json from before the typed record (no schema_version) in today's layout (no members)."""
    try:
        methods = {}
        for label, method in data["methods"].items():
            explanation = method.get("explanation") or {"sides": {}, "info": {}}
            concepts, null = [], {}
            for side in SIDES:
                side_data = explanation["sides"].get(side) or {"concepts": [], "null": None}
                concepts += [{**c, "side": side} for c in side_data["concepts"]]
                null[side] = None if side_data.get("null") is None else {**side_data["null"], "side": side}
            methods[label] = {
                **{
                    k: v
                    for k, v in method.items()
                    if k not in ("explanation", "concepts", "grid_composition")
                },
                "label": method.get("label", label),
                "name": method.get("name", label),
                "concepts": concepts,
                "null": null,
                "info": explanation.get("info", {}),
            }
    except (AttributeError, KeyError, TypeError) as error:
        raise RecordError(f"{where}: not a run record ({type(error).__name__}: {error})") from error
    return {**data, "methods": methods}


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------


def load_run(path: str | Path, members: bool = False) -> RunResult:
    """Read a run record: ``path`` is a run dir or its results.json. The one reader of results.

    With ``members`` the members file is read too (``MethodResult.members``, ``concept_members``).

    Raises:
        RecordError: the file is missing, not JSON, or not a run record; the message names the file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RecordError(f"{path}: cannot read it as JSON ({error})") from error
    record = RunResult.from_json(data, where=str(path))
    record.run_dir = path.parent
    if members:
        read_members(record)
    return record


def read_members(record: RunResult) -> None:
    """Fill every method's ``members`` from the record's members file."""
    import pandas as pd

    if record.members_file is None:
        raise RecordError(f"{record.run_dir}: this record has no members file (written before schema 2)")
    path = record.path(record.members_file)
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise RecordError(f"{path}: cannot read the members file ({error})") from error
    for label, method in record.methods.items():
        columns = {side: member_column(label, side) for side in SIDES}
        missing = [column for column in columns.values() if column not in table.columns]
        if missing:
            raise RecordError(f"{path}: no column {missing} for method {label!r}")
        method.members = {side: table[column].to_numpy(dtype=np.int64) for side, column in columns.items()}
