"""Tests for rdx.data.folders (image folders) and rdx.data.precomputed (feature files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rdx.data.folders import (
    list_class_folders,
    list_images,
    load_image_folder,
    make_thumbnail,
    resolve_classes,
)
from rdx.data.mnist import DataSourceError
from rdx.data.precomputed import (
    load_feature_file,
    load_precomputed_dataset,
    read_image_list,
    read_labels,
)

SYNSETS = ["n01440764", "n01443537", "n02085620", "n03775071"]
N_IMAGES = 7
INAT_FOLDERS = [
    "00000_Plantae_Tracheophyta_Magnoliopsida_Sapindales_Sapindaceae_Acer_rubrum",
    "00001_Plantae_Tracheophyta_Magnoliopsida_Sapindales_Sapindaceae_Acer_saccharum",
    "00002_Plantae_Tracheophyta_Magnoliopsida_Fagales_Fagaceae_Quercus_rubra",
    "00003_Animalia_Chordata_Amphibia_Anura_Bufonidae_Bufo_rubrum",
]


def image_colour(class_index: int, image_index: int) -> tuple[int, int, int]:
    """A distinct flat colour per image, so a thumbnail tells which file it came from."""
    return (40 * class_index + 20, 30 * image_index + 10, 200 - 20 * class_index)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 synset folders × 7 flat-colour images of different sizes (PNG, and JPEG with odd-case suffixes),
    plus files and folders that are not images of the class."""
    root = tmp_path_factory.mktemp("imagenet") / "train"
    for class_index, synset in enumerate(SYNSETS):
        folder = root / synset
        folder.mkdir(parents=True)
        for image_index in range(N_IMAGES):
            size = (20 + 3 * image_index, 16 + 5 * class_index)
            image = Image.new("RGB", size, image_colour(class_index, image_index))
            if image_index % 3 == 2:
                image.save(folder / f"{synset}_{image_index:02d}.JPEG", quality=95)
            else:
                image.save(folder / f"{synset}_{image_index:02d}.png")
        (folder / "notes.txt").write_text("not an image")
        (folder / ".hidden.png").write_bytes(b"resource fork junk")
        (folder / "nested").mkdir()
        Image.new("RGB", (8, 8)).save(folder / "nested" / "deeper.png")
    (root / ".cache").mkdir()
    (root / "README.txt").write_text("a file, not a class")
    return root


@pytest.fixture(scope="module")
def inat_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("inat") / "train"
    for folder in INAT_FOLDERS:
        (root / folder).mkdir(parents=True)
        for image_index in range(2):
            Image.new("L", (12, 10), 50 * image_index).save(root / folder / f"{image_index}.jpg")
    return root


# ------------------------------------------------------------------------------------ class folders


def test_list_class_folders_is_sorted_and_skips_files_and_hidden(image_root: Path) -> None:
    assert list_class_folders(image_root) == sorted(SYNSETS)


