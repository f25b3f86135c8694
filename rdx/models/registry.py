"""Load a vision model from a config mapping: the network, its own evaluation transform, and the layer and
pooling that give its representation by default.

One loader per ``kind`` (looked up in :data:`LOADERS`):

``convnet``
    this project's MNIST :class:`~rdx.models.convnet.ConvNet` from an ``rdx-train`` checkpoint
    (``checkpoint``); transform: the MNIST preprocessing of a grayscale image.
``torchvision``
    ``name`` (``torchvision.models.list_models()``); ``weights``: null (random init) or a weights enum
    name ("IMAGENET1K_V1"), read from the local torch hub cache only; ``weights_file``: a local
    state-dict file (then ``weights`` only picks the transform); ``num_classes`` (a fine-tuned head;
    read from ``weights_file`` when omitted); ``input_size``; ``model_kwargs``.
``timm``
    ``name`` (with or without a pretrained tag, "vit_base_patch16_224.dino"); ``checkpoint``: a local
    weights file; ``pretrained``: true without a checkpoint takes the weights from the local Hugging
    Face or torch hub cache. A file with exactly the model's keys and shapes (a timm model saved as it
    is, fine-tuned head included) is loaded as it is; any other file (the original DINO / DINOv2 / CLIP
    releases) through timm's pretrained-weights loader, which converts it. ``input_size``;
    ``model_kwargs`` (e.g. ``img_size``, ``num_classes``).
``open_clip``
    ``name`` ("ViT-L-14-336"); ``checkpoint``: a local file; ``pretrained``: an open_clip tag, which
    needs ``allow_download``; the visual tower only. Needs ``pip install open_clip_torch``.

Every kind accepts ``allow_download`` (default false). Without it nothing is fetched from the network:
local files are checked first, and a missing one raises :class:`ModelSourceError` at once, naming the
file and the config override that points at a local copy (a hub load would otherwise retry for ~45 s).
``layer`` / ``pooling`` in the spec, when set, replace the defaults of :func:`default_layer_for`. Other
keys (``training``, ``select``, …) are ignored.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import nn

from rdx.models.convnet import ConvNet
from rdx.models.features import POOLINGS, extract_features, prefix_token_count, resolve_layer

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's ImageNet evaluation recipe: resize the short side to 256, centre-crop 224.
RESIZE_TO_CROP_RATIO = 256 / 224
_DEFAULT_CONFIG_KEY = "model_x"


class ModelSourceError(RuntimeError):
    """A model's weights are not available locally (and downloading is not allowed or failed)."""


