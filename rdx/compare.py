"""One comparison, end to end: images → two models' features → a method → results, figures, W&B.

This is the edge of the package: it reads the composed config and writes the run dir. The algorithms it
calls take arrays and parameters only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rdx.cache import FeatureCache, array_digest, cache_key, file_digest
from rdx.data.mnist import MNIST_MEAN, MNIST_STD, flip_images, images_to_tensor, load_mnist, select_per_class
from rdx.methods import Explanation, build_method
from rdx.metrics import explanation_scores
from rdx.metrics.planted import check_pairs, pair_separability, recovery_scores
from rdx.metrics.representations import representation_scores
from rdx.models.features import extract_features
from rdx.runs import resume_finished_run, run_key
from rdx.sinks.files import save_figure, save_png, write_json_atomic
from rdx.sinks.wandb_logger import RunLogger
from rdx.training.checkpoints import load_convnet_checkpoint, read_index, select_checkpoint
from rdx.training.train import ensure_trained
from rdx.viz.grids import comparison_figure, concept_grid_images, summary_figure
from rdx.viz.scatter import pca_scatter

log = logging.getLogger(__name__)


@dataclass
class ImageSet:
    """The compared images: pixels, labels and where they come from in the source dataset."""

    images: np.ndarray  # (N, H, W) uint8
    labels: np.ndarray  # (N,) int64
    source_indices: np.ndarray  # (N,) positions in the source split
    label_names: dict[int, str] | None = None  # caption names where a label is not the digit itself


@dataclass
class LoadedModel:
    name: str
    network: torch.nn.Module
    info: dict[str, Any]


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def load_image_set(dataset_cfg: DictConfig) -> ImageSet:
    """Load the dataset split and select ``n_per_class`` images of each class, deterministically.

    With ``flip`` set, each class also gets ``n_per_class`` other images of it mirrored, labelled
    class + ``flip_label_offset``: 2 * n_per_class images are drawn per class, alternate ones flipped.
    """
    if dataset_cfg.kind != "mnist":
        raise ValueError(f"unsupported dataset kind {dataset_cfg.kind!r} (supported: 'mnist')")
    images, labels = load_mnist(dataset_cfg.split, root=dataset_cfg.root, download=dataset_cfg.download)
    classes = list(dataset_cfg.classes)
    flip = dataset_cfg.get("flip")
    if flip is None:
        indices = select_per_class(labels, classes, dataset_cfg.n_per_class, dataset_cfg.seed)
        return ImageSet(images[indices], labels[indices], indices)
    offset = int(dataset_cfg.flip_label_offset)
    if offset <= max(classes):
        raise ValueError(
            f"flip_label_offset={offset} would reuse a class label; use more than {max(classes)}"
        )
    drawn = select_per_class(labels, classes, 2 * dataset_cfg.n_per_class, dataset_cfg.seed)
    kept, mirrored = drawn[0::2], drawn[1::2]  # blocks of 2n per class: n of each class in each half
    selected = np.concatenate([images[kept], flip_images(images[mirrored], flip)])
    selected_labels = np.concatenate([labels[kept], labels[mirrored] + offset]).astype(np.int64)
    names = {int(c): str(c) for c in classes} | {int(c) + offset: f"{c}m" for c in classes}
    return ImageSet(selected, selected_labels, np.concatenate([kept, mirrored]), names)


def load_model(model_cfg: DictConfig, checkpoint_root: Path) -> LoadedModel:
    """Load a model from an explicit checkpoint, or from its training run (trained first if missing)."""
    if model_cfg.kind != "convnet":
        raise ValueError(f"unsupported model kind {model_cfg.kind!r} (supported: 'convnet')")
    info: dict[str, Any] = {"name": model_cfg.name, "layer": model_cfg.layer, "pooling": model_cfg.pooling}
    if model_cfg.checkpoint is not None:
        path = Path(model_cfg.checkpoint)
        info.update(checkpoint=str(path), selection="explicit checkpoint")
    else:
        training = OmegaConf.to_container(model_cfg.training, resolve=True)
        run_dir = ensure_trained(training, checkpoint_root)
        select = model_cfg.select
        row = select_checkpoint(
            read_index(run_dir), select.strategy, select.target, select.min_acc, select.max_acc
        )
        path = Path(row["path"])
        info.update(
            checkpoint=str(path),
            training_run=str(run_dir),
            selection=select.strategy,
            step=int(row["step"]),
            epoch=int(row["epoch"]),
            val_acc=float(row["val_acc"]),
        )
    return LoadedModel(model_cfg.name, load_convnet_checkpoint(path), info)


def concept_rows(explanation: Explanation, labels: np.ndarray) -> list[dict[str, Any]]:
    """One flat row per shown concept: what results.json and the W&B table both report."""
    rows = []
    for side, concepts in explanation.concepts.items():
        for concept in concepts:
            grid_labels = labels[concept.grid]
            values, counts = np.unique(grid_labels, return_counts=True)
            rows.append(
                {
                    "side": side,
                    "concept": concept.index,
                    "size": concept.size,
                    "score": float(concept.score),
                    "grid_label_counts": {str(v): int(c) for v, c in zip(values, counts, strict=True)},
                    "grid_majority_fraction": float(counts.max() / counts.sum()),
                    "grid_n_labels": int(len(values)),
                }
            )
    return rows


def describe(model: LoadedModel) -> str:
    accuracy = model.info.get("val_acc")
    return model.name if accuracy is None else f"{model.name} ({100 * accuracy:.1f} % val)"


def grid_composition_summary(rows: list[dict[str, Any]], dominated_at: float = 2 / 3) -> dict[str, Any]:
    """How label-pure each side's grids are: the check the paper's MNIST figures invite.

    A grid is "dominated by one label" when its majority label fills at least ``dominated_at`` of it,
    and "mixes labels" when it shows more than one label. Reported, never used to tune the method.
    """
    summary: dict[str, Any] = {"dominated_at": dominated_at}
    for side in ("A", "B"):
        side_rows = [row for row in rows if row["side"] == side]
        summary[side] = {
            "grids": len(side_rows),
            "dominated_by_one_label": sum(row["grid_majority_fraction"] >= dominated_at for row in side_rows),
            "mixing_labels": sum(row["grid_n_labels"] > 1 for row in side_rows),
            "mean_majority_fraction": float(np.mean([row["grid_majority_fraction"] for row in side_rows]))
            if side_rows
            else None,
        }
    return summary


def run_compare(cfg: DictConfig, output_dir: Path, job: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run one comparison and write results.json, figures and the W&B run into ``output_dir``.

    With ``resume`` on, a comparison whose finished results exist for the same run key (``run_key``:
    the resolved config minus paths, logger and progress settings) is not run again: its results are
    returned (and copied into ``output_dir`` with ``reused_from`` when they lie elsewhere). results.json
    is written once, atomically, as the last step, so a run killed half-way leaves none behind.

    ``job`` (the launcher's view: job number, command-line overrides, sweep dir) is stored as
    ``results["job"]``; the table tool names sweep columns by the overrides that differ.

    Returns the results dictionary that is also written to ``results.json``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    key = run_key(cfg)
    index_dir = Path(cfg.paths.runs_index)
    if cfg.resume:
        finished = resume_finished_run(cfg, output_dir, job)
        if finished is not None:
            return finished
    timings: dict[str, float] = {}
    device = resolve_device(cfg.device)

    start = time.perf_counter()
    image_set = load_image_set(cfg.dataset)
    timings["data_s"] = time.perf_counter() - start

    start = time.perf_counter()
    checkpoint_root = Path(cfg.paths.checkpoints)
    models = {side: load_model(cfg[f"model_{side.lower()}"], checkpoint_root) for side in ("A", "B")}
    timings["models_s"] = time.perf_counter() - start

    start = time.perf_counter()
    cache = FeatureCache(cfg.cache.dir, enabled=cfg.cache.enabled)
    features, cache_status = {}, {}
    images_digest = array_digest(image_set.images)
    for side, model in models.items():
        model_cfg = cfg[f"model_{side.lower()}"]
        parts = {
            "kind": "features",
            "checkpoint": file_digest(model.info["checkpoint"]),
            "layer": model_cfg.layer,
            "pooling": model_cfg.pooling,
            "preprocessing": f"mnist_normalize_{MNIST_MEAN}_{MNIST_STD}",  # images_to_tensor
            "images": images_digest,
            "device": device.type,
        }

        def compute(network=model.network, model_cfg=model_cfg) -> np.ndarray:
            return extract_features(
                network,
                images_to_tensor(image_set.images),
                layer=model_cfg.layer,
                pooling=model_cfg.pooling,
                batch_size=cfg.features.batch_size,
                device=device,
                progress=cfg.features.progress,
            )

        features[side], hit = cache.get_or_compute(cache_key(parts), parts, compute)
        cache_status[side] = "off" if not cache.enabled else ("hit" if hit else "miss")
    timings["features_s"] = time.perf_counter() - start

    names = {side: models[side].name for side in ("A", "B")}
    results: dict[str, Any] = {
        "task_name": cfg.task_name,
        "models": {side: model.info for side, model in models.items()},
        "dataset": {
            "name": cfg.dataset.name,
            "n_images": int(len(image_set.labels)),
            "classes": list(cfg.dataset.classes),
            "source_indices": image_set.source_indices,
        },
        "features": {
            side: {"dim": int(f.shape[1]), "cache": cache_status[side]} for side, f in features.items()
        },
        "cache": {
            "enabled": cache.enabled,
            "dir": str(cache.root),
            "hits": cache.hits,
            "misses": cache.misses,
        },
        "side_meaning": {
            "A": f"RDX direction 01: what {names['A']} groups together that {names['B']} separates; "
            f"baselines: {names['A']}'s own concepts",
            "B": f"RDX direction 10: what {names['B']} groups together that {names['A']} separates; "
            f"baselines: {names['B']}'s own concepts",
        },
        "main_method": cfg.method.label,
        "methods": {},
    }
    if job is not None:
        results["job"] = job
    if image_set.label_names is not None:
        results["dataset"]["label_names"] = {str(k): v for k, v in image_set.label_names.items()}
    planted = planted_spec(cfg.get("planted"))
    explanations: dict[str, Explanation] = {}
    for label, name, params in configured_methods(cfg):
        start = time.perf_counter()
        method = build_method(name, **params)
        explanation = method.fit(features["A"], features["B"], y=image_set.labels).explanation_
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        scores = explanation_scores(
            explanation,
            features["A"],
            features["B"],
            reference_compat=cfg.metrics.lsed_reference_compat,
        )
        rows = concept_rows(explanation, image_set.labels)
        explanations[label] = explanation
        results["methods"][label] = {
            "name": name,
            "label": label,
            "fit_s": fit_seconds,
            "metrics_s": time.perf_counter() - start,
            "explanation": explanation.to_dict(image_set.labels),
            "metrics": scores,
            "concepts": rows,
            "grid_composition": grid_composition_summary(rows),
        }
        if planted is not None:
            results["methods"][label]["recovery"] = recovery_scores(
                explanation, image_set.labels, planted["mix_A"], planted["mix_B"], planted["min_each"]
            )
        log.info("%s: fitted in %.2f s, mBSR (SILB) %.3f", label, fit_seconds, scores["silb"]["bsr"]["mean"])
        timings[f"{label}_s"] = fit_seconds

    start = time.perf_counter()
    results["representations"] = representation_scores(
        features["A"],
        features["B"],
        image_set.labels if cfg.metrics.probes else None,
        n_splits=cfg.metrics.probe_folds,
        random_state=cfg.seed,
    )
    if planted is not None:
        planted["separability"] = {
            side: pair_separability(
                X, image_set.labels, planted["mix_A"] + planted["mix_B"], cfg.metrics.probe_folds, cfg.seed
            )
            for side, X in features.items()
        }
        results["planted"] = planted
        log.info(
            "planted difference: label-pair separability (probe accuracy) A %.3f, B %.3f",
            planted["separability"]["A"]["mean"],
            planted["separability"]["B"]["mean"],
        )
    timings["representations_s"] = time.perf_counter() - start

    start = time.perf_counter()
    pair = f"{describe(models['A'])} vs {describe(models['B'])}"
    title = f"{pair} · {cfg.dataset.name}, N={len(image_set.labels)}"
    figures_written = write_figures(
        explanations, cfg.method.label, image_set, features, names, output_dir, cfg.figures.grid_scale, title
    )
    timings["figures_s"] = time.perf_counter() - start
    results["figures"] = {name: str(path) for name, path in figures_written.items()}
    results["timings"] = timings
    results["run_key"] = key

    wandb_dir = log_to_wandb(cfg, results, figures_written, output_dir)
    if wandb_dir is not None:
        results["wandb_run_dir"] = str(wandb_dir)
        results["wandb_group"] = cfg.logger.get("group")
    results["complete"] = True
    write_json_atomic(output_dir / "results.json", results)  # the commit point of the run
    write_json_atomic(index_dir / f"{key}.json", {"results": str((output_dir / "results.json").resolve())})
    return results


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


def configured_methods(cfg: DictConfig) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, registry name, parameters) of the main method, then of each selected baseline."""
    methods = [(cfg.method.label, cfg.method.name, OmegaConf.to_container(cfg.method.params, resolve=True))]
    for label, baseline in (cfg.get("baselines") or {}).items():
        methods.append((label, baseline.name, OmegaConf.to_container(baseline.params, resolve=True)))
    labels = [label for label, *_ in methods]
    if len(set(labels)) != len(labels):
        raise ValueError(f"method labels must be unique, got {labels}")
    return methods