def test_missing_root_says_how_to_point_at_a_copy(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "imagenet"
    with pytest.raises(DataSourceError, match="set dataset.root=/path/to/images") as caught:
        list_class_folders(missing)
    assert str(missing) in str(caught.value)
    with pytest.raises(DataSourceError, match="dataset.root="):
        load_image_folder(missing, ["n01440764"], n_per_class=1, progress=False)


def test_resolve_classes_by_name_and_index_keeps_the_requested_order(image_root: Path) -> None:
    resolved = resolve_classes(image_root, ["n03775071", 0, np.int64(2)])
    assert resolved == [("n03775071", "n03775071"), ("n01440764", "n01440764"), ("n02085620", "n02085620")]


def test_resolve_classes_out_of_range_index_says_how_many_folders(image_root: Path) -> None:
    with pytest.raises(DataSourceError, match=r"holds 4 class folders.*0\.\.3"):
        resolve_classes(image_root, [4])


def test_resolve_classes_unknown_name_suggests_close_matches(image_root: Path) -> None:
    with pytest.raises(DataSourceError, match="n03775071") as caught:
        resolve_classes(image_root, ["n03775017"])
    message = str(caught.value)
    assert "no class folder 'n03775017'" in message and "4 class folders" in message
    assert "close matches" in message


def test_resolve_classes_rejects_duplicates_also_by_index(image_root: Path) -> None:
    with pytest.raises(ValueError, match="more than once"):
        resolve_classes(image_root, ["n01440764", "n01440764"])
    with pytest.raises(ValueError, match="n01440764"):
        resolve_classes(image_root, ["n01440764", 0])


def test_resolve_classes_rejects_unknown_match_mode(image_root: Path) -> None:
    with pytest.raises(ValueError, match="match must be one of"):
        resolve_classes(image_root, ["n01440764"], match="fuzzy")


def test_resolve_species_by_name_case_insensitive(inat_root: Path) -> None:
    resolved = resolve_classes(inat_root, ["Acer rubrum", "quercus RUBRA", 1], match="species")
    assert resolved == [
        (INAT_FOLDERS[0], "Acer rubrum"),
        (INAT_FOLDERS[2], "quercus RUBRA"),
        (INAT_FOLDERS[1], INAT_FOLDERS[1]),
    ]
    # a whole folder name also matches
    assert resolve_classes(inat_root, [INAT_FOLDERS[3]], match="species") == [
        (INAT_FOLDERS[3], INAT_FOLDERS[3])
    ]


def test_resolve_species_ambiguous_lists_the_matches(inat_root: Path) -> None:
    with pytest.raises(DataSourceError, match="ambiguous") as caught:
        resolve_classes(inat_root, ["rubrum"], match="species")
    assert INAT_FOLDERS[0] in str(caught.value) and INAT_FOLDERS[3] in str(caught.value)


def test_resolve_species_unknown_suggests_species(inat_root: Path) -> None:
    with pytest.raises(DataSourceError, match="'Acer saccharum'") as caught:
        resolve_classes(inat_root, ["Acer sacharum"], match="species")
    assert "4 class folders" in str(caught.value)
    # exact matching does not look at species names
    with pytest.raises(DataSourceError, match="no class folder"):
        resolve_classes(inat_root, ["Acer rubrum"])


# ------------------------------------------------------------------------------------------- images


def test_list_images_sorted_absolute_no_recursion(image_root: Path) -> None:
    paths = list_images(image_root / "n01440764")
    assert [Path(path).name for path in paths] == [
        f"n01440764_{i:02d}.{'JPEG' if i % 3 == 2 else 'png'}" for i in range(N_IMAGES)
    ]
    assert all(Path(path).is_absolute() for path in paths)


def test_make_thumbnail_takes_the_centre_square() -> None:
    pixels = np.zeros((20, 30, 3), dtype=np.uint8)
    pixels[:, :5] = (255, 0, 0)
    pixels[:, 5:25] = (0, 255, 0)
    pixels[:, 25:] = (0, 0, 255)
    thumbnail = make_thumbnail(Image.fromarray(pixels), 8)
    assert thumbnail.shape == (8, 8, 3) and thumbnail.dtype == np.uint8
    np.testing.assert_array_equal(thumbnail, np.broadcast_to(np.array([0, 255, 0], np.uint8), (8, 8, 3)))
    # tall grayscale images become RGB too
    gray = make_thumbnail(Image.new("L", (10, 40), 77), 5)
    assert gray.shape == (5, 5, 3) and np.all(gray == 77)
    with pytest.raises(ValueError, match="positive"):
        make_thumbnail(Image.new("RGB", (4, 4)), 0)


def test_load_image_folder_is_consistent(image_root: Path) -> None:
    classes = ["n03775071", 1]
    images = load_image_folder(image_root, classes, n_per_class=3, seed=5, thumbnail_size=16, progress=False)
    assert len(images) == 6
    assert images.images.shape == (6, 16, 16, 3) and images.images.dtype == np.uint8
    np.testing.assert_array_equal(images.labels, [0, 0, 0, 1, 1, 1])
    assert images.labels.dtype == np.int64 and images.source_indices.dtype == np.int64
    assert images.label_names == {0: "n03775071", 1: "n01443537"}
    all_files = list_images(image_root / "n03775071") + list_images(image_root / "n01443537")
    assert images.paths == [all_files[i] for i in images.source_indices]
    # the first class's indices fall in its own file list, the second's after it
    assert np.all(images.source_indices[:3] < N_IMAGES) and np.all(images.source_indices[3:] >= N_IMAGES)
    assert np.all(np.diff(images.source_indices[:3]) > 0)
    # each thumbnail shows its own file's colour
    for thumbnail, path in zip(images.images, images.paths, strict=True):
        class_index = SYNSETS.index(Path(path).parent.name)
        image_index = int(Path(path).stem.split("_")[1])
        expected = np.array(image_colour(class_index, image_index))
        assert np.abs(thumbnail.reshape(-1, 3).astype(int) - expected).max() <= 4


def test_load_image_folder_selection_is_deterministic_and_per_class(image_root: Path) -> None:
    def chosen(classes: list, seed: int = 0) -> dict[str, list[str]]:
        loaded = load_image_folder(
            image_root, classes, n_per_class=3, seed=seed, thumbnail_size=4, progress=False
        )
        by_class: dict[str, list[str]] = {}
        for path in loaded.paths:
            by_class.setdefault(Path(path).parent.name, []).append(path)
        return by_class

    both = chosen(["n01440764", "n03775071"])
    assert both == chosen(["n01440764", "n03775071"])
    # the choice for a class does not depend on the other requested classes or their order
    assert chosen(["n03775071"])["n03775071"] == both["n03775071"]
    assert chosen(["n03775071", 2, "n01440764"])["n01440764"] == both["n01440764"]
    # and the seed matters
    others = [chosen(["n01440764", "n03775071"], seed=seed) for seed in (1, 2, 3)]
    assert any(other != both for other in others)


def test_load_image_folder_all_images_and_class_names(image_root: Path) -> None:
    loaded = load_image_folder(
        image_root, [3, 0], n_per_class=None, class_names=["rule", "tench"], thumbnail_size=4, progress=False
    )
    assert len(loaded) == 2 * N_IMAGES
    np.testing.assert_array_equal(loaded.source_indices, np.arange(2 * N_IMAGES))
    assert loaded.label_names == {0: "rule", 1: "tench"}
    with pytest.raises(ValueError, match="one per class"):
        load_image_folder(image_root, [3, 0], n_per_class=1, class_names=["rule"], progress=False)


def test_load_image_folder_too_few_images_names_the_folder(image_root: Path) -> None:
    with pytest.raises(DataSourceError, match=r"n02085620 holds 7 images, fewer than the 8"):
        load_image_folder(image_root, ["n02085620"], n_per_class=8, progress=False)


def test_load_image_folder_corrupt_image_names_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "root" / "cls"
    folder.mkdir(parents=True)
    Image.new("RGB", (5, 5)).save(folder / "a.png")
    (folder / "b.jpg").write_bytes(b"definitely not a jpeg")
    with pytest.raises(DataSourceError, match=r"could not read image .*b\.jpg"):
        load_image_folder(tmp_path / "root", ["cls"], n_per_class=None, progress=False)


def test_load_image_folder_by_species(inat_root: Path) -> None:
    loaded = load_image_folder(
        inat_root,
        ["Quercus rubra", "Acer rubrum"],
        n_per_class=1,
        match="species",
        thumbnail_size=4,
        progress=False,
    )
    assert loaded.label_names == {0: "Quercus rubra", 1: "Acer rubrum"}
    assert [Path(path).parent.name for path in loaded.paths] == [INAT_FOLDERS[2], INAT_FOLDERS[0]]
    assert loaded.images.shape == (2, 4, 4, 3)


# -------------------------------------------------------------------------------------- precomputed


@pytest.fixture
def matrix() -> np.ndarray:
    return np.arange(30, dtype=np.float64).reshape(6, 5) / 7.0


def test_load_feature_file_npy_npz_pt(tmp_path: Path, matrix: np.ndarray) -> None:
    expected = matrix.astype(np.float32)
    np.save(tmp_path / "f.npy", matrix)
    np.savez(tmp_path / "one.npz", features=matrix)
    np.savez(tmp_path / "two.npz", a=matrix, b=matrix[:, :2])
    torch.save(torch.from_numpy(matrix), tmp_path / "t.pt")
    torch.save(
        {"concepts": torch.from_numpy(matrix).to(torch.bfloat16), "other": torch.zeros(2)}, tmp_path / "d.pth"
    )
    for name in ("f.npy", "one.npz", "t.pt"):
        loaded = load_feature_file(tmp_path / name)
        assert loaded.dtype == np.float32 and loaded.flags.c_contiguous
        np.testing.assert_array_equal(loaded, expected)
    np.testing.assert_array_equal(load_feature_file(tmp_path / "two.npz", key="b"), expected[:, :2])
    with pytest.raises(ValueError, match="key="):
        load_feature_file(tmp_path / "two.npz")
    with pytest.raises(ValueError, match="no array 'c'"):
        load_feature_file(tmp_path / "two.npz", key="c")
    from_dict = load_feature_file(tmp_path / "d.pth", key="concepts")
    np.testing.assert_allclose(from_dict, expected, rtol=1e-2)  # bfloat16 storage
    with pytest.raises(ValueError, match="2 arrays"):
        load_feature_file(tmp_path / "d.pth")


def test_load_feature_file_excludes_columns(tmp_path: Path, matrix: np.ndarray) -> None:
    np.save(tmp_path / "f.npy", matrix)
    loaded = load_feature_file(tmp_path / "f.npy", exclude_columns=[3, 0])
    np.testing.assert_array_equal(loaded, matrix[:, [1, 2, 4]].astype(np.float32))
    assert loaded.shape == (6, 3)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([5], r"valid range 0\.\.4"),
        ([-1], r"valid range 0\.\.4"),
        ([1, 1], "twice"),
        ([0, 1, 2, 3, 4], "all 5"),
    ],
)
def test_load_feature_file_rejects_bad_columns(
    tmp_path: Path, matrix: np.ndarray, columns: list[int], message: str
) -> None:
    np.save(tmp_path / "f.npy", matrix)
    with pytest.raises(ValueError, match=message):
        load_feature_file(tmp_path / "f.npy", exclude_columns=columns)


