"""Image montages for concepts: one 3×3 grid per concept and a summary figure of both sides.

Everything here returns arrays or matplotlib figures and never writes files (the sinks write).
Figures are built with ``matplotlib.figure.Figure`` directly, so no pyplot global state or GUI backend
is involved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from rdx.methods.explanation import SIDES, Concept, Explanation, label_counts

# Target edge of one upscaled cell in pixels; MNIST's 28 px images get scale 4.
_TARGET_CELL_PIXELS = 112
_PANEL_INCHES = 2.3  # width of one concept panel in the summary figure
_CAPTION_WIDTH = 30  # characters per caption line; about one panel at font size 8
_NULL_FADE = 0.55  # how far the null cluster's grid is blended toward grey


def default_scale(image_height: int) -> int:
    """Integer nearest-neighbour upscale that brings small images to about 112 px (1 for large ones)."""
    return max(1, _TARGET_CELL_PIXELS // max(1, int(image_height)))


def _check_images(images: np.ndarray) -> np.ndarray:
    """Validate a uint8 image stack (n, H, W) or (n, H, W, 3); (n, H, W, 1) is squeezed to grey."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images.dtype}")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3):
        return images
    raise ValueError(f"images must have shape (n, H, W) or (n, H, W, 3), got {images.shape}")


def grid_image(
    images: np.ndarray,
    nrow: int = 3,
    ncol: int = 3,
    pad: int = 2,
    scale: int = 1,
    pad_value: int = 255,
) -> np.ndarray:
    """Montage of up to ``nrow * ncol`` images, filled row by row.

    Args:
        images: uint8 array (n, H, W) grey or (n, H, W, 3) RGB; images beyond ``nrow * ncol`` are dropped.
        nrow, ncol: grid shape; cells without an image stay blank (``pad_value``).
        pad: pixels of ``pad_value`` around and between cells.
        scale: integer nearest-neighbour upscale of each image.
        pad_value: grey level (0–255) of padding and blank cells.

    Returns:
        uint8 array (nrow·H·scale + (nrow+1)·pad, ncol·W·scale + (ncol+1)·pad), with a trailing
        channel axis of 3 for RGB input.
    """
    if nrow < 1 or ncol < 1 or pad < 0 or scale < 1:
        raise ValueError(f"need nrow, ncol, scale >= 1 and pad >= 0; got {nrow=}, {ncol=}, {pad=}, {scale=}")
    images = _check_images(images)
    height, width = images.shape[1] * scale, images.shape[2] * scale
    out_shape: tuple[int, ...] = (nrow * height + (nrow + 1) * pad, ncol * width + (ncol + 1) * pad)
    out_shape += images.shape[3:]
    canvas = np.full(out_shape, pad_value, dtype=np.uint8)
    for position, image in enumerate(images[: nrow * ncol]):
        row, col = divmod(position, ncol)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        canvas[top : top + height, left : left + width] = image.repeat(scale, axis=0).repeat(scale, axis=1)
    return canvas


def _concept_montage(concept: Concept, images: np.ndarray, scale: int) -> np.ndarray:
    return grid_image(images[np.asarray(concept.grid, dtype=np.int64)], scale=scale)


def concept_grid_images(
    explanation: Explanation,
    images: np.ndarray,
    scale: int | None = None,
    include_null: bool = False,
) -> dict[tuple[str, int], np.ndarray]:
    """One 3×3 montage per shown concept, keyed by (side, concept index).

    Args:
        explanation: the method's result; grids index into ``images``.
        images: the full uint8 image set (N, H, W) or (N, H, W, 3), same order as the representations.
        scale: upscale per image; None picks ``default_scale`` (4 for 28 px MNIST).
        include_null: also return each side's null cluster grid under (side, 0).
    """
    images = _check_images(images)
    scale = default_scale(images.shape[1]) if scale is None else scale
    montages: dict[tuple[str, int], np.ndarray] = {}
    for side in SIDES:
        null = explanation.null.get(side)
        if include_null and null is not None:
            montages[(side, 0)] = _concept_montage(null, images, scale)
        for concept in explanation.concepts.get(side, []):
            montages[(side, concept.index)] = _concept_montage(concept, images, scale)
    return montages


def _label_count_entries(
    values: Sequence[int] | np.ndarray, label_names: Mapping[int, str] | Sequence[str] | None
) -> list[str]:
    counts = label_counts([int(v) for v in values])
    if label_names is None:
        return [f"{label}:{count}" for label, count in counts.items()]
    return [f"{label_names[int(label)]}:{count}" for label, count in counts.items()]


def format_label_counts(
    values: Sequence[int] | np.ndarray, label_names: Mapping[int, str] | Sequence[str] | None = None
) -> str:
    """Label composition as "3:5 5:3 8:1" (most frequent first), optionally with class names."""
    return " ".join(_label_count_entries(values, label_names))


def _pack_lines(entries: list[str], width: int) -> str:
    """Join entries with spaces, starting a new line before an entry that would pass ``width``."""
    lines: list[str] = []
    for entry in entries:
        if lines and len(lines[-1]) + 1 + len(entry) <= width:
            lines[-1] += " " + entry
        else:
            lines.append(entry)
    return "\n".join(lines)