def write_figures(
    explanations: dict[str, Explanation],
    main_method: str,
    image_set: ImageSet,
    features: dict[str, np.ndarray],
    names: dict[str, str],
    output_dir: Path,
    grid_scale: int,
    title: str,
) -> dict[str, Path]:
    """Per method one PNG per concept grid; the main method's summary figure; a comparison figure of
    all methods (when there are several); the PCA scatter with the main method's grids outlined."""
    written: dict[str, Path] = {}
    for label, explanation in explanations.items():
        for (side, index), grid in concept_grid_images(
            explanation, image_set.images, scale=grid_scale
        ).items():
            key = grid_key(label, side, index)
            written[key] = output_dir / "grids" / label / f"side{side}_concept{index}.png"
            save_png(grid, written[key])
    main = explanations[main_method]
    rdx_titles = {
        "A": f"{names['A']} groups, {names['B']} separates (01)",
        "B": f"{names['B']} groups, {names['A']} separates (10)",
    }
    figure = summary_figure(
        main,
        image_set.images,
        image_set.labels,
        rdx_titles,
        title=f"{main_method}: {title}",
        label_names=image_set.label_names,
    )
    written["summary"] = output_dir / "summary.png"
    save_figure(figure, written["summary"])
    if len(explanations) > 1:
        model_titles = {side: f"model {side} = {names[side]}" for side in ("A", "B")}
        figure = comparison_figure(
            explanations,
            image_set.images,
            image_set.labels,
            model_titles,
            title=title,
            label_names=image_set.label_names,
        )
        written["comparison"] = output_dir / "comparison.png"
        save_figure(figure, written["comparison"])
    scatter = pca_scatter(
        features["A"],
        features["B"],
        image_set.labels,
        (names["A"], names["B"]),
        explanation=main,
        label_names=image_set.label_names,
    )
    written["pca_scatter"] = output_dir / "pca_scatter.png"
    save_figure(scatter, written["pca_scatter"])
    return written


