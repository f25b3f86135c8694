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
from torch.utils.data import DataLoader

from rdx.cache import FeatureCache, cache_key
from rdx.data.imageset import ImageSet, ModelInputs
from rdx.data.mnist import MNIST_MEAN, MNIST_STD, flip_images, images_to_tensor, load_mnist, select_per_class
from rdx.devices import resolve_device
from rdx.hashing import array_digest, file_digest
from rdx.methods import Explanation, build_method
from rdx.metrics import explanation_scores
from rdx.metrics.planted import check_pairs, pair_separability, recovery_scores
from rdx.metrics.representations import representation_scores
from rdx.models.registry import LoadedNetwork, ModelSourceError, check_weights, load_network
from rdx.runs import resume_finished_run, run_key
from rdx.sinks.files import save_figure, save_png, write_json_atomic
from rdx.sinks.wandb_logger import RunLogger
from rdx.training.checkpoints import read_index, select_checkpoint
from rdx.training.train import ensure_trained
from rdx.viz.grids import comparison_figure, concept_grid_images, summary_figure
from rdx.viz.scatter import pca_scatter

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """One compared model: a network ready for extraction, or (``kind`` "precomputed") a feature file."""

    name: str
    kind: str
    info: dict[str, Any]
    loaded: LoadedNetwork | None = None


DATASET_KINDS = ("mnist", "fashion_mnist", "image_folder", "inat", "precomputed")


def load_image_set(dataset_cfg: DictConfig) -> ImageSet:
    """The compared images of a dataset config (``kind`` one of :data:`DATASET_KINDS`).

    ``mnist`` / ``fashion_mnist``: ``n_per_class`` images of each of ``classes`` from ``split``,
    chosen deterministically by ``seed``. ``image_folder``: one sub-folder per class under ``root``
    (classes by folder name, e.g. ImageNet synset ids, or by index into the sorted folders); ``inat``:
    the same with classes named by species (iNaturalist 2021 folders end with ``_Genus_species``);
    ``precomputed``: rows of feature files, labels from ``labels_file``, images (optional) from
    ``image_list``. Grids show each dataset's own images.
    """
    kind = dataset_cfg.kind
    if kind == "mnist":
        return _load_mnist_set(dataset_cfg)
    if kind == "fashion_mnist":
        from rdx.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist

        images, labels = load_fashion_mnist(dataset_cfg.split, dataset_cfg.root, dataset_cfg.download)
        classes = [int(c) for c in dataset_cfg.classes]
        indices = select_per_class(labels, classes, dataset_cfg.n_per_class, dataset_cfg.seed)
        names = {c: FASHION_MNIST_CLASSES[c] for c in classes}
        return ImageSet(images[indices], labels[indices], indices, names)
    if kind in ("image_folder", "inat"):
        from rdx.data.folders import load_image_folder

        class_names = dataset_cfg.get("class_names")
        return load_image_folder(
            dataset_cfg.root,
            list(dataset_cfg.classes),
            dataset_cfg.n_per_class,
            seed=dataset_cfg.seed,
            class_names=list(class_names) if class_names is not None else None,
            match="species" if kind == "inat" else "exact",
            thumbnail_size=dataset_cfg.thumbnail_size,
            progress=dataset_cfg.get("progress", True),
        )
    if kind == "precomputed":
        from rdx.data.precomputed import load_precomputed_dataset

        class_names = dataset_cfg.get("class_names")
        if class_names is not None:
            class_names = OmegaConf.to_container(class_names, resolve=True)
        classes = dataset_cfg.get("classes")
        return load_precomputed_dataset(
            dataset_cfg.labels_file,
            n_per_class=dataset_cfg.get("n_per_class"),
            seed=dataset_cfg.seed,
            classes=list(classes) if classes is not None else None,
            image_list=dataset_cfg.get("image_list"),
            image_root=dataset_cfg.get("image_root"),
            class_names=class_names,
            thumbnail_size=dataset_cfg.thumbnail_size,
            progress=dataset_cfg.get("progress", True),
        )
    raise ValueError(f"unsupported dataset kind {kind!r} (supported: {', '.join(DATASET_KINDS)})")


def _load_mnist_set(dataset_cfg: DictConfig) -> ImageSet:
    """MNIST: ``n_per_class`` images of each class; with ``flip`` set, each class also gets
    ``n_per_class`` other images of it mirrored, labelled class + ``flip_label_offset``: 2 * n_per_class
    images are drawn per class, alternate ones flipped."""
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


# The key under which each kind keeps its weights file in a model config.
_WEIGHTS_KEY = {
    "convnet": "checkpoint",
    "torchvision": "weights_file",
    "timm": "checkpoint",
    "open_clip": "checkpoint",
}


