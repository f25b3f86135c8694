"""Every figure of one comparison, drawn from its run record (in memory; the sinks write and log them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from rdx.record import RunResult
from rdx.sinks.files import safe_component
from rdx.viz.agreement import agreement_figure
from rdx.viz.grids import comparison_figure, concept_grid_images, summary_figure
from rdx.viz.scatter import pca_scatter


def grid_key(label: str, side: str, index: int) -> str:
    """The name of one concept grid among a run's figures (and its path below the run dir, + .png); the
    method label as a safe folder name (``method.label=../../x`` stays inside the run dir)."""
    return f"grid/{safe_component(label)}/side{side}_concept{index}"


def _describe(model: Mapping[str, Any]) -> str:
    accuracy = model.get("val_acc")
    return model["name"] if accuracy is None else f"{model['name']} ({100 * accuracy:.1f} % val)"


def comparison_figures(
    record: RunResult,
    images: np.ndarray,
    labels: np.ndarray,
    embedding: Mapping[str, tuple[np.ndarray, np.ndarray]],
    grid_scale: int,
) -> dict[str, Figure | np.ndarray]:
    """Per method one grid image per concept (uint8 arrays under :func:`grid_key`), the main method's
    ``summary`` figure, a ``comparison`` figure of all methods (when there are several), the methods'
    ``agreement`` matrix (when the record has one) and the ``pca_scatter`` with the main method's grids
    outlined.

    Args:
        record: the run record, with every method's members in memory.
        images, labels: the compared images (N, H, W[, 3]) uint8 and their labels (N,).
        embedding: per side the 2-D PCA coordinates and variance ratios (``rdx.viz.pca_embedding``).
        grid_scale: nearest-neighbour upscaling of each grid image.
    """
    explanations = {label: method.to_explanation() for label, method in record.methods.items()}
    names = {side: record.models[side]["name"] for side in ("A", "B")}
    label_names = record.label_names
    title = (
        f"{_describe(record.models['A'])} vs {_describe(record.models['B'])} · "
        f"{record.dataset['name']}, N={len(labels)}"
    )
    figures: dict[str, Figure | np.ndarray] = {}
    for label, explanation in explanations.items():
        for (side, index), grid in concept_grid_images(explanation, images, scale=grid_scale).items():
            figures[grid_key(label, side, index)] = grid
    main = explanations[record.main_method]
    rdx_titles = {
        "A": f"{names['A']} groups, {names['B']} separates (01)",
        "B": f"{names['B']} groups, {names['A']} separates (10)",
    }
    figures["summary"] = summary_figure(
        main, images, labels, rdx_titles, title=f"{record.main_method}: {title}", label_names=label_names
    )
    if len(explanations) > 1:
        model_titles = {side: f"model {side} = {names[side]}" for side in ("A", "B")}
        figures["comparison"] = comparison_figure(
            explanations, images, labels, model_titles, title=title, label_names=label_names
        )
    if record.agreement is not None:
        figures["agreement"] = agreement_figure(
            record.agreement,
            {side: f"side {side}: {rdx_titles[side]}" for side in ("A", "B")},
        )
    figures["pca_scatter"] = pca_scatter(
        None,
        None,
        labels,
        (names["A"], names["B"]),
        explanation=main,
        label_names=label_names,
        embedding=embedding,
    )
    return figures