def test_load_feature_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "concepts.npy"
    with pytest.raises(
        DataSourceError, match=r"does not exist; point at a local copy with model_a\.file="
    ) as caught:
        load_feature_file(missing, override="model_a.file=/path")
    assert str(missing) in str(caught.value)
    np.save(tmp_path / "flat.npy", np.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(4,\); expected 2-D"):
        load_feature_file(tmp_path / "flat.npy")
    (tmp_path / "f.csv").write_text("1,2\n")
    with pytest.raises(ValueError, match="unsupported"):
        load_feature_file(tmp_path / "f.csv")


def test_read_labels_npy_and_text_formats(tmp_path: Path) -> None:
    np.save(tmp_path / "labels.npy", np.array([3, 1, 2], dtype=np.int32))
    (tmp_path / "plain.txt").write_text("3\n1\n\n2\n")
    (tmp_path / "image_class_labels.txt").write_text("1 3\n2 1\n3 2\n")
    for name in ("labels.npy", "plain.txt", "image_class_labels.txt"):
        labels = read_labels(tmp_path / name)
        assert labels.dtype == np.int64
        np.testing.assert_array_equal(labels, [3, 1, 2])
    (tmp_path / "bad.txt").write_text("1 3\n2 cat\n")
    with pytest.raises(ValueError, match="line 2"):
        read_labels(tmp_path / "bad.txt")
    np.save(tmp_path / "fractional.npy", np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="not integer labels"):
        read_labels(tmp_path / "fractional.npy")


def test_read_image_list_plain_and_with_ids(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "images.txt").write_text("1 001.Albatross/a_1.jpg\n2 002.Auklet/b_2.jpg\n")
    (tmp_path / "lists" / "plain.txt").write_text(f"x/y.png\n{tmp_path / 'abs.png'}\n")
    images = tmp_path / "CUB_200_2011" / "images"
    assert read_image_list(tmp_path / "lists" / "images.txt", image_root=images) == [
        str(images / "001.Albatross" / "a_1.jpg"),
        str(images / "002.Auklet" / "b_2.jpg"),
    ]
    assert read_image_list(tmp_path / "lists" / "plain.txt") == [
        str(tmp_path / "lists" / "x" / "y.png"),
        str(tmp_path / "abs.png"),
    ]


@pytest.fixture
def cub_like(tmp_path: Path) -> Path:
    """12 rows, labels 1..3 (5, 4, 3 rows, interleaved), images.txt with 'id path' lines."""
    labels = [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 1]
    (tmp_path / "image_class_labels.txt").write_text(
        "".join(f"{i + 1} {label}\n" for i, label in enumerate(labels))
    )
    lines = []
    for row, label in enumerate(labels):
        relative = f"{label:03d}.bird/{row:02d}.jpg"
        (tmp_path / "images" / f"{label:03d}.bird").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (10 + row, 12), (20 * row, 100, 200)).save(
            tmp_path / "images" / relative, quality=95
        )
        lines.append(f"{row + 1} {relative}\n")
    (tmp_path / "images.txt").write_text("".join(lines))
    return tmp_path


