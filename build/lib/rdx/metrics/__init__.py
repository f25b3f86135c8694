"""Metrics that score explanations against both models (plain functions over arrays)."""

from rdx.metrics.bsr import (
    DISTANCES,
    BSRAccumulator,
    binary_success_rate,
    explanation_scores,
    grid_pair_distances,
    model_pair_distances,
)
from rdx.metrics.representations import probe_scores, representation_scores

__all__ = [
    "DISTANCES",
    "BSRAccumulator",
    "binary_success_rate",
    "explanation_scores",
    "grid_pair_distances",
    "model_pair_distances",
    "probe_scores",
    "representation_scores",
]