def grid_key(label: str, side: str, index: int) -> str:
    return f"grid/{label}/side{side}_concept{index}"


def log_to_wandb(
    cfg: DictConfig,
    results: dict[str, Any],
    figures: dict[str, Path],
    output_dir: Path,
) -> Path | None:
    """Log config, metrics, figures and the per-concept table; returns the W&B run dir (if any)."""
    from PIL import Image

    metrics: dict[str, float] = {f"time/{k}": v for k, v in results["timings"].items()}
    for side, info in results["models"].items():
        if "val_acc" in info:
            metrics[f"model_{side}/val_acc"] = info["val_acc"]
    representations = results.get("representations") or {}
    if representations.get("cka") is not None:
        metrics["representations/cka"] = representations["cka"]
    for key, value in (representations.get("probe") or {}).items():
        if isinstance(value, (int, float)):
            metrics[f"representations/probe_{key}"] = value
    for side, separability in (results.get("planted") or {}).get("separability", {}).items():
        metrics[f"planted/pair_separability/{side}"] = separability["mean"]
    table_rows = []
    summary: dict[str, Any] = {"n_images": results["dataset"]["n_images"]}
    for label, method in results["methods"].items():
        for distance, distance_scores in method["metrics"].items():
            for metric in ("bsr", "tsd", "eq"):
                for side, value in distance_scores[metric].items():
                    metrics[f"{label}/{metric}_{distance}/{side}"] = value
        summary[f"{label}/mBSR_silb"] = method["metrics"]["silb"]["bsr"]["mean"]
        if "recovery" in method:
            for key in ("score", "A", "B"):
                metrics[f"{label}/recovery/{key}"] = method["recovery"][key]
            summary[f"{label}/recovery"] = method["recovery"]["score"]
        for direction, alignment in method["explanation"]["info"].get("alignment", {}).items():
            for key in ("initial_heldout_cka", "heldout_cka", "train_cka"):
                metrics[f"{label}/alignment_{direction}/{key}"] = alignment[key]
        for side in ("A", "B"):
            for key, value in method["grid_composition"][side].items():
                summary[f"{label}/grids_{side}/{key}"] = value
        for row in method["concepts"]:
            table_rows.append(
                [
                    label,
                    row["side"],
                    row["concept"],
                    row["size"],
                    row["score"],
                    " ".join(f"{k}:{v}" for k, v in row["grid_label_counts"].items()),
                    np.asarray(Image.open(figures[grid_key(label, row["side"], row["concept"])])),
                ]
            )

    with RunLogger(
        mode=cfg.logger.mode,
        project=cfg.logger.project,
        name=cfg.task_name,
        group=cfg.logger.group,
        tags=list(cfg.logger.tags),
        config=OmegaConf.to_container(cfg, resolve=True),
        dir=output_dir,
    ) as run:
        run.log_metrics(metrics)
        run.log_images({key: Image.open(path) for key, path in figures.items()})
        run.log_table(
            "concepts", ["method", "side", "concept", "size", "score", "grid_labels", "grid"], table_rows
        )
        run.update_summary(summary)
        return run.run_dir
