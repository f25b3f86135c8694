"""Files of a run's explorable report: ``report.html``, ``report_files/points.js`` and the thumbnail
sprite pages (arrays from ``rdx.report.assets``, page from ``rdx.report.page``), and the single-file
copy W&B shows as an HTML panel.

Written atomically like every run-dir file (``rdx.sinks.files.atomic_file``).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from rdx.record import RunResult
from rdx.sections import settings_from_config
from rdx.sinks.files import atomic_file, safe_component

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ReportSettings:
    """The ``report`` config of rdx-compare (conf/compare.yaml)."""

    enabled: bool = True
    neighbours: int = 12
    thumbnail_px: int | None = None
    umap: bool | str = "auto"
    umap_max_n: int = 20_000
    wandb_max_mb: float = 20.0
    member_page: int = 200

    def __post_init__(self) -> None:
        if self.member_page < 1:
            raise ValueError(f"report.member_page must be at least 1, got {self.member_page}")
        if self.neighbours < 1:
            raise ValueError(f"report.neighbours must be at least 1, got {self.neighbours}")
        if self.thumbnail_px is not None and not 8 <= self.thumbnail_px <= 256:
            raise ValueError(f"report.thumbnail_px must be null or within 8..256, got {self.thumbnail_px}")
        if self.umap not in (True, False, "auto"):
            raise ValueError(f"report.umap must be true, false or auto, got {self.umap!r}")
        if self.wandb_max_mb < 0:
            raise ValueError(f"report.wandb_max_mb must be >= 0, got {self.wandb_max_mb}")


def report_settings(config: Mapping[str, Any] | None) -> ReportSettings:
    """The checked ``report`` config (None: the defaults); a bad value fails before any work."""
    return settings_from_config(ReportSettings, config, "report")


def display_size(tile: int) -> int:
    """The thumbnails' size on the page: small tiles (MNIST's 28 px) shown at an integer multiple near
    48 px, pixelated; larger ones at their own size."""
    return tile * max(1, round(48 / tile))


def write_report(
    record: RunResult,
    output_dir: Path,
    images: np.ndarray,
    labels: np.ndarray,
    features: Mapping[str, np.ndarray],
    settings: ReportSettings,
    device: str = "cpu",
    seed: int = 0,
    single_file: bool = False,
) -> tuple[dict[str, Any], str | None]:
    """Compute the report's assets from the run's arrays and write ``report.html`` and ``report_files/``.

    Thumbnail sprite pages (``rdx.report.assets.thumbnail_pages``), each image's nearest neighbours in
    both models with their ranks in the other (``neighbour_tables``), the 2-D maps (``map_embeddings``),
    then the page (``rdx.report.page``). The grids are the run's grid figures (``record.figures``).

    Returns:
        The record's ``report`` entry (file, layout, sizes), and with ``single_file`` the page with every
        file inline (for W&B's HTML panel), or None when that exceeds ``settings.wandb_max_mb``.
    """
    from rdx.report.assets import map_embeddings, neighbour_tables, thumbnail_pages
    from rdx.report.page import FILES_DIR, POINTS_FILE, REPORT_FILE, points_data, points_script, render_page

    output_dir = Path(output_dir)
    thumbs = thumbnail_pages(images, settings.thumbnail_px)
    pages = [f"{FILES_DIR}/{name}" for name in write_thumbnail_pages(thumbs, output_dir / FILES_DIR)]
    neighbours = neighbour_tables(features["A"], features["B"], settings.neighbours, device=device)
    maps = map_embeddings(
        features["A"], features["B"], umap=settings.umap, seed=seed, umap_max_n=settings.umap_max_n
    )
    k = min(settings.neighbours, len(labels) - 1)
    entry: dict[str, Any] = {
        "file": REPORT_FILE,
        "thumbs": {
            "tile": thumbs.tile,
            "columns": thumbs.columns,
            "per_page": thumbs.per_page,
            "pages": pages,
        },
        "thumb_size": display_size(thumbs.tile),
        "maps": list(maps),
        "neighbours": k,
        "member_page": settings.member_page,
    }
    data = page_data(record, entry, labels)
    points = points_data(record, labels, maps, neighbours)
    with atomic_file(output_dir / POINTS_FILE, "w") as handle:
        handle.write(points_script(points))
    with atomic_file(output_dir / REPORT_FILE, "w") as handle:
        handle.write(render_page(data))
    grids = [c["grid_file"] for method in data["methods"] for c in method["concepts"] if c["grid_file"]]
    files = {REPORT_FILE, POINTS_FILE, *pages, *grids}
    entry["bytes"] = sum((output_dir / name).stat().st_size for name in files)
    return entry, single_file_page(data, points, output_dir, settings.wandb_max_mb) if single_file else None


def page_data(record: RunResult, entry: Mapping[str, Any], labels: np.ndarray) -> dict[str, Any]:
    """The page's inline data from the record and its ``report`` entry (how the files were laid out)."""
    from rdx.report.page import MEMBER_PAGE_SIZE, report_data
    from rdx.viz.comparison import grid_key
    from rdx.viz.scatter import label_colours_hex

    grid_files = {
        (label, concept.side, concept.index): record.figures[key]
        for label, method in record.methods.items()
        for concept in method.concepts
        if (key := grid_key(label, concept.side, concept.index)) in record.figures
    }
    return report_data(
        record,
        entry["thumbs"],
        grid_files,
        label_colours_hex(labels),
        list(entry["maps"]),
        int(entry["neighbours"]),
        int(entry["thumb_size"]),
        int(entry.get("member_page", MEMBER_PAGE_SIZE)),
    )


def _data_uri(path: Path) -> str:
    kind = {".png": "image/png", ".jpg": "image/jpeg"}[path.suffix]
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def single_file_page(
    data: Mapping[str, Any], points: Mapping[str, Any], output_dir: Path, max_mb: float
) -> str | None:
    """The report as one file (thumbnails, grids and points inline as data), or None above ``max_mb``."""
    from rdx.report.page import render_page

    inline = dict(data)
    inline["thumbs"] = dict(
        data["thumbs"], pages=[_data_uri(output_dir / p) for p in data["thumbs"]["pages"]]
    )
    inline["methods"] = [
        dict(
            method,
            concepts=[
                dict(c, grid_file=None if c["grid_file"] is None else _data_uri(output_dir / c["grid_file"]))
                for c in method["concepts"]
            ],
        )
        for method in data["methods"]
    ]
    page = render_page(inline, points)
    size_mb = len(page.encode("utf-8")) / 2**20
    if size_mb > max_mb:
        log.warning(
            "the single-file report is %.1f MB, above report.wandb_max_mb=%s: not logged to W&B "
            "(report.html in the run dir has everything)",
            size_mb,
            max_mb,
        )
        return None
    return page