@dataclass
class LoadedNetwork:
    """A network ready for feature extraction.

    Attributes:
        network: the module (eval mode, on CPU; :func:`~rdx.models.features.extract_features` moves it).
        transform: the model's own evaluation preprocessing, PIL image → (C, H, W) float tensor.
        default_layer: dotted submodule name whose output is the representation.
        default_pooling: one of :data:`~rdx.models.features.POOLINGS`.
        info: JSON-friendly description: kind, name, weights source, num_parameters, input_size, ….
        num_prefix_tokens: tokens in front of the patch tokens (CLS, registers) that "mean_tokens" skips.
    """

    network: nn.Module
    transform: Callable[[Image.Image], torch.Tensor]
    default_layer: str
    default_pooling: str
    info: dict[str, Any] = field(default_factory=dict)
    num_prefix_tokens: int = 0

    def preprocess(self, images: Iterable[Image.Image]) -> torch.Tensor:
        """Stack the transformed images into one (N, C, H, W) batch."""
        return torch.stack([self.transform(image) for image in images])

    def extract(
        self,
        inputs: torch.Tensor | Iterable[torch.Tensor | tuple | list],
        layer: str | None = None,
        pooling: str | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """:func:`~rdx.models.features.extract_features` at ``layer`` / ``pooling`` (default: this
        network's defaults), skipping this network's prefix tokens for "mean_tokens"; float32 (N, d)."""
        kwargs.setdefault("num_prefix_tokens", self.num_prefix_tokens)
        return extract_features(
            self.network, inputs, layer or self.default_layer, pooling or self.default_pooling, **kwargs
        )


# --------------------------------------------------------------------------------------------------
# Default layer and pooling
# --------------------------------------------------------------------------------------------------


def default_layer_for(network: nn.Module) -> tuple[str, str]:
    """The layer and pooling that give a network's representation when the config names none.

    The rule, first match wins:

    1. this project's ConvNet: its last conv block ("block2"), "gap" (the paper's MNIST representation);
    2. a vision transformer — timm (``blocks`` + ``num_prefix_tokens``), torchvision
       (``encoder.layers``) or open_clip (``transformer.resblocks``): the last transformer block with
       "cls", its CLS token as in the paper ("mean_tokens" for a timm ViT without a CLS token);
       an open_clip timm tower (``trunk``) follows the rule for its trunk;
    3. a CNN: the last feature block with "gap" — timm's last ``feature_info`` module, the last child
       of torchvision's ``features`` (MobileNet, EfficientNet, ConvNeXt, VGG, DenseNet), "permute"
       of a torchvision Swin (its channels-first output), or "layer4" (ResNet-style).

    Raises:
        ValueError: no rule fits (e.g. a timm model with channels-last outputs); name a layer and a
            pooling in the config.
    """
    import torchvision

    if isinstance(network, ConvNet):
        return f"block{network.num_blocks}", "gap"
    blocks = getattr(network, "blocks", None)
    if hasattr(network, "num_prefix_tokens") and isinstance(blocks, (nn.Sequential, nn.ModuleList)):
        pooling = "cls" if getattr(network, "has_class_token", True) else "mean_tokens"
        return f"blocks.{len(blocks) - 1}", pooling
    if isinstance(network, torchvision.models.VisionTransformer):
        return f"encoder.layers.{_last_child_name(network.encoder.layers)}", "cls"
    resblocks = getattr(getattr(network, "transformer", None), "resblocks", None)
    if isinstance(getattr(network, "class_embedding", None), nn.Parameter) and resblocks is not None:
        return f"transformer.resblocks.{len(resblocks) - 1}", "cls"
    trunk = getattr(network, "trunk", None)
    if isinstance(trunk, nn.Module):
        layer, pooling = default_layer_for(trunk)
        return f"trunk.{layer}", pooling
    feature_info = getattr(network, "feature_info", None)
    if isinstance(feature_info, list) and feature_info and "module" in feature_info[-1]:
        if getattr(network, "output_fmt", "NCHW") != "NCHW":
            raise ValueError(
                f"{type(network).__name__} outputs channels-last feature maps, which 'gap' would average "
                "over the wrong axes; name a layer and a pooling in the config"
            )
        return feature_info[-1]["module"], "gap"
    if isinstance(network, torchvision.models.SwinTransformer):
        return "permute", "gap"
    features = getattr(network, "features", None)
    if isinstance(features, nn.Sequential) and len(features):
        return f"features.{_last_child_name(features)}", "gap"
    if isinstance(getattr(network, "layer4", None), nn.Module):
        return "layer4", "gap"
    children = ", ".join(name for name, _ in network.named_children())
    raise ValueError(
        f"no default layer for a {type(network).__name__}; set layer and pooling in the config "
        f"(top-level layers: {children})"
    )


def _last_child_name(module: nn.Module) -> str:
    return list(module.named_children())[-1][0]


# --------------------------------------------------------------------------------------------------
# Transforms (classes, not lambdas, so that DataLoader workers can pickle them)
# --------------------------------------------------------------------------------------------------


class ConvertMode:
    """PIL image → the same image in ``mode`` ("RGB", "L"); tensors pass through unchanged."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, image: Any) -> Any:
        if isinstance(image, Image.Image) and image.mode != self.mode:
            return image.convert(self.mode)
        return image

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.mode!r})"


class MnistTransform:
    """PIL image → (1, 28, 28) tensor, preprocessed exactly as in training
    (:func:`rdx.data.mnist.images_to_tensor`); other sizes are resized to 28 × 28 first."""

    size = 28

    def __call__(self, image: Image.Image) -> torch.Tensor:
        from rdx.data.mnist import images_to_tensor

        image = image.convert("L")
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
        return images_to_tensor(np.asarray(image, dtype=np.uint8)[None])[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def imagenet_transform(input_size: int = 224) -> Callable[[Image.Image], torch.Tensor]:
    """The default evaluation transform for a torchvision model without a weights enum: RGB, resize the
    short side to ``input_size * 256 / 224`` (bilinear), centre-crop ``input_size``, ImageNet
    mean/std normalisation — torchvision's own ImageNet recipe."""
    from torchvision import transforms

    return transforms.Compose(
        [
            ConvertMode("RGB"),
            transforms.Resize(round(input_size * RESIZE_TO_CROP_RATIO), antialias=True),
            transforms.CenterCrop(input_size),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


# --------------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------------


def _require_file(path: Any, what: str, override: str) -> Path:
    """The path of an existing local file, or a ModelSourceError naming it and the override."""
    resolved = Path(os.path.expanduser(str(path)))
    if not resolved.is_file():
        raise ModelSourceError(
            f"{what}: file {resolved} does not exist. Point at a local copy with {override}=/path/to/file"
        )
    return resolved


def _override_hint(config_key: str) -> str:
    return " (model_x stands for the model's config key, e.g. model_a or model_b)" * (
        config_key == _DEFAULT_CONFIG_KEY
    )


@contextlib.contextmanager
def _hub_offline(enabled: bool) -> Iterator[None]:
    """Hugging Face hub offline mode for the duration of a model build, so a hub call fails at once
    instead of retrying for ~45 s. The environment variable only takes effect before huggingface_hub
    is imported, so an already-imported hub module's flag is set too; both are restored afterwards."""
    if not enabled:
        yield
        return
    previous_env = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    previous_flag = getattr(constants, "HF_HUB_OFFLINE", None)
    if constants is not None:
        constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if previous_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous_env
        if constants is not None:
            constants.HF_HUB_OFFLINE = previous_flag


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a .pth/.pt/.bin (raw, or under "state_dict" / "model") or .safetensors file,
    with a "module." / "model." / "net." prefix shared by every key removed."""
    from rdx.models.checkpoints import UnreadableWeightsError, read_torch_file

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state_dict: Any = load_file(str(path), device="cpu")
        except Exception as error:  # safetensors raises its own error type for a corrupted file
            raise UnreadableWeightsError(
                f"weights file {path} cannot be read: it is truncated or not a safetensors file "
                f"({type(error).__name__}). Download it again"
            ) from error
    else:
        state_dict = read_torch_file(path, "weights file")
    for key in ("state_dict", "model"):
        if isinstance(state_dict, Mapping) and isinstance(state_dict.get(key), Mapping):
            state_dict = state_dict[key]
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise ValueError(f"{path} holds no state dict (a mapping of parameter names to tensors)")
    for prefix in ("module.", "model.", "net."):
        if all(name.startswith(prefix) for name in state_dict):
            state_dict = {name[len(prefix) :]: tensor for name, tensor in state_dict.items()}
    return dict(state_dict)


def _last_linear_name(network: nn.Module) -> str | None:
    names = [name for name, module in network.named_modules() if isinstance(module, nn.Linear)]
    return names[-1] if names else None


def _square_size(input_size: Any) -> int | None:
    if input_size is None:
        return None
    if isinstance(input_size, int):
        return input_size
    sizes = [int(size) for size in input_size][-2:]
    if len(set(sizes)) != 1:
        raise ValueError(f"input_size must be one int (square inputs), got {input_size}")
    return sizes[0]


def _input_size_of(transform: Callable[[Image.Image], torch.Tensor]) -> list[int]:
    """(C, H, W) that ``transform`` gives a generic RGB image."""
    return list(transform(Image.new("RGB", (300, 260), (128, 64, 32))).shape)


def _finish(
    network: nn.Module,
    transform: Callable[[Image.Image], torch.Tensor],
    spec: Mapping[str, Any],
    info: dict[str, Any],
) -> LoadedNetwork:
    """Apply the spec's layer/pooling over the defaults, check them, and fill the common info."""
    network.eval()
    layer = spec.get("layer")
    pooling = spec.get("pooling")
    if not layer or not pooling:
        default_layer, default_pooling = default_layer_for(network)
        layer, pooling = layer or default_layer, pooling or default_pooling
    resolve_layer(network, layer)
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    num_prefix_tokens = prefix_token_count(network)
    info.update(
        num_parameters=sum(parameter.numel() for parameter in network.parameters()),
        input_size=_input_size_of(transform),
        default_layer=layer,
        default_pooling=pooling,
        num_prefix_tokens=num_prefix_tokens,
    )
    logger.info(
        "Loaded %s model %s (%s), layer %s, pooling %s",
        info["kind"],
        info["name"],
        info["weights"],
        layer,
        pooling,
    )
    return LoadedNetwork(network, transform, layer, pooling, info, num_prefix_tokens)


# --------------------------------------------------------------------------------------------------
# Loaders, one per kind
# --------------------------------------------------------------------------------------------------


def _load_convnet(spec: Mapping[str, Any], config_key: str) -> LoadedNetwork:
    from rdx.models.checkpoints import load_convnet_checkpoint

    name = spec.get("name") or "convnet"
    if not spec.get("checkpoint"):
        raise ModelSourceError(
            f"ConvNet model {name!r} needs a checkpoint file: set {config_key}.checkpoint=/path/to/file.pt "
            f"(written by rdx-train){_override_hint(config_key)}"
        )
    path = _require_file(spec["checkpoint"], f"ConvNet {name!r} checkpoint", f"{config_key}.checkpoint")
    network = load_convnet_checkpoint(path)
    info = {"kind": "convnet", "name": name, "weights": f"file {path}", "weights_file": str(path)}
    return _finish(network, MnistTransform(), spec, info)


def _torchvision_hub_path(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps (and looks for) the file of ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def _torchvision_weights_source(spec: Mapping[str, Any], config_key: str) -> Any:
    """The weights enum member of a torchvision spec (None without ``weights``), after checking that the
    weights are available offline: ``weights_file`` exists, or the enum's file is in the torch hub cache
    (unless ``allow_download``). Raises ModelSourceError / ValueError."""
    from torchvision.models import get_model_weights

    name, weights_name, weights_file = spec["name"], spec.get("weights"), spec.get("weights_file")
    weights = None
    if weights_name:
        enum = get_model_weights(name)
        try:
            weights = enum[weights_name]
        except KeyError as error:
            valid = ", ".join(member.name for member in enum)
            raise ValueError(f"{name} has no weights {weights_name!r}; choose one of {valid}") from error
    if weights_file:
        _require_file(weights_file, f"torchvision {name} weights", f"{config_key}.weights_file")
    elif weights is not None:
        cached = _torchvision_hub_path(weights.url)
        if not cached.is_file() and not spec.get("allow_download", False):
            raise ModelSourceError(
                f"torchvision {name} weights {weights_name} are not in the local torch hub cache: expected "
                f"file {cached} (downloaded from {weights.url}). Copy the file there, or point at a local "
                f"copy with {config_key}.weights_file=/path/to/file.pth (keeping {config_key}.weights="
                f"{weights_name} for its transform), or set {config_key}.allow_download=true where there is "
                f"internet{_override_hint(config_key)}"
            )
    return weights


def _load_torchvision(spec: Mapping[str, Any], config_key: str) -> LoadedNetwork:
    import torchvision
    from torchvision.models import get_model

    name = spec["name"]
    if name not in torchvision.models.list_models():
        raise ValueError(f"torchvision has no model {name!r}; see torchvision.models.list_models()")
    weights_name = spec.get("weights")
    weights_file = spec.get("weights_file")
    num_classes = spec.get("num_classes")
    model_kwargs = dict(spec.get("model_kwargs") or {})
    if num_classes is not None:
        model_kwargs["num_classes"] = int(num_classes)

    weights = _torchvision_weights_source(spec, config_key)
    info: dict[str, Any] = {"kind": "torchvision", "name": name, "weights_enum": weights_name}
    if weights_file:
        path = Path(os.path.expanduser(str(weights_file)))
        state_dict = _read_state_dict(path)
        network = get_model(name, weights=None, **model_kwargs)
        head = _last_linear_name(network)
        head_weight = state_dict.get(f"{head}.weight") if head else None
        if num_classes is None and head_weight is not None:
            head_size = int(head_weight.shape[0])
            if head_size != network.get_submodule(head).out_features:
                # A fine-tuned checkpoint: build the head it was trained with.
                model_kwargs["num_classes"] = head_size
                network = get_model(name, weights=None, **model_kwargs)
        network.load_state_dict(state_dict)
        info.update(weights=f"file {path}", weights_file=str(path))
    elif weights is not None:
        cached = _torchvision_hub_path(weights.url)
        try:
            network = get_model(name, weights=weights, **model_kwargs)
        except OSError as error:
            raise ModelSourceError(
                f"torchvision {name} weights {weights_name} could not be downloaded to {cached}: {error}. "
                f"Point at a local copy with {config_key}.weights_file=/path/to/file.pth"
            ) from error
        info.update(weights=f"torchvision {weights_name}", weights_file=str(cached))
    else:
        network = get_model(name, weights=None, **model_kwargs)
        info.update(weights="random init", weights_file=None)

    size = _square_size(spec.get("input_size"))
    if size is None and isinstance(getattr(network, "image_size", None), int):
        size = network.image_size  # a torchvision ViT only takes the size it was built for
    if weights is not None:
        # The enum's own preset; a smaller input size keeps its resize-to-crop ratio.
        preset = weights.transforms
        keywords = getattr(preset, "keywords", {})
        if size is not None and "crop_size" in keywords:
            ratio = keywords.get("resize_size", keywords["crop_size"]) / keywords["crop_size"]
            preset_transform = preset(crop_size=size, resize_size=round(size * ratio))
        else:
            preset_transform = preset()
        from torchvision import transforms

        transform = transforms.Compose([ConvertMode("RGB"), preset_transform])
    else:
        transform = imagenet_transform(size or 224)
    return _finish(network, transform, spec, info)


def _safetensors_alternatives(filename: str) -> list[str]:
    """The .safetensors names timm tries first for a hub file (as timm's ``_get_safe_alternatives``)."""
    known = {
        "pytorch_model.bin": "model.safetensors",
        "open_clip_pytorch_model.bin": "open_clip_model.safetensors",
    }
    if filename in known:
        return [known[filename]]
    return [filename[: -len(".bin")] + ".safetensors"] if filename.endswith(".bin") else []


def _timm_local_weights(name: str) -> tuple[str | None, list[str]]:
    """A locally cached pretrained-weights file of a timm model (Hugging Face hub cache, then torch hub
    cache), without any network call; also the places looked at, for the error message."""
    from timm.models import get_pretrained_cfg

    pretrained_cfg = get_pretrained_cfg(name)
    if pretrained_cfg is None:
        return None, []
    looked: list[str] = []
    if pretrained_cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo_id = pretrained_cfg.hf_hub_id.split("@")[0]
        filename = pretrained_cfg.hf_hub_filename or "pytorch_model.bin"
        for candidate in (*_safetensors_alternatives(filename), filename):
            looked.append(f"Hugging Face hub {repo_id}/{candidate}")
            found = try_to_load_from_cache(repo_id, candidate)
            if isinstance(found, str) and os.path.isfile(found):
                return found, looked
    if pretrained_cfg.url:
        cached = _torchvision_hub_path(pretrained_cfg.url)
        looked.append(str(cached))
        if cached.is_file():
            return str(cached), looked
    return None, looked


def _timm_weights_plan(
    name: str, path: str, model_kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """How to put the weights file ``path`` into timm model ``name``: ``timm.create_model`` arguments,
    and the state dict to load afterwards when the file holds exactly the model's keys and shapes (a timm
    model saved as it is, a fine-tuned head included). Any other file (the original DINO / DINOv2 / CLIP
    releases, a hub file for another head or input size) goes through timm's pretrained-weights loader,
    which converts keys, resamples position embeddings and leaves out a classifier head of another size.
    """
    import timm
    from timm.models import get_pretrained_cfg

    pretrained_cfg = get_pretrained_cfg(name)
    if not path.endswith(".npz"):
        state_dict = _read_state_dict(Path(path))
        try:
            with torch.device("meta"):  # shapes only: no memory, no initialisation cost
                expected = timm.create_model(name, pretrained=False, **model_kwargs).state_dict()
        except Exception:  # a model that cannot be built on the meta device: let timm's loader decide
            expected = {}
        if expected.keys() == state_dict.keys() and all(
            expected[key].shape == state_dict[key].shape for key in expected
        ):
            return {"pretrained": False}, state_dict
        del state_dict
    # source=None: a model whose config says "hf-hub" would otherwise ignore the file; custom_load is
    # the .npz reader of the original Google ViT releases.
    custom_load = bool(pretrained_cfg and pretrained_cfg.custom_load) and path.endswith(".npz")
    overlay = {"file": path, "custom_load": custom_load, "source": None}
    return {"pretrained": True, "pretrained_cfg_overlay": overlay}, None


def _timm_weights_source(spec: Mapping[str, Any], config_key: str) -> tuple[str | None, dict[str, Any]]:
    """The local weights file of a timm model spec (None: random init or a permitted download) and its
    description; ModelSourceError when the weights are not available offline."""
    name = spec["name"]
    allow_download = bool(spec.get("allow_download", False))
    checkpoint = spec.get("checkpoint")
    pretrained = bool(spec.get("pretrained", False))
    if checkpoint:
        path = str(_require_file(checkpoint, f"timm {name} checkpoint", f"{config_key}.checkpoint"))
        return path, {"weights": f"file {path}", "weights_file": path}
    if pretrained and not allow_download:
        weights_path, looked = _timm_local_weights(name)
        if weights_path is None:
            where = "; ".join(looked) or "no pretrained weights are registered for it"
            raise ModelSourceError(
                f"timm model {name!r}: pretrained weights are not available offline — no checkpoint given "
                f"and no file in the local caches (looked for: {where}). Download the weights where there "
                f"is internet and point at the file with {config_key}.checkpoint=/path/to/weights, or set "
                f"{config_key}.allow_download=true{_override_hint(config_key)}"
            )
        return weights_path, {"weights": f"cached {weights_path}", "weights_file": weights_path}
    return None, {"weights": "timm download" if pretrained else "random init", "weights_file": None}


def _load_timm(spec: Mapping[str, Any], config_key: str) -> LoadedNetwork:
    import timm
    import timm.data

    name = spec["name"]
    allow_download = bool(spec.get("allow_download", False))
    if name.startswith("hf-hub:") and not allow_download:
        raise ModelSourceError(
            f"timm model {name!r} is read from the Hugging Face hub; use its timm name with "
            f"{config_key}.checkpoint=/path/to/weights, or set {config_key}.allow_download=true"
        )
    if not name.startswith("hf-hub:") and not timm.is_model(name):
        raise ValueError(f"timm has no model {name!r}; see timm.list_models('{name.split('.')[0][:6]}*')")
    pretrained = bool(spec.get("pretrained", False))
    model_kwargs = dict(spec.get("model_kwargs") or {})
    override = f"{config_key}.checkpoint=/path/to/weights"
    weights_path, info = _timm_weights_source(spec, config_key)

    create: dict[str, Any] = {"pretrained": pretrained}
    state_dict = None
    if weights_path is not None:
        create, state_dict = _timm_weights_plan(name, weights_path, model_kwargs)
    try:
        with _hub_offline(not allow_download):
            network = timm.create_model(name, **create, **model_kwargs)
    except OSError as error:
        raise ModelSourceError(
            f"timm model {name!r}: its weights could not be loaded ({error}). Point at a local copy with "
            f"{override}{_override_hint(config_key)}"
        ) from error
    if state_dict is not None:
        network.load_state_dict(state_dict)

    data_config = timm.data.resolve_model_data_config(network)
    size = _square_size(spec.get("input_size"))
    if size is None:
        # A model built for another size (model_kwargs img_size) keeps its pretrained config's size.
        img_size = getattr(getattr(network, "patch_embed", None), "img_size", None)
        size = _square_size(img_size) if img_size is not None else None
    if size is not None:
        data_config["input_size"] = (data_config["input_size"][0], size, size)
    from torchvision import transforms

    transform = transforms.Compose(
        [ConvertMode("RGB"), timm.data.create_transform(**data_config, is_training=False)]
    )
    info.update(kind="timm", name=name)
    return _finish(network, transform, spec, info)


def _load_open_clip(spec: Mapping[str, Any], config_key: str) -> LoadedNetwork:
    try:
        import open_clip
    except ImportError as error:
        raise ImportError(
            "open_clip models need the open_clip package, which rdx does not install: "
            "pip install open_clip_torch"
        ) from error

    name = spec["name"]
    allow_download = bool(spec.get("allow_download", False))
    checkpoint = spec.get("checkpoint")
    tag = spec.get("pretrained")
    override = f"{config_key}.checkpoint=/path/to/weights"
    if name.startswith("hf-hub:") and not allow_download:
        raise ModelSourceError(
            f"open_clip model {name!r} is read from the Hugging Face hub; use a built-in open_clip name "
            f"with {override}, or set {config_key}.allow_download=true"
        )
    if checkpoint:
        path = str(_require_file(checkpoint, f"open_clip {name} checkpoint", f"{config_key}.checkpoint"))
        pretrained: str | None = path
        info: dict[str, Any] = {"weights": f"file {path}", "weights_file": path}
    elif tag and isinstance(tag, str):
        if not allow_download:
            raise ModelSourceError(
                f"open_clip model {name!r} with pretrained={tag!r} needs a download; point at the local "
                f"weights file with {override}, or set {config_key}.allow_download=true"
                f"{_override_hint(config_key)}"
            )
        pretrained = tag
        info = {"weights": f"open_clip {tag}", "weights_file": None}
    else:
        pretrained = None
        info = {"weights": "random init", "weights_file": None}

    model_kwargs = dict(spec.get("model_kwargs") or {})
    parameters = inspect.signature(open_clip.create_model_and_transforms).parameters
    if "pretrained_text" in parameters:
        # Never fetch a text tower's base weights: only the visual tower is used.
        model_kwargs.setdefault("pretrained_text", False)
    try:
        with _hub_offline(not allow_download):
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained, **model_kwargs
            )
    except OSError as error:
        raise ModelSourceError(
            f"open_clip model {name!r}: its weights could not be loaded ({error}). Point at a local copy "
            f"with {override}"
        ) from error
    network = model.visual
    transformer = getattr(network, "transformer", None)
    if transformer is not None and getattr(transformer, "batch_first", True) is False:
        raise ValueError(
            f"open_clip model {name!r} runs its blocks sequence-first (T, N, D); token poolings need "
            "(N, T, D): upgrade open_clip (pip install -U open_clip_torch)"
        )
    from torchvision import transforms

    transform = transforms.Compose([ConvertMode("RGB"), preprocess])
    info.update(kind="open_clip", name=name)
    return _finish(network, transform, spec, info)


LOADERS: dict[str, Callable[[Mapping[str, Any], str], LoadedNetwork]] = {
    "convnet": _load_convnet,
    "torchvision": _load_torchvision,
    "timm": _load_timm,
    "open_clip": _load_open_clip,
}


def load_network(spec: Mapping[str, Any], config_key: str = _DEFAULT_CONFIG_KEY) -> LoadedNetwork:
    """Build the network a config describes (see the module docstring for the keys of each kind).

    Args:
        spec: a model config (a dict or an OmegaConf ``DictConfig``) with ``kind`` and, except for
            "convnet", ``name``.
        config_key: where the spec sits in the run config ("model_a" / "model_b"); error messages
            name overrides under it.

    Raises:
        ModelSourceError: weights are not available locally (the message names the file and the
            override that points at a local copy); raised before any network call.
        ValueError: unknown kind, model, weights name, layer or pooling.
        ImportError: an open_clip model without the open_clip package.
    """
    if isinstance(spec, DictConfig):
        spec = OmegaConf.to_container(spec, resolve=True)  # plain lists/dicts for the model builders
    kind = spec.get("kind")
    if kind not in LOADERS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {sorted(LOADERS)}")
    if kind != "convnet" and not spec.get("name"):
        raise ValueError(f"a {kind} model needs a name ({config_key}.name)")
    return LOADERS[kind](spec, config_key)


def check_weights(spec: Mapping[str, Any], config_key: str = _DEFAULT_CONFIG_KEY) -> None:
    """Raise :class:`ModelSourceError` when a model spec's weights are not available offline, without
    building anything (milliseconds): run it for every model before loading any, so that a missing file
    of the second model is reported before the first one takes its time to load. The loaders run the
    same checks. Specs of other kinds (e.g. precomputed features) pass."""
    if isinstance(spec, DictConfig):
        spec = OmegaConf.to_container(spec, resolve=True)
    kind = spec.get("kind")
    name = spec.get("name") or kind
    if kind == "convnet":
        if spec.get("checkpoint"):
            _require_file(spec["checkpoint"], f"ConvNet {name!r} checkpoint", f"{config_key}.checkpoint")
    elif kind == "torchvision":
        _torchvision_weights_source(spec, config_key)
    elif kind == "timm":
        _timm_weights_source(spec, config_key)
    elif kind == "open_clip":
        if spec.get("checkpoint"):
            _require_file(spec["checkpoint"], f"open_clip {name} checkpoint", f"{config_key}.checkpoint")
        elif isinstance(spec.get("pretrained"), str) and not spec.get("allow_download", False):
            raise ModelSourceError(
                f"open_clip model {name!r} with pretrained={spec['pretrained']!r} needs a download; point at "
                f"the local weights file with {config_key}.checkpoint=/path/to/weights, or set "
                f"{config_key}.allow_download=true{_override_hint(config_key)}"
            )
