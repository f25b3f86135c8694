"""rdx: Representational Difference Explanations for comparing two vision models."""

__version__ = "0.1.0"
