"""Writers: atomic files in the run directory and the W&B run logger (the only code that touches wandb)."""

from typing import Any

from rdx.sinks.files import NumpyJSONEncoder, save_figure, save_png, write_json_atomic

__all__ = ["NumpyJSONEncoder", "RunLogger", "save_figure", "save_png", "write_json_atomic"]


def __getattr__(name: str) -> Any:
    # RunLogger pulls in matplotlib and PIL: loaded on first use, so light callers (rdx.runs) stay light
    if name == "RunLogger":
        from rdx.sinks.wandb_logger import RunLogger

        return RunLogger
    raise AttributeError(f"module 'rdx.sinks' has no attribute {name!r}")