def _caption(
    concept: Concept,
    labels: np.ndarray | None,
    label_names: Mapping[int, str] | Sequence[str] | None,
    is_null: bool,
) -> str:
    head = "null" if is_null else f"concept {concept.index}"
    caption = f"{head} · n={concept.size} · score={concept.score:.3g}"
    if labels is not None and len(concept.grid) > 0:
        entries = _label_count_entries(np.asarray(labels)[np.asarray(concept.grid)], label_names)
        # Long class names would run into the neighbouring panel's caption: wrap between entries.
        caption += "\n" + _pack_lines(entries, _CAPTION_WIDTH)
    return caption


def _fade(montage: np.ndarray) -> np.ndarray:
    return (montage * (1 - _NULL_FADE) + 160 * _NULL_FADE).astype(np.uint8)


def _draw_panel(ax, montage: np.ndarray, caption: str, greyed: bool) -> None:
    if montage.ndim == 2:
        ax.imshow(montage, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(montage, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(caption, fontsize=8, color="0.45" if greyed else "black", linespacing=1.4)
    for spine in ax.spines.values():
        spine.set_visible(False)


def summary_figure(
    explanation: Explanation,
    images: np.ndarray,
    labels: np.ndarray | None,
    side_titles: Mapping[str, str],
    title: str = "",
    show_null: bool = False,
    scale: int | None = None,
    label_names: Mapping[int, str] | Sequence[str] | None = None,
) -> Figure:
    """Both sides of an explanation at a glance: one row per side, one 3×3 grid per concept.

    Args:
        explanation: the result to draw; the sides may hold different numbers of concepts.
        images: the full uint8 image set the grids index into.
        labels: one integer label per image (or None); each caption then lists the grid's label counts.
        side_titles: row titles per side, e.g. {"A": "strong groups, expert separates", ...};
            a missing side is titled "side A" / "side B".
        title: figure title.
        show_null: prepend each side's null cluster as a greyed panel (when the method has one).
        scale: upscale per image for the montages (None: ``default_scale``).
        label_names: optional names for the integer labels in captions.
    """
    return comparison_figure(
        {"": explanation}, images, labels, side_titles, title, show_null, scale, label_names
    )


def comparison_figure(
    explanations: Mapping[str, Explanation],
    images: np.ndarray,
    labels: np.ndarray | None,
    side_titles: Mapping[str, str],
    title: str = "",
    show_null: bool = False,
    scale: int | None = None,
    label_names: Mapping[int, str] | Sequence[str] | None = None,
) -> Figure:
    """Several methods' explanations laid out like the paper's comparison figure: for each method, one
    row per side (model), its grids side by side. Keys of ``explanations`` name the methods ("" for
    none); other arguments as in ``summary_figure``."""
    rows: list[tuple[str, str, list[tuple[Concept, bool, str, np.ndarray]]]] = []
    for method, explanation in explanations.items():
        montages = concept_grid_images(explanation, images, scale=scale, include_null=show_null)
        for side in SIDES:
            null = explanation.null.get(side)
            panels = [(null, True)] if show_null and null is not None else []
            panels += [(concept, False) for concept in explanation.concepts.get(side, [])]
            row_title = f"{side}: {side_titles.get(side, f'side {side}')}"
            if method:
                row_title = f"{method} · {row_title}"
            rows.append(
                (
                    side,
                    row_title,
                    [
                        (
                            c,
                            is_null,
                            _caption(c, labels, label_names, is_null),
                            montages[(side, 0 if is_null else c.index)],
                        )
                        for c, is_null in panels
                    ],
                )
            )
    ncols = max(1, *(len(panels) for *_, panels in rows))
    caption_lines = max(
        [caption.count("\n") + 1 for *_, panels in rows for _, _, caption, _ in panels] or [1]
    )
    # Per row: the row's title line, the square grid (panel width) and the caption lines at font size 8.
    title_inches = 0.35
    row_inches = _PANEL_INCHES + 0.1 + 0.16 * caption_lines
    figure = Figure(
        figsize=(
            _PANEL_INCHES * ncols + 0.4,
            len(rows) * (title_inches + row_inches) + (0.4 if title else 0),
        ),
        layout="constrained",
    )
    if title:
        figure.suptitle(title, fontsize=12, fontweight="bold")
    figure.get_layout_engine().set(h_pad=0.1)  # keep the last captions off the figure's edge
    # One grid spec with a title row above each row of panels (matplotlib subfigures clip the last
    # row's captions under constrained layout).
    layout = figure.add_gridspec(2 * len(rows), ncols, height_ratios=[title_inches, row_inches] * len(rows))
    for row, (_, row_title, panels) in enumerate(rows):
        title_axes = figure.add_subplot(layout[2 * row, :])
        title_axes.set_axis_off()
        title_axes.text(0.5, 0.5, row_title, ha="center", va="center", fontsize=10.5)
        axes = [figure.add_subplot(layout[2 * row + 1, column]) for column in range(ncols)]
        for ax in axes:
            ax.set_axis_off()
        if not panels:
            axes[0].text(0.5, 0.5, "no concepts", ha="center", va="center", color="0.5", fontsize=9)
        for ax, (_, is_null, caption, montage) in zip(axes, panels, strict=False):
            ax.set_axis_on()
            _draw_panel(ax, _fade(montage) if is_null else montage, caption, greyed=is_null)
    return figure
