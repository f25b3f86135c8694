"""The arrays behind a run's explorable HTML report: thumbnail sprite pages, neighbour tables and 2-D maps.

Pure functions over arrays (numpy, torch, PIL, scikit-learn; no matplotlib or pandas); the files are
written by ``rdx.sinks.report_files``. What each array means:

- ``thumbnail_pages``: every image as a square tile on sprite pages; ``ThumbnailPages.position(i)``
  says where image i is.
- ``neighbour_tables``: per model ("A", "B") each image's k nearest other images, and the rank each of
  them has among the image's neighbours in the other model.
- ``map_embeddings``: per model a PCA map (and a UMAP map), scaled into the unit square.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from rdx.devices import resolve_device
from rdx.methods.embedding import pca_embedding, umap_available, umap_embedding
from rdx.methods.explanation import SIDES
from rdx.methods.neighbourhoods import (
    centred_features,
    count_below,
    neighbour_keys,
    row_blocks,
    top_neighbours,
)

log = logging.getLogger(__name__)

MAX_TILE = 64  # default tile side: the native size up to this, else this
GREY_PAD = 0  # letterbox and empty-cell fill of grayscale pages: black, the background of MNIST-like data
RGB_PAD = 255  # ... of RGB pages: white, the page's background
NEIGHBOUR_BLOCK_BYTES = 64 * 1024**2  # one row block of float32 distances (per model) by default
UMAP_NEIGHBOURS = 15
UMAP_MIN_DIST = 0.1
UMAP_MIN_N = 4  # UMAP's spectral initialisation needs 2 dimensions below N - 1
# umap="auto" embeds up to this many images. Measured on 2 CPU cores (d = 128, both models, first call
# of a process): N = 1,500 in 16 s (3.3 s per model once compiled), N = 20,000 in 52 s (11.5 s per
# model once compiled; above 4,096 images UMAP's nearest-neighbour descent compiles too, ~25 s).
# Time grows about linearly beyond; 20,000 images is the exact path's usual ceiling.
DEFAULT_UMAP_MAX_N = 20_000


# ------------------------------------------------------------------------------------------------
# thumbnails
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ThumbnailPages:
    """Sprite pages of square thumbnails, packed row-major.

    Attributes:
        pages: uint8 arrays, (rows * tile, columns * tile) grayscale or (..., 3) RGB; every page is
            ``columns`` tiles wide and ``columns`` tiles tall except the last, which is only as tall as
            its used rows.
        tile: side of one thumbnail in pixels.
        columns: tiles per page row (and rows per full page).
        per_page: tiles per full page, columns * columns.
        n_images: number of images N.
        grayscale: whether the pages are (H, W) grayscale rather than (H, W, 3) RGB.
    """

    pages: list[np.ndarray]
    tile: int
    columns: int
    per_page: int
    n_images: int
    grayscale: bool

    def position(self, i: int) -> tuple[int, int, int]:
        """(page, row, column) of image i's tile; its pixels start at (row * tile, column * tile)."""
        if not 0 <= i < self.n_images:
            raise IndexError(f"image {i} is outside 0..{self.n_images - 1}")
        page, within = divmod(int(i), self.per_page)
        row, column = divmod(within, self.columns)
        return page, row, column


def default_tile(height: int, width: int) -> int:
    """The native size max(H, W) when it is at most ``MAX_TILE`` (64) pixels, else 64."""
    return min(max(height, width), MAX_TILE)


