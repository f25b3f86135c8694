"""The explorable report of one comparison: ``report.html`` in the run dir, rendered from the run record.

The page is one HTML file with its CSS, script and the record's summary inline; per-image data (labels,
map coordinates, every method's members, each image's nearest neighbours in both models) is in
``report_files/points.js`` and the thumbnails in sprite pages ``report_files/thumbs_NNN.png|jpg``, both
loaded by the page after it has painted (a script tag and images: they load from ``file://`` where
``fetch`` would not). The concept grids are the run's own grid figures (``grids/...png``). Nothing is
fetched from the network and no N x N matrix is written: the neighbours are N x k.

This module is pure: :func:`report_data` and :func:`points_data` turn the record and the arrays into
plain data, :func:`render_page` into the HTML text. :mod:`rdx.sinks.report_files` writes the files.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np

from rdx.record import SIDES, MethodResult, RunResult, member_column
from rdx.report.table import OPTIONAL_TABLES, TABLES

REPORT_FILE = "report.html"
FILES_DIR = "report_files"
POINTS_FILE = f"{FILES_DIR}/points.js"
MEMBER_PAGE_SIZE = 200
# Short column titles of the scores table (the keys and cells are rdx-table's, rdx.report.table.TABLES).
SCORE_TITLES = {
    "mbsr_silb": "mBSR SILB",
    "mbsr_mned": "mBSR MNED",
    "mbsr_lsed": "mBSR LSED",
    "bsr_a_silb": "BSR A",
    "bsr_b_silb": "BSR B",
    "tsd_silb": "TSD",
    "eq_silb": "tie rate",
    "recovery": "planted recovery",
    "significant": "significant",
    "stability": "stability",
    "agreement": "agrees w/ main",
}
# Concept colours on the map (ColorBrewer Dark2 then Set1): dark enough to read over grey non-members.
CONCEPT_COLOURS = (
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
    "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf",
)  # fmt: skip


def _number(value: Any) -> float | None:
    """A JSON number, or None for a missing / NaN value."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def score_columns(record: RunResult) -> list[dict[str, Any]]:
    """The scores table's columns: rdx-table's tables (the optional ones, planted recovery, significance
    and stability, only when some method has a value), then the fit time."""
    columns = [
        {
            "key": key,
            "title": SCORE_TITLES.get(key, spec.title),
            "help": spec.title,
            "higher_is_better": spec.higher_is_better,
            "digits": 3,
        }
        for key, spec in TABLES.items()
        if key not in OPTIONAL_TABLES
        or any(_number(spec.cell(method)) is not None for method in record.methods.values())
    ]
    fit = {"key": "fit_s", "title": "fit s", "help": "fit time, seconds", "higher_is_better": False}
    columns.append(fit | {"digits": 2})
    return columns


def _method_data(method: MethodResult, grid_files: Mapping[tuple[str, str, int], str]) -> dict[str, Any]:
    grids = method.metrics.get("silb", {}).get("grids", {})
    concepts = []
    for side in SIDES:
        for position, concept in enumerate(method.side(side)):
            side_grids = grids.get(side, [])
            bsr = side_grids[position].get("bsr") if position < len(side_grids) else None
            concepts.append(
                {
                    "side": side,
                    "index": concept.index,
                    "size": concept.size,
                    "score": _number(concept.score),
                    "bsr": _number(bsr),
                    "grid": concept.grid,
                    "label_counts": concept.member_label_counts,
                    "p": _number(concept.p_value),
                    "q": _number(concept.q_value),
                    "stability": _number(concept.stability),
                    "grid_file": grid_files.get((method.label, side, concept.index)),
                }
            )
    table = {key: _number(spec.cell(method)) for key, spec in TABLES.items()}
    table["fit_s"] = _number(method.fit_s)
    failed = method.metrics.get("silb", {}).get("failed")
    significance = method.significance or {}
    return {
        "label": method.label,
        "name": method.name,
        "alpha": significance.get("alpha"),
        "table": table,
        "failed": failed,
        "concepts": concepts,
    }


