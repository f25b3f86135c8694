"""Concept grids, the summary figure and the PCA scatter (arrays and figures only, nothing written)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from rdx.methods.explanation import Concept, Explanation
from rdx.viz import (
    concept_grid_images,
    default_scale,
    format_label_counts,
    grid_image,
    pca_scatter,
    summary_figure,
)


def make_images(n: int, height: int = 28, width: int = 28, rgb: bool = False, seed: int = 0) -> np.ndarray:
    shape = (n, height, width, 3) if rgb else (n, height, width)
    return np.random.default_rng(seed).integers(0, 255, size=shape, dtype=np.uint8)


def make_explanation(
    n: int = 60, concepts_a: int = 3, concepts_b: int = 2, with_null: bool = True
) -> Explanation:
    rng = np.random.default_rng(1)

    def concept(index: int) -> Concept:
        members = np.sort(rng.choice(n, size=12, replace=False))
        return Concept(index=index, members=members, grid=members[:9], score=float(rng.random()))

    return Explanation(
        method="synthetic",
        concepts={
            "A": [concept(i + 1) for i in range(concepts_a)],
            "B": [concept(i + 1) for i in range(concepts_b)],
        },
        null={"A": concept(0) if with_null else None, "B": None},
    )


def test_grid_image_grey_shape_padding_and_blank_cells() -> None:
    images = np.zeros((5, 4, 6), dtype=np.uint8)
    montage = grid_image(images, nrow=3, ncol=3, pad=2, scale=1, pad_value=255)
    assert montage.dtype == np.uint8
    assert montage.shape == (3 * 4 + 4 * 2, 3 * 6 + 4 * 2)
    # Outer border and gaps are padding.
    assert (montage[:2] == 255).all() and (montage[:, :2] == 255).all()
    assert (montage[6:8] == 255).all()
    # First cell is the image, cells 6..9 (row 2 col 3 and row 3) are blank.
    assert (montage[2:6, 2:8] == 0).all()
    assert (montage[2:6, 2 + 2 * 8 : 8 + 2 * 8] == 0).all()  # 3rd image, row 1
    assert (montage[10:14, 2 + 2 * 8 : 8 + 2 * 8] == 255).all()  # 6th cell blank
    assert (montage[18:, :] == 255).all()  # last row blank


def test_grid_image_rgb_scale_and_truncation() -> None:
    images = make_images(12, 5, 7, rgb=True)
    montage = grid_image(images, nrow=2, ncol=3, pad=1, scale=3, pad_value=0)
    assert montage.shape == (2 * 15 + 3, 3 * 21 + 4, 3)
    first = montage[1:16, 1:22]
    np.testing.assert_array_equal(first[::3, ::3], images[0])  # nearest-neighbour upscale
    np.testing.assert_array_equal(first[2::3, 2::3], images[0])
    last = montage[1 + 16 : 1 + 16 + 15, 1 + 2 * 22 : 1 + 2 * 22 + 21]
    np.testing.assert_array_equal(last[::3, ::3], images[5])  # images past nrow*ncol are dropped


def test_grid_image_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        grid_image(np.zeros((2, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        grid_image(np.zeros((4, 4), dtype=np.uint8))
    single_channel = grid_image(np.zeros((2, 4, 4, 1), dtype=np.uint8), pad=0)
    assert single_channel.shape == (12, 12)


def test_concept_grid_images_one_per_shown_concept() -> None:
    explanation = make_explanation()
    images = make_images(60)
    montages = concept_grid_images(explanation, images)
    assert set(montages) == {("A", 1), ("A", 2), ("A", 3), ("B", 1), ("B", 2)}
    scale = default_scale(28)
    assert scale == 4
    assert montages[("A", 1)].shape == (3 * 28 * scale + 8, 3 * 28 * scale + 8)
    with_null = concept_grid_images(explanation, images, scale=1, include_null=True)
    assert ("A", 0) in with_null and ("B", 0) not in with_null


def test_format_label_counts_most_frequent_first() -> None:
    assert format_label_counts([5, 3, 3, 8, 3, 5, 3, 5, 3]) == "3:5 5:3 8:1"
    assert format_label_counts([1, 0, 1], label_names=["cat", "dog"]) == "dog:2 cat:1"


@pytest.mark.parametrize("rgb", [False, True])
def test_summary_figure_sides_with_different_counts(tmp_path, rgb: bool) -> None:
    explanation = make_explanation(concepts_a=3, concepts_b=1)
    images = make_images(60, 16, 16, rgb=rgb)
    labels = np.arange(60) % 3
    figure = summary_figure(
        explanation,
        images,
        labels,
        side_titles={"A": "A groups, B separates", "B": "B groups, A separates"},
        title="synthetic",
        show_null=True,
    )
    assert isinstance(figure, Figure)
    captions = [ax.get_xlabel() for ax in figure.get_axes() if ax.get_xlabel()]
    assert len(captions) == 3 + 1 + 1  # A: null + 3 concepts, B: 1 concept
    assert any(caption.startswith("concept 1 · n=12 · score=") for caption in captions)
    figure.savefig(tmp_path / "summary.png")
    assert (tmp_path / "summary.png").stat().st_size > 0


def test_summary_figure_side_without_concepts() -> None:
    explanation = make_explanation(concepts_a=2, concepts_b=0, with_null=False)
    figure = summary_figure(explanation, make_images(60), None, side_titles={})
    assert isinstance(figure, Figure)


@pytest.mark.parametrize("with_explanation", [False, True])
def test_pca_scatter_builds(tmp_path, with_explanation: bool) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    X_A = rng.normal(size=(60, 8)) + labels[:, None]
    X_B = rng.normal(size=(60, 5)) - labels[:, None]
    explanation = make_explanation() if with_explanation else None
    figure = pca_scatter(X_A, X_B, labels, names=("strong", "expert"), explanation=explanation, max_points=40)
    assert isinstance(figure, Figure)
    panels = figure.get_axes()
    assert len(panels) == 2
    marker_texts = [text.get_text() for text in panels[0].texts]
    assert marker_texts == (["1", "2", "3"] if with_explanation else [])
    assert [text.get_text() for text in panels[1].texts] == (["1", "2"] if with_explanation else [])
    figure.savefig(tmp_path / "scatter.png")


def test_pca_scatter_subsample_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 4))

    def drawn_points(seed: int) -> np.ndarray:
        figure = pca_scatter(X, X, None, names=("a", "b"), max_points=30, seed=seed)
        return figure.get_axes()[0].collections[0].get_offsets()

    assert len(drawn_points(0)) == 30
    np.testing.assert_array_equal(drawn_points(0), drawn_points(0))
    assert not np.array_equal(drawn_points(0), drawn_points(1))
