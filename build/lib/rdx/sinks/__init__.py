"""Writers: atomic files in the run directory and the W&B run logger (the only code that touches wandb)."""

from rdx.sinks.files import NumpyJSONEncoder, save_figure, save_png, write_json_atomic
from rdx.sinks.wandb_logger import RunLogger

__all__ = ["NumpyJSONEncoder", "RunLogger", "save_figure", "save_png", "write_json_atomic"]
