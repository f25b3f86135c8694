"""Metrics that score explanations against both models (plain functions over arrays)."""

from rdx.metrics.bsr import DISTANCES, binary_success_rate, explanation_scores, grid_pair_distances

__all__ = ["DISTANCES", "binary_success_rate", "explanation_scores", "grid_pair_distances"]