def load_model(model_cfg: DictConfig, checkpoint_root: Path, config_key: str, seed: int = 0) -> LoadedModel:
    """Load one compared model through the model registry (:func:`rdx.models.registry.load_network`).

    A model with a ``training`` section and no weights file is trained by ``rdx-train`` first when its
    checkpoints are missing; ``select`` picks the checkpoint. ``kind: precomputed`` models are feature
    files (``file``, optional ``exclude_columns``, ``key``), read when features are needed. Random-init
    networks are seeded with ``seed``.
    """
    spec = OmegaConf.to_container(model_cfg, resolve=True)
    kind = spec.get("kind")
    name = spec.get("label") or spec.get("name") or kind  # label: what figures call it
    if kind == "precomputed":
        info = {
            "name": name,
            "kind": kind,
            "file": spec["file"],
            "exclude_columns": list(spec.get("exclude_columns") or []),
            "key": spec.get("key"),
        }
        return LoadedModel(name, kind, info)
    info: dict[str, Any] = {}
    weights_key = _WEIGHTS_KEY.get(kind, "checkpoint")
    if spec.get("training") is not None and not spec.get(weights_key):
        run_dir = ensure_trained(spec["training"], checkpoint_root)
        select = spec["select"]
        row = select_checkpoint(
            read_index(run_dir), select["strategy"], select["target"], select["min_acc"], select["max_acc"]
        )
        spec[weights_key] = row["path"]
        info.update(
            training_run=str(run_dir),
            selection=select["strategy"],
            step=int(row["step"]),
            epoch=int(row["epoch"]),
            val_acc=float(row["val_acc"]),
        )
    elif spec.get(weights_key):
        info["selection"] = f"explicit {weights_key}"
    torch.manual_seed(seed)  # random-init networks are the same in every run
    loaded = load_network(spec, config_key)
    info = {
        **loaded.info,
        **info,
        "name": name,
        "layer": loaded.default_layer,
        "pooling": loaded.default_pooling,
    }
    info["checkpoint"] = loaded.info.get("weights_file")
    return LoadedModel(name, kind, info, loaded)


def check_model_source(model_cfg: DictConfig, config_key: str) -> None:
    """Fail at once, before any model is built, when a model's weights or feature file are missing
    (:class:`ModelSourceError` naming the file and the override). Models trained on demand pass."""
    spec = OmegaConf.to_container(model_cfg, resolve=True)
    kind = spec.get("kind")
    if kind == "precomputed":
        if not Path(spec["file"]).expanduser().is_file():
            raise ModelSourceError(
                f"precomputed features {spec.get('name')!r}: file {spec['file']} does not exist. Point at a "
                f"local copy with {config_key}.file=/path/to/features.npy"
            )
    elif spec.get("training") is None or spec.get(_WEIGHTS_KEY.get(kind, "checkpoint")):
        check_weights(spec, config_key)


def feature_cache_parts(model: LoadedModel, image_set: ImageSet, device: torch.device, seed: int) -> dict:
    """What the features of ``model`` on ``image_set`` depend on: the feature-cache key's parts."""
    assert model.loaded is not None
    info = model.info
    if _is_mnist_convnet(model, image_set):
        preprocessing = f"mnist_normalize_{MNIST_MEAN}_{MNIST_STD}"  # images_to_tensor; keys of old entries
        images = array_digest(image_set.images)
    else:
        preprocessing = repr(model.loaded.transform)
        images = image_set.digest()
    if info.get("weights_file"):
        weights = file_digest(info["weights_file"])
    else:  # a random-init network: the seed and the library versions decide the weights
        weights = f"{info['kind']}:{info['name']}:{info['weights']}:seed{seed}:torch{torch.__version__}"
    parts = {
        "kind": "features",
        "checkpoint": weights,
        "layer": info["layer"],
        "pooling": info["pooling"],
        "preprocessing": preprocessing,
        "images": images,
        "device": device.type,
    }
    if info["kind"] != "convnet":
        parts["model"] = f"{info['kind']}:{info['name']}"
    return parts


def _is_mnist_convnet(model: LoadedModel, image_set: ImageSet) -> bool:
    """The project's ConvNet on 28 x 28 grayscale arrays: preprocessed in one tensor operation."""
    return model.kind == "convnet" and image_set.paths is None and image_set.images.shape[1:] == (28, 28)


def compute_features(
    model: LoadedModel, image_set: ImageSet, features_cfg: DictConfig, device: torch.device
) -> np.ndarray:
    """(N, d) float32 features of ``model`` on ``image_set`` (no caching here)."""
    if model.loaded is None:  # precomputed: the dataset's rows of the feature file
        from rdx.data.precomputed import load_feature_file

        matrix = load_feature_file(
            model.info["file"], model.info["exclude_columns"] or None, key=model.info["key"]
        )
        return np.ascontiguousarray(matrix[image_set.source_indices], dtype=np.float32)
    if _is_mnist_convnet(model, image_set):
        inputs: Any = images_to_tensor(image_set.images)
    else:
        inputs = DataLoader(
            ModelInputs(image_set, model.loaded.transform),
            batch_size=features_cfg.batch_size,
            num_workers=features_cfg.get("num_workers", 0),
            pin_memory=device.type == "cuda",
        )
    return model.loaded.extract(
        inputs,
        batch_size=features_cfg.batch_size,
        device=device,
        progress=features_cfg.progress,
    )


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
    for side in ("a", "b"):
        check_model_source(cfg[f"model_{side}"], f"model_{side}")
    models = {
        side: load_model(cfg[f"model_{side.lower()}"], checkpoint_root, f"model_{side.lower()}", cfg.seed)
        for side in ("A", "B")
    }
    timings["models_s"] = time.perf_counter() - start

    start = time.perf_counter()
    cache = FeatureCache(cfg.cache.dir, enabled=cfg.cache.enabled)
    features, cache_status = {}, {}
    for side, model in models.items():
        if model.loaded is None:
            features[side], cache_status[side] = (
                compute_features(model, image_set, cfg.features, device),
                "file",
            )
            continue
        parts = feature_cache_parts(model, image_set, device, cfg.seed)

        def compute(model=model) -> np.ndarray:
            return compute_features(model, image_set, cfg.features, device)

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
            "classes": OmegaConf.to_container(cfg.dataset.classes, resolve=True)
            if cfg.dataset.get("classes") is not None
            else sorted(int(label) for label in np.unique(image_set.labels)),
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
