"""The explorable report's arrays (rdx.report.assets) and their files (rdx.sinks.report_files)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rdx.report.assets import (
    default_tile,
    map_embeddings,
    neighbour_tables,
    scale_to_unit_square,
    thumbnail_pages,
)
from rdx.sinks.report_files import write_thumbnail_pages

# ------------------------------------------------------------------------------------------------
# thumbnails
# ------------------------------------------------------------------------------------------------


def tile_at(pages, i: int) -> np.ndarray:
    page, row, column = pages.position(i)
    t = pages.tile
    return pages.pages[page][row * t : (row + 1) * t, column * t : (column + 1) * t]


@pytest.mark.parametrize("rgb", [False, True])
def test_every_image_is_found_at_its_position(rgb: bool):
    rng = np.random.default_rng(0)
    shape = (75, 8, 8, 3) if rgb else (75, 8, 8)
    images = rng.integers(0, 256, size=shape, dtype=np.uint8)
    pages = thumbnail_pages(images, columns=4)  # 16 per page: pages of 16, 16, 16, 16, 11
    assert (pages.tile, pages.per_page, pages.n_images, pages.grayscale) == (8, 16, 75, not rgb)
    assert len(pages.pages) == 5
    assert pages.position(0) == (0, 0, 0)
    assert pages.position(21) == (1, 1, 1)
    assert pages.position(74) == (4, 2, 2)
    for i in range(75):
        np.testing.assert_array_equal(tile_at(pages, i), images[i])
    with pytest.raises(IndexError):
        pages.position(75)


def test_grayscale_with_a_channel_axis_is_grayscale():
    images = np.arange(2 * 5 * 5, dtype=np.uint8).reshape(2, 5, 5, 1)
    pages = thumbnail_pages(images)
    assert pages.grayscale and pages.pages[0].shape == (5, 32 * 5)
    np.testing.assert_array_equal(tile_at(pages, 1), images[1, ..., 0])


def test_last_page_is_as_tall_as_its_rows_and_blank_cells_are_padding():
    images = np.full((2 * 9 + 4, 6, 6), 200, dtype=np.uint8)  # 3 columns: two full pages, then 4
    pages = thumbnail_pages(images, columns=3)
    assert [page.shape for page in pages.pages] == [(18, 18), (18, 18), (12, 18)]
    last = pages.pages[-1]
    assert (last[:6] == 200).all() and (last[6:, :6] == 200).all()
    assert (last[6:, 6:] == 0).all()  # the two unused cells of the last row: grayscale padding
    rgb = thumbnail_pages(np.zeros((4, 6, 6, 3), dtype=np.uint8), columns=3)
    assert rgb.pages[0].shape == (12, 18, 3)
    assert (rgb.pages[0][6:, 6:] == 255).all()  # RGB padding is white


def test_a_non_square_image_is_letterboxed_at_native_size():
    image = np.random.default_rng(1).integers(1, 256, size=(1, 10, 20), dtype=np.uint8)
    pages = thumbnail_pages(image)  # tile 20: no resampling, bars above and below
    tile = tile_at(pages, 0)
    assert pages.tile == 20 and tile.shape == (20, 20)
    np.testing.assert_array_equal(tile[5:15], image[0])
    assert (tile[:5] == 0).all() and (tile[15:] == 0).all()


def test_a_large_non_square_rgb_image_is_shrunk_keeping_its_aspect_and_centred():
    image = np.zeros((1, 128, 64, 3), dtype=np.uint8)
    image[...] = (10, 120, 230)
    pages = thumbnail_pages(image)
    tile = tile_at(pages, 0)
    assert pages.tile == 64 == default_tile(128, 64) and tile.shape == (64, 64, 3)
    # 128 x 64 -> 64 x 32, columns 16..47 hold the image, the bars left and right are white
    assert (tile[:, :16] == 255).all() and (tile[:, 48:] == 255).all()
    assert (np.abs(tile[:, 16:48].astype(int) - (10, 120, 230)) <= 1).all()


def test_default_tile_is_native_up_to_64_pixels():
    assert default_tile(28, 28) == 28 and default_tile(64, 40) == 64 and default_tile(96, 96) == 64


def test_pages_are_written_as_png_for_grayscale_and_jpeg_for_rgb(tmp_path):
    grey = thumbnail_pages(np.random.default_rng(2).integers(0, 256, (20, 7, 7), dtype=np.uint8), columns=4)
    names = write_thumbnail_pages(grey, tmp_path / "report")
    assert names == ["thumbs_000.png", "thumbs_001.png"]
    for name, page in zip(names, grey.pages, strict=True):
        with Image.open(tmp_path / "report" / name) as image:
            assert image.format == "PNG" and image.mode == "L"
            np.testing.assert_array_equal(np.asarray(image), page)  # lossless
    rgb = thumbnail_pages(np.full((5, 12, 12, 3), 90, dtype=np.uint8), columns=2)
    names = write_thumbnail_pages(rgb, tmp_path / "report", prefix="rgb")
    assert names == ["rgb_000.jpg", "rgb_001.jpg"]
    with Image.open(tmp_path / "report" / "rgb_001.jpg") as image:
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (24, 12)
    written = sorted(path.name for path in (tmp_path / "report").iterdir())
    assert written == ["rgb_000.jpg", "rgb_001.jpg", "thumbs_000.png", "thumbs_001.png"]  # no temporaries


# ------------------------------------------------------------------------------------------------
# neighbours
# ------------------------------------------------------------------------------------------------


def plain_neighbour_table(X_own: np.ndarray, X_other: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute force in float64: sort each row by (distance, index), count strictly closer images."""

    def distances(X: np.ndarray) -> np.ndarray:
        X = X.astype(np.float64)
        return np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=-1))

    own, other = distances(X_own), distances(X_other)
    n = len(X_own)
    index = np.empty((n, k), dtype=np.int64)
    rank = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        others = np.delete(np.arange(n), i)
        index[i] = others[np.lexsort((others, own[i, others]))][:k]
        rank[i] = 1 + (other[i, others][None, :] < other[i, index[i]][:, None]).sum(axis=1)
    return index, rank