def _as_image_stack(images: np.ndarray) -> tuple[np.ndarray, bool]:
    """(N, H, W) or (N, H, W, 3) uint8 images, and whether they are grayscale; (N, H, W, 1) is grayscale."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"thumbnails need uint8 images, got {images.dtype}")
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 3:
        return images, True
    if images.ndim == 4 and images.shape[-1] == 3:
        return images, False
    raise ValueError(f"images must be (N, H, W), (N, H, W, 1) or (N, H, W, 3), got shape {images.shape}")


def _tiles(images: np.ndarray, tile: int, pad: int) -> np.ndarray:
    """Each image fitted into a ``tile`` x ``tile`` square, aspect kept, centred (letterboxed)."""
    n, height, width = images.shape[:3]
    if height == width == tile:
        return images
    scale = tile / max(height, width)
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    top, left = (tile - new_height) // 2, (tile - new_width) // 2
    tiles = np.full((n, tile, tile) + images.shape[3:], pad, dtype=np.uint8)
    window = tiles[:, top : top + new_height, left : left + new_width]
    if (new_height, new_width) == (height, width):  # the long side is already the tile: pad only
        window[:] = images
        return tiles
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST
    for index, image in enumerate(images):
        window[index] = np.asarray(Image.fromarray(image).resize((new_width, new_height), resample))
    return tiles


def _page(tiles: np.ndarray, columns: int, pad: int) -> np.ndarray:
    """Tiles (m, t, t[, 3]) laid out row-major, ``columns`` wide and ceil(m / columns) tall."""
    m, tile = tiles.shape[:2]
    rows = -(-m // columns)
    if m < rows * columns:  # empty cells of the last row
        blank = np.full((rows * columns - m,) + tiles.shape[1:], pad, dtype=np.uint8)
        tiles = np.concatenate([tiles, blank])
    grid = tiles.reshape((rows, columns, tile, tile) + tiles.shape[3:])
    return np.ascontiguousarray(grid.swapaxes(1, 2)).reshape((rows * tile, columns * tile) + tiles.shape[3:])


def thumbnail_pages(images: np.ndarray, tile: int | None = None, columns: int = 32) -> ThumbnailPages:
    """Every image as a square thumbnail on sprite pages of ``columns`` x ``columns`` tiles.

    Image i is on page i // (columns * columns), at row (i % per_page) // columns and column
    i % columns. An image is scaled so its longer side is ``tile`` pixels (aspect kept: PIL's LANCZOS
    when shrinking, nearest-neighbour when enlarging, no resampling at the native size) and centred
    in its square. Letterbox bars and the empty cells of the last row are filled with black (0) on
    grayscale pages (the background of MNIST-like data) and white (255) on RGB pages.

    Args:
        images: (N, H, W), (N, H, W, 1) grayscale or (N, H, W, 3) RGB, uint8.
        tile: thumbnail side in pixels; None: max(H, W) when at most 64, else 64.
        columns: tiles per page row (and rows per full page).

    Returns:
        ``ThumbnailPages``; grayscale pages are (rows * tile, columns * tile), RGB pages add a 3.
    """
    images, grayscale = _as_image_stack(images)
    n, height, width = images.shape[:3]
    tile = default_tile(height, width) if tile is None else int(tile)
    if tile < 1 or columns < 1:
        raise ValueError(f"tile and columns must be positive, got tile={tile}, columns={columns}")
    per_page = columns * columns
    pad = GREY_PAD if grayscale else RGB_PAD
    pages = [
        _page(_tiles(images[start : start + per_page], tile, pad), columns, pad)
        for start in range(0, n, per_page)
    ]
    return ThumbnailPages(pages, tile, columns, per_page, n, grayscale)


# ------------------------------------------------------------------------------------------------
# neighbours
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NeighbourTable:
    """One model's neighbour lists and their ranks in the other model.

    Attributes:
        index: (N, k) int32, row i the k nearest other images of image i, nearest first.
        rank_in_other: (N, k) int32, the 1-based rank of index[i, c] among image i's neighbours in the
            other model: 1 + #{l != i : d_other(i, l) < d_other(i, index[i, c])}.
    """

    index: np.ndarray
    rank_in_other: np.ndarray


def neighbour_tables(
    X_A: np.ndarray,
    X_B: np.ndarray,
    k: int = 12,
    block_rows: int | None = None,
    device: str | torch.device | None = "cpu",
) -> dict[str, NeighbourTable]:
    """Each image's k nearest other images in each model, and where those sit in the other model.

    For side "A": index[i] lists the k images nearest to i in X_A (Euclidean, nearest first, ties by
    smaller index, i itself excluded) and rank_in_other[i, c] = 1 + #{l != i : d_B(i, l) < d_B(i, j)}
    for j = index[i, c] (strictly less: tied images share the better rank; an image at distance 0
    from i in B has rank 1). Side "B" swaps the roles.

    Distances are never held as an N x N matrix: rows are processed in blocks of ``block_rows`` (each
    model's block b x N float32), by one matrix multiply per model on ``device``. The keys are float32
    squared distances less a per-row constant, from features centred on their rounded column means
    (``rdx.methods.neighbourhoods.centred_features``): exact data (integers, few-bit fractions) gives
    exact keys, so duplicate points tie exactly and ties go by index. Distances that differ by less
    than float32 rounding (~1e-7 of the squared norms) may be ordered either way, the same way on every
    run.

    Args:
        X_A, X_B: (N, d_A), (N, d_B) features of the same images.
        k: neighbours per image, clipped to N - 1.
        block_rows: rows per block; None: as many as make one model's block ~64 MB.
        device: torch device of the computation; the results are numpy arrays.

    Returns:
        {"A": NeighbourTable, "B": NeighbourTable}, each (N, k) int32.
    """
    X_A, X_B = np.asarray(X_A), np.asarray(X_B)
    if X_A.ndim != 2 or X_B.ndim != 2 or len(X_A) != len(X_B):
        raise ValueError(f"X_A and X_B must be (N, d) for the same N, got {X_A.shape} and {X_B.shape}")
    n = len(X_A)
    k = int(min(k, max(n - 1, 0)))
    if k < 0:
        raise ValueError(f"k must be non-negative, got {k}")
    device = resolve_device(device)
    index = [np.empty((n, k), dtype=np.int32) for _ in SIDES]
    rank_in_other = [np.empty((n, k), dtype=np.int32) for _ in SIDES]
    if k > 0:
        features = [centred_features(X, torch.float32, device) for X in (X_A, X_B)]
        blocks = (
            row_blocks(n, n, 4, NEIGHBOUR_BLOCK_BYTES)
            if block_rows is None
            else row_blocks(n, 1, 1, max(1, int(block_rows)))
        )
        for rows in blocks:
            keys = [neighbour_keys(f, norms, rows) for f, norms in features]
            # each image is its own first neighbour (key -inf) and is dropped; in the other model its
            # -inf key is below every threshold, which turns count_below into the 1-based rank
            top = [top_neighbours(key, k + 1)[:, 1:] for key in keys]
            for side, other in ((0, 1), (1, 0)):
                thresholds = keys[other].gather(1, top[side])
                index[side][rows] = top[side].cpu().numpy()
                rank_in_other[side][rows] = count_below(keys[other], thresholds).cpu().numpy()
            del keys
    return {
        side: NeighbourTable(index[position], rank_in_other[position]) for position, side in enumerate(SIDES)
    }


# ------------------------------------------------------------------------------------------------
# maps
# ------------------------------------------------------------------------------------------------


def scale_to_unit_square(coordinates: np.ndarray) -> np.ndarray:
    """2-D coordinates moved and scaled into [0, 1] x [0, 1], aspect kept, as float32.

    Both axes are scaled by the same factor, 1 / (the larger of the two axis extents): the longer axis
    spans [0, 1] exactly and the shorter one is centred in it. All points equal: every coordinate 0.5.
    """
    coordinates = np.asarray(coordinates, dtype=np.float64)
    low, high = coordinates.min(axis=0), coordinates.max(axis=0)
    extent = float((high - low).max())
    if not np.isfinite(extent) or extent == 0:
        return np.full(coordinates.shape, 0.5, dtype=np.float32)
    scaled = (coordinates - low) / extent + (1 - (high - low) / extent) / 2
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def map_embeddings(
    X_A: np.ndarray,
    X_B: np.ndarray,
    umap: bool | str = "auto",
    seed: int = 0,
    umap_max_n: int = DEFAULT_UMAP_MAX_N,
) -> dict[str, dict[str, np.ndarray]]:
    """2-D maps of both representations for the report, scaled into the unit square.

    "pca": ``rdx.methods.embedding.pca_embedding`` (the figures' PCA, same coordinates) per model.
    "umap": UMAP per model (n_neighbors 15, min_dist 0.1, ``random_state=seed``, single-threaded so
    reproducible). Each map is passed through ``scale_to_unit_square``: both axes scaled by one factor,
    the longer axis spanning [0, 1], the shorter centred; y grows upwards as in the embedding (a page
    drawing in screen coordinates flips it).

    Args:
        X_A, X_B: (N, d_A), (N, d_B) features of the same images.
        umap: "auto": UMAP when umap-learn imports and UMAP_MIN_N <= N <= ``umap_max_n``; False: no
            UMAP; True: UMAP always (ImportError without umap-learn, ValueError for N < 4).
        seed: PCA's and UMAP's random state.
        umap_max_n: the largest N "auto" embeds with UMAP (time grows about linearly with N).

    Returns:
        {"pca": {"A": (N, 2) float32, "B": ...}, "umap": {...}}; "umap" is absent when skipped.
    """
    X_A, X_B = np.asarray(X_A), np.asarray(X_B)
    if len(X_A) != len(X_B):
        raise ValueError(f"X_A and X_B must describe the same images, got {len(X_A)} and {len(X_B)} rows")
    n = len(X_A)
    pca = pca_embedding(X_A, X_B, seed)
    maps = {"pca": {side: scale_to_unit_square(pca[side][0]) for side in SIDES}}
    if _wants_umap(umap, n, umap_max_n):
        maps["umap"] = {}
        for side, X in zip(SIDES, (X_A, X_B), strict=True):
            coordinates = umap_embedding(X, 2, UMAP_NEIGHBOURS, seed, min_dist=UMAP_MIN_DIST)
            if coordinates.shape[1] < 2:  # one feature: UMAP gives one axis; the map gets a flat second
                coordinates = np.pad(coordinates, ((0, 0), (0, 2 - coordinates.shape[1])))
            maps["umap"][side] = scale_to_unit_square(coordinates)
    return maps


def _wants_umap(umap: bool | str, n: int, umap_max_n: int) -> bool:
    """Whether ``map_embeddings`` computes UMAP maps (raising where ``umap=True`` cannot be met)."""
    if umap is True:
        if not umap_available():
            raise ImportError("map_embeddings(umap=True) needs umap-learn: pip install umap-learn")
        if n < UMAP_MIN_N:
            raise ValueError(f"a UMAP map needs at least {UMAP_MIN_N} images, got {n}")
        return True
    if umap is False:
        return False
    if umap != "auto":
        raise ValueError(f"umap must be True, False or 'auto', got {umap!r}")
    if not UMAP_MIN_N <= n <= umap_max_n:
        log.info("report maps: no UMAP for N=%d (auto embeds %d..%d images)", n, UMAP_MIN_N, umap_max_n)
        return False
    if not umap_available():
        log.info("report maps: no UMAP (umap-learn does not import)")
        return False
    return True
