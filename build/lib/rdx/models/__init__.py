"""Models and feature extraction."""

from rdx.models.convnet import ConvNet, ConvNetClassifier
from rdx.models.features import POOLINGS, extract_features, pool_features

__all__ = ["POOLINGS", "ConvNet", "ConvNetClassifier", "extract_features", "pool_features"]
