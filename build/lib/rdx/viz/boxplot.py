"""The benchmark's BSR box plot: one box per method over its per-grid BSR values, points jittered on top."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

CHANCE_BSR = 0.5  # a grid the two models order at random scores this on average


def bsr_boxplot(
    values: Mapping[str, Sequence[float] | np.ndarray],
    title: str | None = None,
    ylabel: str = "BSR (SILB)",
    jitter: float = 0.12,
    seed: int = 0,
) -> Figure:
    """Box plot of BSR per method, each grid's value drawn as a jittered point, dashed line at chance.

    Args:
        values: method label → BSR of each grid (both sides, all comparisons), in [0, 1]; the box
            order is the mapping's order. A method without values gets an empty slot.
        title: figure title.
        ylabel: y-axis label.
        jitter: half-width of the uniform horizontal jitter of the points, in box widths.
        seed: jitter seed (the same figure for the same input).
    """
    labels = list(values)
    data = [np.asarray(values[label], dtype=np.float64) for label in labels]
    figure = Figure(figsize=(max(4.0, 0.9 * len(labels) + 1.5), 4.0), layout="constrained")
    ax = figure.add_subplot()
    positions = np.arange(1, len(labels) + 1)
    filled = [i for i, points in enumerate(data) if points.size]
    if filled:
        ax.boxplot(
            [data[i] for i in filled],
            positions=positions[filled],
            widths=0.6,
            showfliers=False,  # every point is drawn below; outlier markers would repeat them
            medianprops={"color": "black"},
            boxprops={"facecolor": "#d9e6f2"},
            patch_artist=True,
        )
    rng = np.random.default_rng(seed)
    for position, points in zip(positions, data, strict=True):
        offsets = rng.uniform(-jitter, jitter, size=points.size)
        ax.scatter(position + offsets, points, s=12, alpha=0.6, color="#1f4e79", zorder=3, linewidths=0)
    ax.axhline(CHANCE_BSR, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(
        positions, labels, rotation=30 if len(labels) > 5 else 0, ha="right" if len(labels) > 5 else "center"
    )
    ax.set_xlim(0.4, len(labels) + 0.6)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower right", frameon=False)
    if title:
        ax.set_title(title)
    return figure
