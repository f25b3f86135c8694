"""Files of a run's explorable report: the thumbnail sprite pages (arrays from ``rdx.report.assets``).

Written atomically like every run-dir file (``rdx.sinks.files.atomic_file``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from rdx.sinks.files import atomic_file, safe_component

if TYPE_CHECKING:
    from rdx.report.assets import ThumbnailPages

JPEG_QUALITY = 85


def write_thumbnail_pages(pages: ThumbnailPages, folder: Path, prefix: str = "thumbs") -> list[str]:
    """Write each sprite page as ``{prefix}_000.png``, ``{prefix}_001.png``, ... in ``folder``.

    Grayscale pages are 8-bit grayscale PNG (lossless, small for digit-like images); RGB pages are
    JPEG at quality 85 (``{prefix}_000.jpg``, ...). Each file appears whole or not at all.

    Returns:
        The file names, relative to ``folder``, in page order.
    """
    folder = Path(folder)
    stem = safe_component(prefix)
    suffix, image_format, options = (
        ("png", "PNG", {}) if pages.grayscale else ("jpg", "JPEG", {"quality": JPEG_QUALITY})
    )
    names = []
    for number, page in enumerate(pages.pages):
        name = f"{stem}_{number:03d}.{suffix}"
        with atomic_file(folder / name) as handle:
            Image.fromarray(page).save(handle, format=image_format, **options)
        names.append(name)
    return names
