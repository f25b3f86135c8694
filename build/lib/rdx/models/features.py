"""Feature extraction: run a model, grab one layer's output with a forward hook, pool it to (N, d)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

POOLINGS = ("gap", "flatten", "cls", "mean_tokens", "none")


class _LayerReached(Exception):
    """Raised by the hook to skip the rest of the forward pass once the wanted layer has run."""


def pool_features(output: torch.Tensor, pooling: str) -> torch.Tensor:
    """Reduce one layer's output to one vector per input.

    Args:
        output: (N, C, H, W) for "gap"; (N, T, D) for "cls" / "mean_tokens"; any (N, ...) for
            "flatten"; (N, d) for "none".
        pooling: "gap" (mean over H, W), "flatten", "cls" (token 0), "mean_tokens" (mean over T), "none".

    Returns:
        (N, d) tensor.
    """
    shape = tuple(output.shape)
    if pooling == "gap":
        if output.ndim != 4:
            raise ValueError(f"pooling 'gap' needs a (N, C, H, W) output, got shape {shape}")
        return output.mean(dim=(2, 3))
    if pooling == "flatten":
        return output.flatten(1)
    if pooling in ("cls", "mean_tokens"):
        if output.ndim != 3:
            raise ValueError(f"pooling {pooling!r} needs a (N, T, D) token output, got shape {shape}")
        return output[:, 0] if pooling == "cls" else output.mean(dim=1)
    if pooling == "none":
        if output.ndim != 2:
            raise ValueError(
                f"pooling 'none' needs a 2-D (N, d) output, got shape {shape}; pick another pooling"
            )
        return output
    raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")


def _resolve_layer(model: nn.Module, layer: str) -> nn.Module:
    try:
        return model.get_submodule(layer)
    except AttributeError as error:
        names = [name for name, _ in model.named_modules() if name]
        shown = ", ".join(names[:25]) + (f", … ({len(names)} in all)" if len(names) > 25 else "")
        raise ValueError(f"model has no layer {layer!r}; valid layer names include: {shown}") from error


def extract_features(
    model: nn.Module,
    inputs: torch.Tensor,
    layer: str,
    pooling: str = "gap",
    batch_size: int = 512,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Representation of each input at one layer of a model.

    The model is put in eval mode and moved to ``device``; the hook is removed afterwards, also on error.

    Args:
        model: any module; ``layer`` names one of its submodules (``model.get_submodule(layer)``).
        inputs: (N, ...) preprocessed model inputs, e.g. (N, 1, 28, 28) from ``images_to_tensor``.
        layer: dotted submodule name, e.g. "block2".
        pooling: see :func:`pool_features`.
        batch_size: inputs per forward pass.
        device: None → "cuda" when available, else "cpu".
        progress: show a tqdm progress bar.

    Returns:
        float32 (N, d).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    if len(inputs) == 0:
        raise ValueError("inputs is empty")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    target = _resolve_layer(model, layer)
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval().to(device)

    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple, output: torch.Tensor | tuple) -> None:
        # Some blocks return tuples (e.g. attention weights alongside); the features come first.
        captured.append(output[0] if isinstance(output, (tuple, list)) else output)
        raise _LayerReached

    handle = target.register_forward_hook(hook)
    chunks: list[np.ndarray] = []
    try:
        with torch.inference_mode():
            starts = range(0, len(inputs), batch_size)
            for start in tqdm(starts, desc=f"features {layer}", disable=not progress, unit="batch"):
                batch = inputs[start : start + batch_size].to(device, non_blocking=True)
                captured.clear()
                try:
                    model(batch)
                except _LayerReached:
                    pass
                if not captured:
                    raise RuntimeError(f"layer {layer!r} was not called during the model's forward pass")
                pooled = pool_features(captured[0], pooling)
                chunks.append(pooled.float().cpu().numpy())
    finally:
        handle.remove()
    features = np.concatenate(chunks)
    logger.debug("Extracted %s features from layer %s (%s pooling)", features.shape, layer, pooling)
    return features