def assert_tables_match_plain(X_A: np.ndarray, X_B: np.ndarray, k: int, **options) -> None:
    tables = neighbour_tables(X_A, X_B, k=k, **options)
    for side, (own, other) in {"A": (X_A, X_B), "B": (X_B, X_A)}.items():
        index, rank = plain_neighbour_table(own, other, min(k, len(X_A) - 1))
        assert tables[side].index.dtype == np.int32 and tables[side].rank_in_other.dtype == np.int32
        np.testing.assert_array_equal(tables[side].index, index)
        np.testing.assert_array_equal(tables[side].rank_in_other, rank)


@pytest.mark.parametrize("block_rows", [None, 37])
def test_neighbour_tables_equal_brute_force_on_continuous_data_with_duplicates(block_rows):
    rng = np.random.default_rng(3)
    X_A = rng.normal(size=(300, 16)).astype(np.float32) + 40  # far from the origin: centring matters
    X_B = rng.normal(size=(300, 48)).astype(np.float32)
    X_A[100:110] = X_A[7]  # exact duplicates: tied at distance 0, ordered by index, rank 1
    X_B[200:204] = X_B[3]
    X_B[250] = X_B[100]
    assert_tables_match_plain(X_A, X_B, k=12, block_rows=block_rows)


def test_neighbour_tables_equal_brute_force_on_heavily_tied_integer_data():
    rng = np.random.default_rng(4)
    X_A = rng.integers(-2, 3, size=(300, 3)).astype(np.float32)  # 125 distinct points: ties everywhere
    X_B = rng.integers(-3, 4, size=(300, 2)).astype(np.float32)
    assert_tables_match_plain(X_A, X_B, k=12, block_rows=64)


