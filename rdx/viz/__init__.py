"""Drawing: concept grids, summary figures and PCA scatters. Returns arrays and figures, never writes."""

from rdx.viz.grids import (
    comparison_figure,
    concept_grid_images,
    default_scale,
    format_label_counts,
    grid_image,
    summary_figure,
)
from rdx.viz.scatter import pca_2d, pca_embedding, pca_scatter, subsample_indices

__all__ = [
    "concept_grid_images",
    "default_scale",
    "format_label_counts",
    "grid_image",
    "pca_2d",
    "pca_embedding",
    "pca_scatter",
    "subsample_indices",
    "summary_figure",
    "comparison_figure",
]
