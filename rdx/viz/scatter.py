"""2-D PCA views of both representations, with each side's concept grids outlined in its own model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rdx.methods.embedding import pca_2d, pca_embedding
from rdx.methods.explanation import SIDES, Explanation

# pca_2d and pca_embedding live in rdx.methods.embedding (no matplotlib there); named here for callers
__all__ = ["pca_2d", "pca_embedding", "pca_scatter", "subsample_indices"]


def subsample_indices(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most ``max_points`` of ``n`` points, the same for the same seed."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def _label_colours(n_labels: int) -> list:
    if n_labels <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n_labels)]
    if n_labels <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n_labels)]
    cmap = matplotlib.colormaps["turbo"]
    return [cmap(i / max(1, n_labels - 1)) for i in range(n_labels)]


def label_colours_hex(labels: np.ndarray) -> dict[int, str]:
    """Each distinct label's colour in the figures (as :func:`pca_scatter` draws it), as CSS hex."""
    unique_labels = np.unique(np.asarray(labels))
    colours = _label_colours(len(unique_labels))
    return {
        int(label): matplotlib.colors.to_hex(colour)
        for label, colour in zip(unique_labels, colours, strict=True)
    }


# Dark outline colours, one per concept, that stay readable over the label colours (tab10/tab20).
_CONCEPT_OUTLINE_COLOURS = ("black", "#762a83", "#8c510a", "#01665e", "#c51b7d", "#2b5797", "#4d4d4d")


def _draw_concepts(ax: Axes, coordinates: np.ndarray, explanation: Explanation, side: str) -> None:
    """Outline each concept's grid images and mark the concept number at the grid's centre."""
    for position, concept in enumerate(explanation.concepts.get(side, [])):
        colour = _CONCEPT_OUTLINE_COLOURS[position % len(_CONCEPT_OUTLINE_COLOURS)]
        grid = np.asarray(concept.grid, dtype=np.int64)
        if grid.size == 0:
            continue
        points = coordinates[grid]
        ax.scatter(
            points[:, 0], points[:, 1], s=60, facecolors="none", edgecolors=colour, linewidths=1.3, zorder=3
        )
        centre = points.mean(axis=0)
        ax.annotate(
            str(concept.index),
            centre,
            ha="center",
            va="center",
            fontsize=8,
            fontweight="bold",
            color=colour,
            zorder=4,
            bbox=dict(
                boxstyle="circle,pad=0.2", facecolor="white", edgecolor=colour, linewidth=0.9, alpha=0.9
            ),
        )


def pca_scatter(
    X_A: np.ndarray | None,
    X_B: np.ndarray | None,
    labels: np.ndarray | None,
    names: tuple[str, str],
    explanation: Explanation | None = None,
    max_points: int = 5000,
    seed: int = 0,
    label_names: Mapping[int, str] | Sequence[str] | None = None,
    embedding: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> Figure:
    """Two panels: the 2-D PCA of X_A and of X_B, points coloured by label.

    Args:
        X_A, X_B: representations of the same N images (N, d_A) and (N, d_B).
        labels: integer label per image (N,), or None for one colour.
        names: display names of model A and model B.
        explanation: when given, side A's concept grids are outlined in A's panel and side B's in B's,
            each marked with its concept number.
        max_points: points drawn per panel; above it a seeded subsample is drawn (PCA still uses all).
        seed: for the subsample and PCA.
        label_names: optional names for the integer labels in the legend.
        embedding: the coordinates and variance ratios of :func:`pca_embedding`, when already computed
            (X_A and X_B may then be None).
    """
    if embedding is None:
        X_A, X_B = np.asarray(X_A), np.asarray(X_B)
        if len(X_A) != len(X_B):
            raise ValueError(f"X_A and X_B must describe the same images, got {len(X_A)} and {len(X_B)} rows")
        embedding = pca_embedding(X_A, X_B, seed)
    n_points = len(embedding["A"][0])
    shown = subsample_indices(n_points, max_points, seed)
    figure = Figure(figsize=(11, 5), layout="constrained")
    axes = figure.subplots(1, 2)
    legend_handles = None
    for ax, name, side in zip(axes, names, SIDES, strict=True):
        coordinates, ratios = embedding[side]
        if labels is None:
            ax.scatter(*coordinates[shown].T, s=6, alpha=0.6, color="tab:blue", linewidths=0)
        else:
            labels = np.asarray(labels)
            unique_labels = np.unique(labels)
            for label, colour in zip(unique_labels, _label_colours(len(unique_labels)), strict=True):
                chosen = shown[labels[shown] == label]
                text = str(label) if label_names is None else str(label_names[int(label)])
                ax.scatter(*coordinates[chosen].T, s=6, alpha=0.6, color=colour, linewidths=0, label=text)
            legend_handles = ax.get_legend_handles_labels()
        if explanation is not None:
            _draw_concepts(ax, coordinates, explanation, side)
        ax.set_title(f"{side}: {name}", fontsize=11)
        ax.set_xlabel(f"PC1 ({ratios[0]:.0%} var)")
        ax.set_ylabel(f"PC2 ({ratios[1]:.0%} var)")
        ax.tick_params(labelsize=8)
    if legend_handles is not None and legend_handles[0]:
        figure.legend(
            *legend_handles,
            loc="outside right center",
            title="label",
            markerscale=2.5,
            fontsize=8,
            frameon=False,
        )
    if len(shown) < n_points:
        figure.suptitle(f"{len(shown)} of {n_points} points shown", fontsize=9, color="0.4")
    return figure
