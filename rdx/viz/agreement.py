"""The agreement matrix of a run's methods: per side, the mean matched member Jaccard of every pair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

SIDE_TITLES = {"A": "side A", "B": "side B"}


def agreement_matrix(agreement: Mapping[str, Any], side: str) -> tuple[list[str], np.ndarray]:
    """The methods and their symmetric (m, m) mean-Jaccard matrix on one side of an
    ``Agreement.to_dict()``; 1 on the diagonal, NaN where a method shows no concept on the side."""
    methods = list(agreement["methods"])
    position = {method: i for i, method in enumerate(methods)}
    matrix = np.eye(len(methods))
    for pair in agreement["pairs"].get(side, []):
        value = pair["mean_jaccard"]
        i, j = position[pair["first"]], position[pair["second"]]
        matrix[i, j] = matrix[j, i] = np.nan if value is None else float(value)
    return methods, matrix


def agreement_figure(agreement: Mapping[str, Any], titles: Mapping[str, str] | None = None) -> Figure:
    """Two heat maps (side A, side B) of the mean matched member Jaccard of every pair of methods."""
    titles = {**SIDE_TITLES, **(titles or {})}
    sides: Sequence[str] = [side for side in ("A", "B") if side in agreement["pairs"]]
    methods = list(agreement["methods"])
    size = 1.2 + 0.55 * len(methods)
    figure = Figure(figsize=(size * len(sides) + 0.8, size), layout="constrained")
    axes = figure.subplots(1, len(sides), squeeze=False)[0]
    image = None
    for ax, side in zip(axes, sides, strict=True):
        _, matrix = agreement_matrix(agreement, side)
        image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0, vmax=1, cmap="viridis")
        for (i, j), value in np.ndenumerate(matrix):
            text = "–" if np.isnan(value) else f"{value:.2f}"
            ax.text(
                j, i, text, ha="center", va="center", fontsize=7, color="white" if value < 0.6 else "black"
            )
        ax.set_xticks(range(len(methods)), methods, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
        ax.set_title(titles[side], fontsize=9)
    if image is not None:
        figure.colorbar(image, ax=list(axes), shrink=0.8, label="mean matched member Jaccard")
    return figure
