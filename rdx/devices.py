"""The one device resolver: which torch device a ``device`` setting means."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """ "auto" or None: CUDA when available, else CPU; anything else as torch reads it ("cpu", "cuda:1")."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
