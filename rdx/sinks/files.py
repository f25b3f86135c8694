"""Atomic file writers for the run directory: JSON results, figures and PNG images.

Every writer fills a temporary file next to the target and moves it into place with ``os.replace``,
so a reader (or a crashed/interrupted job) never sees a half-written file and an existing file stays
intact when writing fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # matplotlib and PIL load only where a figure or image is written
    from matplotlib.figure import Figure


_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]+")


def safe_component(name: object) -> str:
    """``name`` as one safe path component: every run of characters other than letters, digits and
    ``._=,+-`` becomes "_" (so no "/" or ".." can lead out of a folder), leading dots are dropped (no
    hidden files), and an empty result is "_". Names that are already safe are returned unchanged."""
    text = _UNSAFE.sub("_", str(name)).lstrip(".")
    return text or "_"


class NumpyJSONEncoder(json.JSONEncoder):
    """JSON encoder that also accepts numpy scalars and arrays, and paths."""

    def default(self, obj: Any) -> Any:
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return float(obj)
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, Path):
            return str(obj)
        return super().default(obj)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success move it onto ``path``, on error delete it.

    Parent folders are created. The temporary name starts with a dot and ends in ``.tmp``; its
    permissions follow the umask like any new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    exclusive_mode = mode.replace("w", "x")
    try:
        with open(temporary, exclusive_mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as JSON (numpy-aware, indented) to ``path`` atomically; returns the path."""
    with atomic_file(path, "w") as handle:
        json.dump(obj, handle, cls=NumpyJSONEncoder, indent=indent)
        handle.write("\n")
    return Path(path)


# Resolution of every saved figure, and of the same figures logged to W&B.
FIGURE_DPI = 150


def save_figure(figure: Figure, path: str | Path, dpi: int = FIGURE_DPI) -> Path:
    """Save a matplotlib figure atomically; the format follows the suffix (png when there is none)."""
    path = Path(path)
    file_format = path.suffix.lstrip(".").lower() or "png"
    with atomic_file(path) as handle:
        figure.savefig(handle, format=file_format, dpi=dpi)
    return path


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Save a uint8 image (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA as PNG atomically."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"save_png needs a uint8 image, got {image.dtype}")
    from PIL import Image

    with atomic_file(path) as handle:
        Image.fromarray(image).save(handle, format="PNG")
    return Path(path)


def check_writable(output_dir: Path) -> None:
    """Fail before any work when the run dir cannot be written (results would be lost at the end).

    Raises:
        PermissionError / OSError naming the folder.
    """
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with atomic_file(output_dir / ".write-check", "w") as handle:
            handle.write("ok")
        (output_dir / ".write-check").unlink()
    except OSError as error:
        raise OSError(
            f"the run dir {output_dir} cannot be written ({error.strerror or error}); the results would be "
            "lost at the end: choose another with hydra.run.dir=... (or free the disk)"
        ) from error