def test_k_is_clipped_to_the_other_images():
    rng = np.random.default_rng(5)
    X_A, X_B = rng.normal(size=(6, 3)), rng.normal(size=(6, 4))
    tables = neighbour_tables(X_A, X_B, k=12)
    assert tables["A"].index.shape == tables["B"].rank_in_other.shape == (6, 5)
    for i in range(6):  # every other image once; ranks in the other model a permutation of 1..5
        assert sorted(tables["A"].index[i]) == [j for j in range(6) if j != i]
        assert sorted(tables["A"].rank_in_other[i]) == [1, 2, 3, 4, 5]
    assert_tables_match_plain(X_A, X_B, k=12)


# ------------------------------------------------------------------------------------------------
# maps
# ------------------------------------------------------------------------------------------------


def test_pca_maps_are_the_figures_pca_scaled_into_the_unit_square():
    from rdx.viz.scatter import pca_2d  # the figures' PCA, as existing callers import it

    rng = np.random.default_rng(6)
    X_A, X_B = rng.normal(size=(80, 10)) * [5, 1, 1, 1, 1, 1, 1, 1, 1, 1], rng.normal(size=(80, 3))
    maps = map_embeddings(X_A, X_B, umap=False)
    assert set(maps) == {"pca"}
    for side, X in (("A", X_A), ("B", X_B)):
        coordinates, _ = pca_2d(X)
        low, extent = coordinates.min(axis=0), coordinates.max(axis=0) - coordinates.min(axis=0)
        expected = (coordinates - low) / extent.max() + (1 - extent / extent.max()) / 2
        got = maps["pca"][side]
        assert got.dtype == np.float32 and got.shape == (80, 2)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert got.min() >= 0 and got.max() <= 1
        assert np.isclose(got[:, 0].max() - got[:, 0].min(), 1)  # PC1 is the longer axis


def test_unit_square_scaling_keeps_the_aspect_and_centres_the_short_axis():
    points = np.array([[-2.0, 10.0], [2.0, 11.0], [0.0, 12.0]])
    scaled = scale_to_unit_square(points)
    np.testing.assert_allclose(scaled, [[0, 0.25], [1, 0.5], [0.5, 0.75]], atol=1e-7)
    np.testing.assert_array_equal(scale_to_unit_square(np.ones((4, 2))), np.full((4, 2), 0.5, np.float32))


def test_umap_auto_skips_above_the_limit_and_bad_values_fail():
    X = np.random.default_rng(7).normal(size=(30, 4))
    assert set(map_embeddings(X, X, umap="auto", umap_max_n=20)) == {"pca"}
    with pytest.raises(ValueError, match="umap must be"):
        map_embeddings(X, X, umap="yes")
    with pytest.raises(ValueError, match="same images"):
        map_embeddings(X, X[:10], umap=False)


@pytest.mark.slow  # compiles UMAP's numba code (~10 s on 2 CPU cores)
def test_umap_maps_are_seeded_and_in_the_unit_square():
    rng = np.random.default_rng(8)
    X_A, X_B = rng.normal(size=(60, 8)), rng.normal(size=(60, 5))
    first = map_embeddings(X_A, X_B, umap=True, seed=3)
    again = map_embeddings(X_A, X_B, umap=True, seed=3)
    for side in ("A", "B"):
        coordinates = first["umap"][side]
        assert coordinates.shape == (60, 2) and coordinates.dtype == np.float32
        assert coordinates.min() >= 0 and coordinates.max() <= 1
        np.testing.assert_array_equal(coordinates, again["umap"][side])


def test_the_assets_module_does_not_load_matplotlib():
    """The report's arrays are built without matplotlib (rdx.report's table names load lazily)."""
    code = "import sys, rdx.report.assets; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
