"""Figures of a trajectory (rdx.report.trajectory): scores against model A's training step or layer
depth, and a strip of each point's top concept per side. Figures only; the sinks write them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

_SIDE_MEANING = {"A": "A groups, B separates", "B": "B groups, A separates"}


def trajectory_figure(
    table: pd.DataFrame,
    methods: Sequence[str],
    main: str,
    title: str | None = None,
    x: str = "step",
    x_title: str = "training step of model A",
    tick_labels: Sequence[str] | None = None,
) -> Figure:
    """Five panels against model A's position (x, shared): validation accuracy of A (and B), debiased
    CKA, probe accuracy of A and B, mBSR (SILB) of every method, and the sizes of the main method's
    concepts per side (one point per concept, the total as a line).

    Args:
        table: rdx.report.trajectory.trajectory_table (columns ``x``, ``val_acc_A``, ``val_acc_B``,
            ``cka``, ``probe_acc_A``, ``probe_acc_B``, ``mbsr_silb/<method>``, ``concept_sizes_<side>``
            as space-separated sizes); rows in x order.
        methods: the method labels to draw mBSR for, in legend order.
        main: the main method's label (the concept-size panel).
        title: figure title.
        x: the column on the x axis ("step", or "depth" for a layer trajectory).
        x_title: the x axis label.
        tick_labels: one label per row, written at its x (a layer trajectory's layer names); None keeps
            matplotlib's numeric ticks.
    """
    positions = table[x].to_numpy()
    figure = Figure(figsize=(8.0, 12.0), layout="constrained")
    axes = figure.subplots(5, 1, sharex=True)
    accuracy, cka, probe, mbsr, sizes = axes

    accuracy.plot(positions, table["val_acc_A"], marker="o", ms=3, label="model A")
    if table["val_acc_B"].notna().any():
        accuracy.plot(positions, table["val_acc_B"], ls="--", label="model B")
    accuracy.set_ylabel("validation accuracy")
    cka.plot(positions, table["cka"], marker="o", ms=3, color="tab:purple")
    cka.set_ylabel("CKA (debiased)")
    probe.plot(positions, table["probe_acc_A"], marker="o", ms=3, label="model A")
    probe.plot(positions, table["probe_acc_B"], ls="--", label="model B")
    probe.set_ylabel("probe accuracy")
    for label in methods:
        column = f"mbsr_silb/{label}"
        if column in table:
            bold = label == main
            mbsr.plot(
                positions, table[column], marker="o", ms=3 if bold else 2, lw=2 if bold else 1, label=label
            )
    mbsr.axhline(0.5, color="grey", lw=0.8, ls=":")
    mbsr.set_ylabel("mBSR (SILB)")
    for side, colour in (("A", "tab:blue"), ("B", "tab:orange")):
        column = f"concept_sizes_{side}"
        if column not in table:
            continue
        per_point = [_sizes(value) for value in table[column]]
        xs = [position for position, values in zip(positions, per_point, strict=True) for _ in values]
        ys = [size for values in per_point for size in values]
        sizes.scatter(xs, ys, s=10, color=colour, alpha=0.6)
        totals = [sum(values) if values else np.nan for values in per_point]
        sizes.plot(positions, totals, color=colour, label=f"side {side} ({_SIDE_MEANING[side]}), total")
    sizes.set_ylabel(f"{main} concept sizes")
    sizes.set_xlabel(x_title)
    if tick_labels is not None:
        sizes.set_xticks(positions, list(tick_labels), rotation=30, ha="right", fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    if title:
        figure.suptitle(title)
    return figure


def _sizes(value: object) -> list[int]:
    """Space-separated sizes ("75 63 48") as ints; empty or NaN is none."""
    if not isinstance(value, str):
        return []
    return [int(part) for part in value.split()]


def concept_strip_figure(
    strip: Sequence[tuple[str, Mapping[str, np.ndarray | None]]],
    main: str,
    along: str = "step",
    column_inches: float = 1.4,
) -> Figure:
    """One column per point, one row per side: each point's top concept grid (a uint8 image), or an
    empty panel where the run has none.

    Args:
        strip: (column title, {"A": image | None, "B": image | None}) in axis order
            (rdx.report.trajectory.top_concept_images).
        main: the main method's label (the title).
        along: what a column is a point of, for the title ("step", "depth").
        column_inches: width of one point's column.
    """
    n = max(1, len(strip))
    figure = Figure(
        figsize=(max(3.0, column_inches * n + 0.8), 2 * column_inches + 0.8), layout="constrained"
    )
    axes = np.atleast_2d(figure.subplots(2, n, squeeze=False))
    for column, (name, images) in enumerate(strip):
        for row, side in enumerate(("A", "B")):
            ax = axes[row, column]
            image = images.get(side)
            if image is not None:
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
            else:
                ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=8, color="grey")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=8)
            if column == 0:
                ax.set_ylabel(f"side {side}\n{_SIDE_MEANING[side]}", fontsize=7)
    figure.suptitle(f"{main}: top concept per side at each {along} of model A", fontsize=9)
    return figure
