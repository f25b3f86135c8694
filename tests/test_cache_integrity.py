"""Nothing silently wrong in the feature cache: damaged entries are found, removed and computed again,
``rdx-cache verify`` finds them, an unwritable folder only costs the caching, and every part of a
model's features changes their cache key."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from rdx.cache import FeatureCache, array_digest, cache_key
from rdx.cli.cache import main as cache_main
from rdx.data.imageset import ImageSet
from rdx.models.checkpoints import save_checkpoint
from rdx.models.convnet import ConvNet
from rdx.models.extraction import compute_features, feature_cache_parts, model_features
from rdx.models.loading import LoadedModel, load_model

# 200 x 64 float32: 51,200 bytes of data after the 128-byte .npy header, so 40 KB fit inside the data
TRUE = np.random.default_rng(0).normal(size=(200, 64)).astype(np.float32)
PARTS = {"kind": "features", "test": "integrity"}
KEY = cache_key(PARTS)
CPU = torch.device("cpu")


def npy_file(root: Path, key: str = KEY) -> Path:
    return root / key[:2] / f"{key}.npy"


def json_file(root: Path, key: str = KEY) -> Path:
    return root / key[:2] / f"{key}.json"


def overwrite(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def edit_metadata(root: Path, key: str, edit: Callable[[dict], None]) -> None:
    metadata = json.loads(json_file(root, key).read_text())
    edit(metadata)
    json_file(root, key).write_text(json.dumps(metadata))


# Each damage: what it does to a stored entry of TRUE, and the words the warning and verify use for it.
DAMAGES: dict[str, tuple[Callable[[Path, str], None], str]] = {
    "zeros over 40 KB of data": (
        lambda root, key: overwrite(npy_file(root, key), 1024, bytes(40_000)),
        "does not match its digest",
    ),
    "zeros over the header": (
        lambda root, key: overwrite(npy_file(root, key), 0, bytes(40_000)),
        "no valid header",
    ),
    "0xFF over 40 KB of data": (
        lambda root, key: overwrite(npy_file(root, key), 1024, b"\xff" * 40_000),
        "does not match its digest",
    ),
    "0xFF over the header": (
        lambda root, key: overwrite(npy_file(root, key), 0, b"\xff" * 40_000),
        "no valid header",
    ),
    "truncated": (
        lambda root, key: npy_file(root, key).write_bytes(npy_file(root, key).read_bytes()[:20_000]),
        "not a readable .npy array",
    ),
    "0 bytes": (lambda root, key: npy_file(root, key).write_bytes(b""), "empty (0 bytes)"),
    "metadata not JSON": (
        lambda root, key: json_file(root, key).write_text('{"shape": [200, 64], "dty'),
        "metadata",
    ),
    "metadata not an object": (lambda root, key: json_file(root, key).write_text("[]"), "not a JSON object"),
    "metadata missing": (lambda root, key: json_file(root, key).unlink(), "is missing"),
    "metadata of another key": (
        lambda root, key: edit_metadata(root, key, lambda m: m.update(key="0" * 64)),
        "another key",
    ),
    "digest mismatch": (
        lambda root, key: edit_metadata(root, key, lambda m: m.update(array_digest=array_digest(TRUE[1:]))),
        "does not match its digest",
    ),
    "written before digests": (
        lambda root, key: edit_metadata(root, key, lambda m: m.pop("array_digest")),
        "no content digest",
    ),
    "other shape": (lambda root, key: np.save(npy_file(root, key), TRUE[:100]), "metadata says"),
}


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


# -- damaged entries --------------------------------------------------------------------------------


def test_entries_carry_a_digest_of_the_array(tmp_path):
    FeatureCache(tmp_path).put(KEY, TRUE, PARTS)
    assert json.loads(json_file(tmp_path).read_text())["array_digest"] == array_digest(TRUE)
    assert FeatureCache(tmp_path).verify()["ok"] == 1


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_entry_warns_is_removed_and_recomputed(tmp_path, caplog, damage):
    FeatureCache(tmp_path).put(KEY, TRUE, PARTS)
    apply, words = DAMAGES[damage]
    apply(tmp_path, KEY)
    calls = []

    def compute() -> np.ndarray:
        # the bad entry is gone before the features are computed again
        assert not npy_file(tmp_path).exists() and not json_file(tmp_path).exists()
        calls.append(1)
        return TRUE.copy()

    cache = FeatureCache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="rdx.cache"):
        array, hit = cache.get_or_compute(KEY, PARTS, compute)
    assert not hit and calls == [1] and (cache.hits, cache.misses) == (0, 1)
    assert array.dtype == TRUE.dtype and np.array_equal(array, TRUE)
    (message,) = warnings_of(caplog)
    assert KEY in message and words in message and "unusable" in message
    assert "pickle" not in caplog.text.lower()  # never advice to load unsafely
    # what is stored now is a good entry holding the true features
    assert FeatureCache(tmp_path).verify()["bad"] == []
    assert np.array_equal(FeatureCache(tmp_path).get(KEY), TRUE)


def test_get_removes_a_damaged_entry(tmp_path, caplog):
    cache = FeatureCache(tmp_path)
    cache.put(KEY, TRUE, PARTS)
    overwrite(npy_file(tmp_path), 1024, bytes(40_000))
    assert cache.get(KEY) is None and (cache.hits, cache.misses) == (0, 1)
    assert not npy_file(tmp_path).exists() and not json_file(tmp_path).exists()
    assert "does not match its digest" in caplog.text


def test_a_damaged_entry_held_by_a_writer_is_left_to_it(tmp_path):
    """A reader that finds a bad entry while another process holds the key's lock removes nothing: the
    holder is writing that key (its new .npy replaces the old one)."""
    cache = FeatureCache(tmp_path)
    cache.put(KEY, TRUE, PARTS)
    overwrite(npy_file(tmp_path), 1024, bytes(40_000))
    descriptor = os.open(tmp_path / KEY[:2] / f"{KEY}.lock", os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # as a writer in another process would
        assert cache.get(KEY) is None
        assert npy_file(tmp_path).exists()
    finally:
        os.close(descriptor)
    assert cache.get(KEY) is None and not npy_file(tmp_path).exists()


# -- rdx-cache verify -------------------------------------------------------------------------------


def damaged_cache(root: Path) -> tuple[dict[str, str], list[str]]:
    """One entry per damage, each damaged, and two good entries: {bad key: damage}, good keys."""
    cache = FeatureCache(root)
    bad = {}
    for damage, (apply, _) in DAMAGES.items():
        parts = {**PARTS, "damage": damage}
        cache.put(cache_key(parts), TRUE, parts)
        apply(root, cache_key(parts))
        bad[cache_key(parts)] = damage
    good = []
    for n in range(2):
        parts = {**PARTS, "good": n}
        cache.put(cache_key(parts), TRUE + n, parts)
        good.append(cache_key(parts))
    return bad, good


def entry_files(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in root.rglob("*") if path.suffix in (".npy", ".json")}


def test_verify_finds_every_damaged_entry_and_fix_removes_them(tmp_path, capsys):
    bad, good = damaged_cache(tmp_path)
    before = entry_files(tmp_path)

    summary = FeatureCache(tmp_path).verify()
    assert (summary["checked"], summary["ok"], summary["remaining_bad"]) == (len(bad) + 2, 2, len(bad))
    found = {entry["key"]: entry["problem"] for entry in summary["bad"]}
    assert found.keys() == bad.keys()
    for key, damage in bad.items():
        assert DAMAGES[damage][1] in found[key], damage
    assert entry_files(tmp_path) == before  # checking changes nothing

    with pytest.raises(SystemExit) as exit_info:
        cache_main(["--root", str(tmp_path), "verify"])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert all(key in out for key in bad) and f"{len(bad)} bad" in out and "verify --fix" in out
    assert entry_files(tmp_path) == before

    cache_main(["--root", str(tmp_path), "verify", "--fix"])  # no SystemExit: nothing bad remains
    out = capsys.readouterr().out
    assert f"{len(bad)} removed" in out and "(removed)" in out
    assert not any(npy_file(tmp_path, key).exists() for key in bad)
    for n, key in enumerate(good):
        assert np.array_equal(FeatureCache(tmp_path).get(key), TRUE + n)

    cache_main(["--root", str(tmp_path), "verify"])
    assert "2 ok, 0 bad" in capsys.readouterr().out


def test_verify_skips_keys_in_use_and_reports_leftovers(tmp_path, capsys):
    cache = FeatureCache(tmp_path)
    cache.put(KEY, TRUE, PARTS)
    overwrite(npy_file(tmp_path), 1024, bytes(40_000))
    (tmp_path / KEY[:2] / f".{KEY}.npy.tmp-4242-0123456789ab").write_bytes(b"\x93NUMPY half")
    descriptor = os.open(tmp_path / KEY[:2] / f"{KEY}.lock", os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # another process is writing this key
        summary = cache.verify(fix=True)
        assert (summary["skipped_in_use"], summary["checked"], summary["stale_files"]) == (1, 0, 1)
        assert npy_file(tmp_path).exists()
        cache_main(["--root", str(tmp_path), "verify"])
        assert "skipped 1 keys in use" in capsys.readouterr().out
    finally:
        os.close(descriptor)
    assert FeatureCache(tmp_path / "missing").verify()["checked"] == 0


# -- unwritable cache folders -----------------------------------------------------------------------


def test_a_file_in_place_of_the_cache_folder_runs_uncached_with_one_warning(tmp_path, caplog):
    root = tmp_path / "cache"
    root.write_text("not a folder")  # unwritable even for root, unlike chmod
    cache = FeatureCache(root)
    with caplog.at_level(logging.WARNING, logger="rdx.cache"):
        for n in range(2):
            parts = {**PARTS, "n": n}
            array, hit = cache.get_or_compute(cache_key(parts), parts, lambda n=n: TRUE + n)
            assert not hit and np.array_equal(array, TRUE + n)
        cache.put(KEY, TRUE, PARTS)  # stores nothing, raises nothing
    (message,) = warnings_of(caplog)
    assert str(root) in message and "not writable" in message and "Not a directory" in message
    assert cache.unwritable == "Not a directory" and (cache.hits, cache.misses) == (0, 2)
    assert cache.get(KEY) is None and root.read_text() == "not a folder"
    assert cache.verify()["checked"] == 0 and cache.report()["entries"] == 0


def test_a_read_only_cache_folder_runs_uncached_and_still_reads_good_entries(tmp_path, caplog):
    root = tmp_path / "cache"
    cache = FeatureCache(root)
    cache.put(KEY, TRUE, PARTS)
    damaged = {**PARTS, "damaged": True}
    cache.put(cache_key(damaged), TRUE, damaged)
    overwrite(npy_file(root, cache_key(damaged)), 1024, bytes(40_000))
    folders = [root, *root.iterdir()]
    for folder in folders:
        folder.chmod(0o500)
    try:
        if os.access(root, os.W_OK):
            pytest.skip("running as root: chmod does not make a folder unwritable")
        cache = FeatureCache(root)
        with caplog.at_level(logging.WARNING, logger="rdx.cache"):
            array, hit = cache.get_or_compute(KEY, PARTS, lambda: pytest.fail("a good entry is read"))
            assert hit and np.array_equal(array, TRUE)
            missing = {**PARTS, "missing": True}
            array, hit = cache.get_or_compute(cache_key(missing), missing, lambda: TRUE * 2)
            assert not hit and np.array_equal(array, TRUE * 2)
            # a bad entry it cannot remove is still never used
            array, hit = cache.get_or_compute(cache_key(damaged), damaged, lambda: TRUE * 3)
            assert not hit and np.array_equal(array, TRUE * 3)
        unwritable = [message for message in warnings_of(caplog) if "not writable" in message]
        assert len(unwritable) == 1 and str(root) in unwritable[0] and "Permission denied" in unwritable[0]
        assert "could not remove" in caplog.text
        assert cache.verify(fix=True)["remaining_bad"] == 1
    finally:
        for folder in folders:
            folder.chmod(0o700)


def test_a_failed_write_keeps_the_computed_features(tmp_path, caplog, monkeypatch):
    saves = []

    def disk_full(*args, **kwargs):
        saves.append(1)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", disk_full)
    cache = FeatureCache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="rdx.cache"):
        for n in range(2):
            parts = {**PARTS, "n": n}
            array, hit = cache.get_or_compute(cache_key(parts), parts, lambda n=n: TRUE + n)
            assert not hit and np.array_equal(array, TRUE + n)
    (message,) = warnings_of(caplog)
    assert str(tmp_path) in message and "No space left on device" in message
    assert saves == [1]  # after the first failure it stops trying
    assert [p.suffix for p in tmp_path.rglob("*") if p.is_file()] == [".lock"], "nothing half-written left"


# -- a feature-cache miss for every part of the key -------------------------------------------------


def save_squeezenet(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    return path


def squeezenet(weights: Path, **spec: object) -> LoadedModel:
    base = {"kind": "torchvision", "name": "squeezenet1_1", "weights_file": str(weights), "input_size": 32}
    return load_model({**base, **spec}, "model_a")


def image_set(images: np.ndarray, paths: list[str] | None = None) -> ImageSet:
    return ImageSet(images, np.zeros(len(images), dtype=np.int64), np.arange(len(images)), paths=paths)


def feature_key(model: LoadedModel, images: ImageSet) -> str:
    return cache_key(feature_cache_parts(model, images, CPU, seed=0))


def test_every_part_of_the_features_changes_their_cache_key(tmp_path):
    weights = save_squeezenet(tmp_path / "weights.pt", seed=0)
    pixels = np.random.default_rng(0).integers(0, 256, size=(6, 40, 40, 3), dtype=np.uint8)
    images = image_set(pixels)
    key = feature_key(squeezenet(weights), images)

    # the same model loaded again, the same weights under another name, the same pixels in a new array
    shutil.copy(weights, tmp_path / "copy.pt")
    assert feature_key(squeezenet(weights), images) == key
    assert feature_key(squeezenet(tmp_path / "copy.pt"), image_set(pixels.copy())) == key

    changed_pixel = pixels.copy()
    changed_pixel[2, 5, 5, 0] ^= 1
    changed = {
        "checkpoint": feature_key(squeezenet(save_squeezenet(tmp_path / "other.pt", seed=1)), images),
        "layer": feature_key(squeezenet(weights, layer="features.9"), images),
        "pooling": feature_key(squeezenet(weights, pooling="flatten"), images),
        "transform": feature_key(squeezenet(weights, input_size=48), images),
        "fewer images": feature_key(squeezenet(weights), image_set(pixels[1:])),
        "other order": feature_key(squeezenet(weights), image_set(pixels[::-1])),
        "one pixel": feature_key(squeezenet(weights), image_set(changed_pixel)),
    }
    assert key not in changed.values() and len(set(changed.values())) == len(changed), changed

    time.sleep(0.05)  # a later modification time than the first write (file digests are memoised by it)
    save_squeezenet(weights, seed=2)  # retrained in place: same path, other bytes
    assert feature_key(squeezenet(weights), images) not in {key, *changed.values()}


def test_the_image_files_read_change_the_cache_key(tmp_path):
    weights = save_squeezenet(tmp_path / "weights.pt", seed=0)
    model = squeezenet(weights)
    pixels = np.random.default_rng(1).integers(0, 256, size=(4, 40, 40, 3), dtype=np.uint8)
    paths = []
    for index, array in enumerate(pixels):
        paths.append(str(tmp_path / f"image_{index}.png"))
        Image.fromarray(array).save(paths[-1])
    thumbnails = pixels[:, :8, :8]

    def files(chosen: list[int]) -> ImageSet:
        return image_set(thumbnails[chosen], [paths[i] for i in chosen])

    key = feature_key(model, files([0, 1, 2]))
    assert feature_key(model, files([0, 1, 2])) == key
    others = {feature_key(model, files(chosen)) for chosen in ([0, 1, 3], [0, 1], [2, 1, 0])}
    assert key not in others and len(others) == 3


def convnet(path: Path, seed: int, **spec: object) -> LoadedModel:
    if not path.exists():
        torch.manual_seed(seed)
        network_args = {"num_classes": 3, "channels": [8, 16]}
        save_checkpoint(
            path, ConvNet(**network_args), network_args, step=1, epoch=0, val_acc=0.5, val_loss=1.0
        )
    return load_model({"kind": "convnet", "name": "tiny", "checkpoint": str(path), **spec}, "model_a")


def test_every_part_of_mnist_convnet_features_changes_their_cache_key(tmp_path):
    digits = image_set(np.random.default_rng(2).integers(0, 256, size=(5, 28, 28), dtype=np.uint8))
    key = feature_key(convnet(tmp_path / "a.pt", seed=0), digits)
    assert feature_key(convnet(tmp_path / "a.pt", seed=0), image_set(digits.images.copy())) == key
    changed = [
        feature_key(convnet(tmp_path / "b.pt", seed=1), digits),
        feature_key(convnet(tmp_path / "a.pt", seed=0, layer="block1"), digits),
        feature_key(convnet(tmp_path / "a.pt", seed=0, pooling="flatten"), digits),
        feature_key(convnet(tmp_path / "a.pt", seed=0), image_set(digits.images[:4])),
    ]
    assert key not in changed and len(set(changed)) == len(changed)


def test_model_features_through_an_unwritable_cache(tmp_path, caplog):
    model = convnet(tmp_path / "a.pt", seed=0)
    digits = image_set(np.random.default_rng(3).integers(0, 256, size=(5, 28, 28), dtype=np.uint8))
    settings = {"batch_size": 4, "progress": False}
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with caplog.at_level(logging.WARNING, logger="rdx.cache"):
        features, source = model_features(model, digits, FeatureCache(tmp_path / "cache"), settings, CPU, 0)
    assert source == "miss" and "not writable" in caplog.text
    np.testing.assert_array_equal(features, compute_features(model, digits, settings, CPU))