def test_precomputed_dataset_placeholders(cub_like: Path) -> None:
    loaded = load_precomputed_dataset(
        cub_like / "image_class_labels.txt", n_per_class=3, classes=[3, 1], thumbnail_size=32, progress=False
    )
    assert loaded.paths is None and loaded.label_names is None
    np.testing.assert_array_equal(loaded.labels, [3, 3, 3, 1, 1, 1])
    all_labels = read_labels(cub_like / "image_class_labels.txt")
    np.testing.assert_array_equal(all_labels[loaded.source_indices], loaded.labels)
    assert loaded.source_indices.dtype == np.int64
    np.testing.assert_array_equal(loaded.source_indices[:3], [2, 5, 8])  # label 3 has exactly 3 rows
    assert loaded.images.shape == (6, 32, 32, 3) and loaded.images.dtype == np.uint8
    for tile in loaded.images:
        assert np.median(tile) >= 200  # light grey background
        assert tile.min() < 100  # text drawn on it
    # tiles of different rows differ (they name the row)
    assert not np.array_equal(loaded.images[0], loaded.images[1])


def test_precomputed_selection_is_deterministic_and_per_class(cub_like: Path) -> None:
    labels_file = cub_like / "image_class_labels.txt"

    def rows(classes: list[int] | None, seed: int = 0) -> dict[int, list[int]]:
        loaded = load_precomputed_dataset(
            labels_file, n_per_class=2, seed=seed, classes=classes, thumbnail_size=8, progress=False
        )
        by_label: dict[int, list[int]] = {}
        for row, label in zip(loaded.source_indices.tolist(), loaded.labels.tolist(), strict=True):
            by_label.setdefault(label, []).append(row)
        return by_label

    everything = rows(None)
    assert sorted(everything) == [1, 2, 3]
    assert rows([1]) == {1: everything[1]}
    assert rows([2, 1]) == {1: everything[1], 2: everything[2]}
    assert any(rows(None, seed=seed) != everything for seed in (1, 2, 3))


