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

from rdx.data.mnist import images_to_tensor, load_mnist, select_per_class
from rdx.methods import Explanation, build_method
from rdx.metrics import explanation_scores
from rdx.models.features import extract_features
from rdx.sinks.files import save_figure, save_png, write_json_atomic
from rdx.sinks.wandb_logger import RunLogger
from rdx.training.checkpoints import load_convnet_checkpoint, read_index, select_checkpoint
from rdx.training.train import ensure_trained
from rdx.viz.grids import concept_grid_images, summary_figure
from rdx.viz.scatter import pca_scatter

log = logging.getLogger(__name__)

SIDE_DIRECTION = {"A": "01", "B": "10"}


@dataclass
class ImageSet:
    """The compared images: pixels, labels and where they come from in the source dataset."""

    images: np.ndarray  # (N, H, W) uint8
    labels: np.ndarray  # (N,) int64
    source_indices: np.ndarray  # (N,) positions in the source split


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
    """Load the dataset split and select ``n_per_class`` images of each class, deterministically."""
    if dataset_cfg.kind != "mnist":
        raise ValueError(f"unsupported dataset kind {dataset_cfg.kind!r} (supported: 'mnist')")
    images, labels = load_mnist(dataset_cfg.split, root=dataset_cfg.root, download=dataset_cfg.download)
    indices = select_per_class(labels, list(dataset_cfg.classes), dataset_cfg.n_per_class, dataset_cfg.seed)
    return ImageSet(images[indices], labels[indices], indices)


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
                    "direction": SIDE_DIRECTION[side],
                    "concept": concept.index,
                    "size": concept.size,
                    "mean_affinity": float(concept.score),
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


