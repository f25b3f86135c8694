"""Command-line entry points (Hydra apps). The only place that reads Hydra configs."""

from pathlib import Path

# Configs live at the repository root (conf/); the package is installed in editable mode.
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")
