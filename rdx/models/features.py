"""Feature extraction: run a model, grab one layer's output with a forward hook, pool it to (N, d)."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from rdx.devices import resolve_device

logger = logging.getLogger(__name__)

POOLINGS = ("gap", "flatten", "cls", "mean_tokens", "none")


class _LayerReached(Exception):
    """Raised by the hook to skip the rest of the forward pass once the wanted layer has run."""


def pool_features(output: torch.Tensor, pooling: str, num_prefix_tokens: int = 0) -> torch.Tensor:
    """Reduce one layer's output to one vector per input.

    Args:
        output: (N, C, H, W) for "gap"; (N, T, D) for "cls" / "mean_tokens"; any (N, ...) for
            "flatten"; (N, d) for "none".
        pooling: "gap" (mean over H, W), "flatten", "cls" (token 0), "mean_tokens" (mean over the
            tokens after the first ``num_prefix_tokens``), "none".
        num_prefix_tokens: tokens in front of the patch tokens (CLS, register tokens) that
            "mean_tokens" skips; 0 averages all T tokens.

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
        if pooling == "cls":
            return output[:, 0]
        if not 0 <= num_prefix_tokens < output.shape[1]:
            raise ValueError(
                f"num_prefix_tokens={num_prefix_tokens} leaves no tokens to average in shape {shape}"
            )
        return output[:, num_prefix_tokens:].mean(dim=1)
    if pooling == "none":
        if output.ndim != 2:
            raise ValueError(
                f"pooling 'none' needs a 2-D (N, d) output, got shape {shape}; pick another pooling"
            )
        return output
    raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")


def prefix_token_count(model: nn.Module) -> int:
    """Tokens in front of the patch tokens in a vision transformer's block outputs; 0 if unknown.

    timm models state it (``num_prefix_tokens``: the CLS token plus any register tokens, e.g. 5 for the
    ``*_reg4`` models); a torchvision ``VisionTransformer`` (``class_token``) and an open_clip visual
    transformer (``class_embedding``) have one CLS token; an open_clip timm tower (``trunk``) is asked.
    """
    declared = getattr(model, "num_prefix_tokens", None)
    if isinstance(declared, int):
        return declared
    if isinstance(getattr(model, "class_token", None), nn.Parameter):
        return 1
    if isinstance(getattr(model, "class_embedding", None), nn.Parameter):
        return 1
    trunk = getattr(model, "trunk", None)
    return prefix_token_count(trunk) if isinstance(trunk, nn.Module) else 0


def resolve_layer(model: nn.Module, layer: str) -> nn.Module:
    """The submodule with dotted name ``layer`` (e.g. "blocks.11", "features.18",
    "encoder.layers.encoder_layer_11"); a ValueError listing close and top-level names if absent."""
    try:
        return model.get_submodule(layer)
    except AttributeError as error:
        names = [name for name, _ in model.named_modules() if name]
        close = difflib.get_close_matches(layer, names, n=5, cutoff=0.6)
        # Blocks a representation is usually taken from sit at most two levels deep.
        shallow = [name for name in names if name.count(".") <= 1]
        shown = ", ".join(shallow[:30]) + (f", … ({len(names)} modules in all)" if len(names) > 30 else "")
        hint = f" (did you mean {', '.join(repr(name) for name in close)}?)" if close else ""
        raise ValueError(f"model has no layer {layer!r}{hint}. Valid layer names include: {shown}") from error


def extract_features(
    model: nn.Module,
    inputs: torch.Tensor | Iterable[torch.Tensor | tuple | list],
    layer: str,
    pooling: str = "gap",
    batch_size: int = 512,
    device: str | torch.device | None = None,
    progress: bool = True,
    num_prefix_tokens: int | None = None,
) -> np.ndarray:
    """Representation of each input at one layer of a model.

    Runs under ``torch.inference_mode``; the forward pass stops once the layer has run. The model is put
    in eval mode and moved to ``device``; the hook is removed afterwards, also on error.

    Args:
        model: any module; ``layer`` names one of its submodules (``model.get_submodule(layer)``).
        inputs: (N, ...) preprocessed model inputs, e.g. (N, 1, 28, 28) from ``images_to_tensor``, cut
            into batches of ``batch_size``; or an iterable of ready batches (e.g. a ``DataLoader``),
            each a tensor or a tuple/list whose first element is the input tensor.
        layer: dotted submodule name, e.g. "block2", "blocks.11", "features.18",
            "encoder.layers.encoder_layer_11".
        pooling: see :func:`pool_features`.
        batch_size: inputs per forward pass when ``inputs`` is one tensor.
        device: None → "cuda" when available, else "cpu".
        progress: show a tqdm progress bar.
        num_prefix_tokens: tokens "mean_tokens" skips (CLS, registers); None → asked of the model
            (:func:`prefix_token_count`: timm's ``num_prefix_tokens``, 1 for torchvision/open_clip ViTs).

    Returns:
        float32 (N, d).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if pooling == "cls" and getattr(model, "has_class_token", True) is False:
        raise ValueError("pooling 'cls' needs a CLS token, and this model has none; use 'mean_tokens'")
    if isinstance(inputs, torch.Tensor):
        if len(inputs) == 0:
            raise ValueError("inputs is empty")
        tensor, starts = inputs, range(0, len(inputs), batch_size)
        batches: Iterable = (tensor[start : start + batch_size] for start in starts)
        total: int | None = len(starts)
    else:
        batches = inputs
        total = len(inputs) if hasattr(inputs, "__len__") else None
    if num_prefix_tokens is None:
        num_prefix_tokens = prefix_token_count(model)
    target = resolve_layer(model, layer)
    device = resolve_device(device)
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
            progress_bar = tqdm(
                batches, total=total, desc=f"features {layer}", disable=not progress, unit="batch"
            )
            for batch in progress_bar:
                batch = batch[0] if isinstance(batch, (tuple, list)) else batch
                captured.clear()
                try:
                    model(batch.to(device, non_blocking=True))
                except _LayerReached:
                    pass
                if not captured:
                    raise RuntimeError(f"layer {layer!r} was not called during the model's forward pass")
                pooled = pool_features(captured[0], pooling, num_prefix_tokens)
                chunks.append(pooled.float().cpu().numpy())
    finally:
        handle.remove()
    if not chunks:
        raise ValueError("inputs is empty")
    features = np.concatenate(chunks)
    logger.debug("Extracted %s features from layer %s (%s pooling)", features.shape, layer, pooling)
    return features