def run_compare(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Run one comparison and write results.json, figures and the W&B run into ``output_dir``.

    Returns the results dictionary that is also written to ``results.json``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
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
    inputs = images_to_tensor(image_set.images)
    features = {
        side: extract_features(
            model.network,
            inputs,
            layer=cfg[f"model_{side.lower()}"].layer,
            pooling=cfg[f"model_{side.lower()}"].pooling,
            batch_size=cfg.features.batch_size,
            device=device,
            progress=cfg.features.progress,
        )
        for side, model in models.items()
    }
    timings["features_s"] = time.perf_counter() - start

    start = time.perf_counter()
    method = build_method(cfg.method.name, **OmegaConf.to_container(cfg.method.params, resolve=True))
    explanation: Explanation = method.fit(features["A"], features["B"], y=image_set.labels).explanation_
    timings["method_s"] = time.perf_counter() - start

    start = time.perf_counter()
    scores = explanation_scores(explanation, features["A"], features["B"])
    timings["metrics_s"] = time.perf_counter() - start

    rows = concept_rows(explanation, image_set.labels)
    names = {side: models[side].name for side in ("A", "B")}
    results: dict[str, Any] = {
        "task_name": cfg.task_name,
        "method": {"name": cfg.method.name, "label": cfg.method.label},
        "models": {side: model.info for side, model in models.items()},
        "dataset": {
            "name": cfg.dataset.name,
            "n_images": int(len(image_set.labels)),
            "classes": list(cfg.dataset.classes),
            "source_indices": image_set.source_indices,
        },
        "features": {side: {"dim": int(f.shape[1])} for side, f in features.items()},
        "side_meaning": {
            "A": f"direction 01: what {names['A']} groups together that {names['B']} separates",
            "B": f"direction 10: what {names['B']} groups together that {names['A']} separates",
        },
        "explanation": explanation.to_dict(image_set.labels),
        "metrics": scores,
        "concepts": rows,
        "grid_composition": grid_composition_summary(rows),
    }

    start = time.perf_counter()
    pair = f"{describe(models['A'])} vs {describe(models['B'])}"
    title = f"{cfg.method.label}: {pair} · {cfg.dataset.name}, N={len(image_set.labels)}"
    figures_written = write_figures(
        explanation, image_set, features, names, output_dir, cfg.figures.grid_scale, title
    )
    timings["figures_s"] = time.perf_counter() - start
    results["figures"] = {key: str(path) for key, path in figures_written.items()}
    results["timings"] = timings
    write_json_atomic(output_dir / "results.json", results)

    wandb_dir = log_to_wandb(cfg, results, rows, figures_written, output_dir)
    if wandb_dir is not None:
        results["wandb_run_dir"] = str(wandb_dir)
        write_json_atomic(output_dir / "results.json", results)
    return results


def write_figures(
    explanation: Explanation,
    image_set: ImageSet,
    features: dict[str, np.ndarray],
    names: dict[str, str],
    output_dir: Path,
    grid_scale: int,
    title: str,
) -> dict[str, Path]:
    """Concept grids (one PNG each), the summary figure and the PCA scatter, into ``output_dir``."""
    written: dict[str, Path] = {}
    for (side, index), grid in concept_grid_images(explanation, image_set.images, scale=grid_scale).items():
        key = f"grid_{side}_{SIDE_DIRECTION[side]}_concept{index}"
        written[key] = output_dir / "grids" / f"{key}.png"
        save_png(grid, written[key])
    side_titles = {
        "A": f"{names['A']} groups, {names['B']} separates (01)",
        "B": f"{names['B']} groups, {names['A']} separates (10)",
    }
    figure = summary_figure(explanation, image_set.images, image_set.labels, side_titles, title=title)
    written["summary"] = output_dir / "summary.png"
    save_figure(figure, written["summary"])
    scatter = pca_scatter(
        features["A"], features["B"], image_set.labels, (names["A"], names["B"]), explanation=explanation
    )
    written["pca_scatter"] = output_dir / "pca_scatter.png"
    save_figure(scatter, written["pca_scatter"])
    return written


def log_to_wandb(
    cfg: DictConfig,
    results: dict[str, Any],
    rows: list[dict[str, Any]],
    figures: dict[str, Path],
    output_dir: Path,
) -> Path | None:
    """Log config, metrics, figures and the per-concept table; returns the W&B run dir (if any)."""
    from PIL import Image

    metrics: dict[str, float] = {f"time/{k}": v for k, v in results["timings"].items()}
    for side, info in results["models"].items():
        if "val_acc" in info:
            metrics[f"model_{side}/val_acc"] = info["val_acc"]
    for distance, distance_scores in results["metrics"].items():
        for metric in ("bsr", "tsd", "eq"):
            for side, value in distance_scores[metric].items():
                metrics[f"{metric}_{distance}/{side}"] = value
    for direction, alignment in results["explanation"]["info"].get("alignment", {}).items():
        for key in ("initial_heldout_cka", "heldout_cka", "train_cka"):
            metrics[f"alignment_{direction}/{key}"] = alignment[key]
    for row in rows:
        prefix = f"concept/{row['side']}{row['concept']}"
        metrics[f"{prefix}/size"] = row["size"]
        metrics[f"{prefix}/mean_affinity"] = row["mean_affinity"]
        metrics[f"{prefix}/grid_majority_fraction"] = row["grid_majority_fraction"]

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
        table_rows = []
        for row in rows:
            key = f"grid_{row['side']}_{row['direction']}_concept{row['concept']}"
            table_rows.append(
                [
                    row["side"],
                    row["direction"],
                    row["concept"],
                    row["size"],
                    row["mean_affinity"],
                    " ".join(f"{k}:{v}" for k, v in row["grid_label_counts"].items()),
                    np.asarray(Image.open(figures[key])),
                ]
            )
        run.log_table(
            "concepts",
            ["side", "direction", "concept", "size", "mean_affinity", "grid_labels", "grid"],
            table_rows,
        )
        summary = {"n_images": results["dataset"]["n_images"]}
        for side in ("A", "B"):
            for key, value in results["grid_composition"][side].items():
                summary[f"grids_{side}/{key}"] = value
        run.update_summary(summary)
        return run.run_dir