def test_precomputed_dataset_with_images_and_names(cub_like: Path) -> None:
    loaded = load_precomputed_dataset(
        cub_like / "image_class_labels.txt",
        classes=[2],
        image_list=cub_like / "images.txt",
        image_root=cub_like / "images",
        class_names={1: "albatross", 2: "auklet", 3: "cormorant"},
        thumbnail_size=8,
        progress=False,
    )
    np.testing.assert_array_equal(loaded.source_indices, [1, 4, 7, 10])
    assert loaded.paths == [str(cub_like / "images" / "002.bird" / f"{row:02d}.jpg") for row in (1, 4, 7, 10)]
    assert loaded.label_names == {2: "auklet"}
    assert loaded.images.shape == (4, 8, 8, 3)
    # each thumbnail shows its row's colour (red channel 20 * row)
    np.testing.assert_allclose(loaded.images[:, :, :, 0].mean(axis=(1, 2)), [20, 80, 140, 200], atol=6)
    by_list = load_precomputed_dataset(
        cub_like / "image_class_labels.txt",
        classes=[1],
        n_per_class=1,
        class_names=["none", "albatross"],
        thumbnail_size=8,
        progress=False,
    )
    assert by_list.label_names == {1: "albatross"}


def test_precomputed_dataset_errors(cub_like: Path) -> None:
    labels_file = cub_like / "image_class_labels.txt"
    with pytest.raises(DataSourceError, match=r"labels \[7\] do not occur"):
        load_precomputed_dataset(labels_file, classes=[7], progress=False)
    with pytest.raises(DataSourceError, match="label 3 has 3 rows.*fewer than the 4"):
        load_precomputed_dataset(labels_file, classes=[3], n_per_class=4, progress=False)
    with pytest.raises(ValueError, match="more than once"):
        load_precomputed_dataset(labels_file, classes=[1, 1], progress=False)
    with pytest.raises(ValueError, match=r"no name for labels \[3\]"):
        load_precomputed_dataset(labels_file, classes=[3], class_names={1: "a"}, progress=False)
    (cub_like / "short.txt").write_text("1 001.bird/00.jpg\n")
    with pytest.raises(ValueError, match="same rows"):
        load_precomputed_dataset(labels_file, image_list=cub_like / "short.txt", progress=False)
    with pytest.raises(DataSourceError, match="labels file .* does not exist"):
        load_precomputed_dataset(cub_like / "missing.txt", progress=False)