def report_data(
    record: RunResult,
    thumbs: Mapping[str, Any],
    grid_files: Mapping[tuple[str, str, int], str],
    label_colours: Mapping[int, str],
    maps: list[str],
    neighbours_k: int,
    thumb_size: int,
    member_page: int = MEMBER_PAGE_SIZE,
) -> dict[str, Any]:
    """The page's inline data (``window.RDX_REPORT``): everything but the per-image arrays.

    Args:
        record: the finished run record.
        thumbs: the sprite layout: ``tile``, ``columns``, ``per_page`` and the page files ``pages``.
        grid_files: (method label, side, concept index) → the grid figure's path relative to the page.
        label_colours: a CSS colour per label (as the figures colour them).
        maps: the 2-D embeddings in points.js ("pca", and "umap" when computed).
        neighbours_k: neighbours per image in points.js.
        thumb_size: the thumbnails' display size in CSS pixels.
        member_page: thumbnails per page of an opened concept.
    """
    names = record.label_names or {}
    labels = [int(label) for label in record.dataset.get("classes", []) if str(label).lstrip("-").isdigit()]
    labels = labels or sorted(int(label) for label in label_colours)
    representations = record.representations or {}
    models = {side: dict(record.models.get(side, {})) for side in SIDES}
    return {
        "version": 1,
        "title": f"{models['A'].get('name', 'A')} vs {models['B'].get('name', 'B')} · "
        f"{record.dataset.get('name', '')} · {record.task_name}",
        "task": record.task_name,
        "n": int(record.dataset.get("n_images", 0)),
        "models": models,
        "feature_dims": {side: record.features.get(side, {}).get("dim") for side in SIDES},
        "dataset": record.dataset,
        "labels": labels,
        "label_names": {str(label): str(names.get(label, label)) for label in labels},
        "label_colours": {str(label): colour for label, colour in label_colours.items()},
        "concept_colours": list(CONCEPT_COLOURS),
        "cka": _number(representations.get("cka")),
        "probe": representations.get("probe"),
        "planted": None
        if record.planted is None
        else {key: record.planted.get(key) for key in ("description", "mix_A", "mix_B")},
        "main": record.main_method,
        "side_meaning": record.side_meaning,
        "score_columns": score_columns(record),
        "methods": [_method_data(method, grid_files) for method in record.methods.values()],
        "agreement": record.agreement,
        "thumbs": dict(thumbs),
        "thumb_size": int(thumb_size),
        "points_file": POINTS_FILE,
        "maps": list(maps),
        "neighbours_k": int(neighbours_k),
        "member_page_size": int(member_page),
    }


def points_data(
    record: RunResult,
    labels: np.ndarray,
    maps: Mapping[str, Mapping[str, np.ndarray]],
    neighbours: Mapping[str, Any],
) -> dict[str, Any]:
    """The per-image data of ``points.js`` (``window.RDX_POINTS``), arrays flattened row-major.

    Args:
        record: the run record with every method's members in memory.
        labels: each image's label (N,).
        maps: embedding name → side → (N, 2) coordinates scaled into [0, 1].
        neighbours: side → a table with ``index`` and ``rank_in_other`` (N, k) (rdx.report.assets).
    """
    members = {}
    for label, method in record.methods.items():
        if method.members is None:
            raise ValueError(f"method {label!r} has no members in memory")
        for side in SIDES:
            members[member_column(label, side)] = np.asarray(method.members[side]).astype(int).tolist()
    return {
        "labels": np.asarray(labels).astype(int).tolist(),
        "embeddings": {name: {side: _rounded(xy) for side, xy in by.items()} for name, by in maps.items()},
        "members": members,
        "neighbours": {
            side: {
                "index": np.asarray(table.index).astype(int).ravel().tolist(),
                "rank_in_other": np.asarray(table.rank_in_other).astype(int).ravel().tolist(),
            }
            for side, table in neighbours.items()
        },
    }


def _rounded(xy: np.ndarray) -> list[float]:
    """Map coordinates in [0, 1], flattened, to 4 decimals (a tenth of a pixel on a 1,000 px panel)."""
    return np.round(np.asarray(xy, dtype=np.float64), 4).ravel().tolist()


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside a <script> element (no "</script>" can close it early)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def points_script(points: Mapping[str, Any]) -> str:
    """The text of ``points.js``."""
    return f"window.RDX_POINTS = {_json_for_script(points)};\n"


def static_text(name: str) -> str:
    """The text of a file in rdx/report/static (CSS, script or template inlined into a page)."""
    return resources.files("rdx.report").joinpath("static", name).read_text(encoding="utf-8")


def escape_html(text: str) -> str:
    """``text`` safe as HTML text and inside a double-quoted attribute."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_page(data: Mapping[str, Any], points: Mapping[str, Any] | None = None) -> str:
    """The report's HTML: the template with CSS, script and ``data`` inline. With ``points`` the per-image
    data is inline too (one file for W&B's HTML panel) instead of loaded from ``data["points_file"]``."""
    data = dict(data)
    inline_points = ""
    if points is not None:
        data["points_file"] = None
        inline_points = f"<script>\n{points_script(points)}</script>\n"
    models = data["models"]
    umap_note = (
        "UMAP (n_neighbors 15, min_dist 0.1) and PCA"
        if "umap" in data["maps"]
        else "PCA (UMAP when umap-learn is installed and N is within report.umap_max_n)"
    )
    replacements = {
        "__TITLE__": escape_html(data["title"]),
        "__MAIN__": escape_html(str(data["main"])),
        "__NAME_A__": escape_html(str(models["A"].get("name", "A"))),
        "__NAME_B__": escape_html(str(models["B"].get("name", "B"))),
        "__MAP_NOTE__": escape_html(
            f"Coordinates: {umap_note} of each model's features, scaled to the panel. Hover a point for its "
            "image; click a point for its neighbours in both models."
        ),
        "__CSS__": static_text("report.css"),
        "__DATA__": _json_for_script(data),
        "__POINTS__": inline_points,
        "__JS__": static_text("sort.js") + static_text("report.js"),
    }
    # one pass, so no inserted text (a model named "__JS__", say) is itself replaced
    template = static_text("report.html")
    return re.sub(r"__[A-Z_]+?__", lambda m: replacements.get(m.group(0), m.group(0)), template)
