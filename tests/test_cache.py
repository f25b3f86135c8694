"""The representation cache: keys, digests, atomic entries, concurrency, cleaning, and rdx-cache."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from rdx.cache import FeatureCache, array_digest, cache_key, default_cache_root, file_digest
from rdx.cli.cache import human_bytes
from rdx.cli.cache import main as cache_main

PARTS = {"kind": "features", "images": "ab" * 32, "layer": "block2", "pooling": "gap", "n": 3}


def entry_files(root: Path) -> list[str]:
    return sorted(path.name for path in root.rglob("*") if path.is_file())


def run_child(script: str, *args: str) -> subprocess.Popen:
    """A Python child running ``script`` with this interpreter (the project's venv)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- keys and digests -------------------------------------------------------------------------------


def test_cache_key_is_stable_and_ignores_key_order():
    key = cache_key(PARTS)
    assert len(key) == 64 and int(key, 16) >= 0
    assert cache_key(dict(reversed(list(PARTS.items())))) == key
    assert cache_key({"outer": {"b": 1, "a": [1, 2]}}) == cache_key({"outer": {"a": [1, 2], "b": 1}})
    # numpy scalars, tuples and OmegaConf containers key like the plain values they hold
    assert cache_key({**PARTS, "n": np.int64(3)}) == key
    assert cache_key({"a": (1, 2)}) == cache_key({"a": [1, 2]})
    assert cache_key({"cfg": OmegaConf.create({"b": 1, "a": [1]})}) == cache_key({"cfg": {"a": [1], "b": 1}})


def test_every_part_changes_the_key():
    key = cache_key(PARTS)
    changed = [
        {**PARTS, "kind": "feature"},
        {**PARTS, "images": "cd" * 32},
        {**PARTS, "layer": "block3"},
        {**PARTS, "pooling": "flatten"},
        {**PARTS, "n": 4},
        {**PARTS, "n": "3"},
        {**PARTS, "n": 3.5},
        {**PARTS, "extra": None},
        {k: v for k, v in PARTS.items() if k != "n"},
    ]
    keys = {cache_key(parts) for parts in changed}
    assert key not in keys and len(keys) == len(changed)
    assert cache_key({"flag": True}) != cache_key({"flag": 1})


@pytest.mark.parametrize(
    "value, message",
    [
        (np.zeros(3), "array_digest"),
        (b"abc", "bytes"),
        (Path("model.ckpt"), "file_digest"),
        ({1, 2}, "set"),
        ({1: "a"}, "non-string key"),
    ],
)
def test_cache_key_rejects_non_json_parts(value, message):
    with pytest.raises(TypeError, match=message):
        cache_key({"model": {"weights": value}})


def test_array_digest_sees_dtype_shape_and_content():
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    digest = array_digest(array)
    assert array_digest(array.copy()) == digest
    assert array_digest(np.asfortranarray(array)) == digest  # same values, other memory layout
    other = array.copy()
    other[2, 3] += 1
    variants = [array.astype(np.float64), array.reshape(4, 3), array.reshape(12), other, array.T]
    assert len({digest, *map(array_digest, variants)}) == 1 + len(variants)
    with pytest.raises(TypeError):
        array_digest(np.array([object()]))


def test_file_digest_hashes_content_and_is_memoised(tmp_path, monkeypatch):
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"weights" * 1000)
    settled = time.time() - 10
    os.utime(path, (settled, settled))  # written a while ago: memoised
    digest = file_digest(path)
    assert digest == file_digest(tmp_path / "." / "model.ckpt")

    def no_reading(*args, **kwargs):
        raise AssertionError("read again")

    monkeypatch.setattr("builtins.open", no_reading)
    assert file_digest(path) == digest  # memoised: not opened again
    monkeypatch.undo()
    path.write_bytes(b"other weights")
    assert file_digest(path) != digest
    # a file written just now is read every time (a same-size rewrite within one mtime tick is seen)
    fresh = file_digest(path)
    monkeypatch.setattr("builtins.open", no_reading)
    with pytest.raises(AssertionError, match="read again"):
        file_digest(path)
    monkeypatch.undo()
    assert file_digest(path) == fresh


def test_default_cache_root_follows_rdx_root(monkeypatch, tmp_path):
    monkeypatch.setenv("RDX_ROOT", str(tmp_path))
    assert default_cache_root() == tmp_path / "outputs" / "cache"
    monkeypatch.delenv("RDX_ROOT")
    assert default_cache_root() == Path("outputs/cache")


# -- entries ----------------------------------------------------------------------------------------


def test_put_get_round_trip(tmp_path):
    cache = FeatureCache(tmp_path)
    key = cache_key(PARTS)
    array = np.random.default_rng(0).normal(size=(50, 7)).astype(np.float32)
    assert cache.get(key) is None
    cache.put(key, array, PARTS, compute_seconds=1.5)
    loaded = cache.get(key)
    assert loaded.dtype == array.dtype and np.array_equal(loaded, array)
    assert (cache.hits, cache.misses) == (1, 1)
    assert entry_files(tmp_path) == sorted([f"{key}.json", f"{key}.lock", f"{key}.npy"])
    metadata = json.loads((tmp_path / key[:2] / f"{key}.json").read_text())
    assert metadata["parts"] == PARTS and metadata["shape"] == [50, 7] and metadata["dtype"] == "<f4"
    assert metadata["compute_seconds"] == 1.5 and metadata["created"].endswith("+00:00")


def test_get_or_compute_computes_once(tmp_path):
    cache = FeatureCache(tmp_path)
    key = cache_key(PARTS)
    calls = []

    def compute():
        calls.append(1)
        return np.arange(6, dtype=np.int16).reshape(2, 3)

    first, hit_first = cache.get_or_compute(key, PARTS, compute)
    second, hit_second = cache.get_or_compute(key, PARTS, compute)
    assert (hit_first, hit_second, len(calls)) == (False, True, 1)
    assert np.array_equal(first, second) and second.dtype == np.int16
    assert (cache.hits, cache.misses) == (1, 1)
    assert json.loads((tmp_path / key[:2] / f"{key}.json").read_text())["compute_seconds"] >= 0


def test_compute_error_stores_nothing(tmp_path):
    cache = FeatureCache(tmp_path)

    def fail():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        cache.get_or_compute(cache_key(PARTS), PARTS, fail)
    assert cache.report()["entries"] == 0 and not any(p.name.startswith(".") for p in tmp_path.rglob("*"))


def test_disabled_cache_never_stores(tmp_path):
    cache = FeatureCache(tmp_path / "cache", enabled=False)
    key = cache_key(PARTS)
    cache.put(key, np.ones(3), PARTS)
    array, hit = cache.get_or_compute(key, PARTS, lambda: np.ones(3))
    assert not hit and np.array_equal(array, np.ones(3))
    assert cache.get(key) is None
    assert not (tmp_path / "cache").exists()
    assert (cache.hits, cache.misses) == (0, 0)


def test_bad_keys_and_arrays_are_refused(tmp_path):
    cache = FeatureCache(tmp_path)
    with pytest.raises(ValueError, match="64 lowercase hex"):
        cache.get("../../etc/passwd")
    with pytest.raises(TypeError, match="numeric"):
        cache.put(cache_key(PARTS), np.array([object()]), PARTS)
    with pytest.raises(TypeError, match="array_digest"):
        cache.put(cache_key(PARTS), np.ones(2), {"images": np.ones(2)})


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_shape", "no_metadata"])
def test_unusable_entry_is_a_miss_removed_and_recomputed(tmp_path, damage, caplog):
    cache = FeatureCache(tmp_path)
    key = cache_key(PARTS)
    array = np.arange(1000, dtype=np.float64).reshape(100, 10)
    cache.put(key, array, PARTS)
    npy, meta = tmp_path / key[:2] / f"{key}.npy", tmp_path / key[:2] / f"{key}.json"
    if damage == "truncate":
        npy.write_bytes(npy.read_bytes()[:3000])
    elif damage == "garbage":
        npy.write_bytes(b"\x00not an npy file" * 10)
    elif damage == "wrong_shape":
        np.save(npy, array[:50])
    else:
        meta.unlink()

    assert cache.get(key) is None
    assert "unusable" in caplog.text
    assert not npy.exists() and not meta.exists()
    recomputed, hit = cache.get_or_compute(key, PARTS, lambda: array)
    assert not hit and np.array_equal(cache.get(key), array)


def test_stale_temp_files_are_ignored_and_cleaned(tmp_path):
    cache = FeatureCache(tmp_path)
    key = cache_key(PARTS)
    shard = tmp_path / key[:2]
    shard.mkdir()
    # what a writer killed mid-way leaves: a half-written .npy temp and, possibly, committed metadata
    (shard / f".{key}.npy.tmp-4242-0123456789ab").write_bytes(b"\x93NUMPY half")
    (shard / f".{key}.json.tmp-4242-ba9876543210").write_bytes(b"{")
    (shard / f"{key}.json").write_text('{"shape": [2], "dtype": "<f8"}')
    (shard / "notes.txt").write_text("not ours")  # never touched

    assert cache.get(key) is None
    report = cache.report()
    assert (report["entries"], report["bytes"], report["stale_files"]) == (0, 0, 3)
    assert report["oldest"] is None

    summary = cache.clean(dry_run=True)
    assert (summary["removed_entries"], summary["removed_stale_files"]) == (0, 3)
    assert len(entry_files(tmp_path)) == 4  # dry run removed nothing

    summary = cache.clean()
    assert summary["removed_stale_files"] == 3 and summary["bytes_freed"] > 0
    assert entry_files(tmp_path) == ["notes.txt"]
    array, hit = cache.get_or_compute(key, PARTS, lambda: np.ones(2))
    assert not hit and np.array_equal(cache.get(key), np.ones(2))


def test_report_and_clean_numbers(tmp_path):
    cache = FeatureCache(tmp_path)
    keys = [cache_key({**PARTS, "n": n}) for n in range(3)]
    for n, key in enumerate(keys):
        cache.put(key, np.zeros((10, n + 1), dtype=np.float32), {**PARTS, "n": n})
    # make the first entry 10 days old (its metadata's creation time is what counts)
    meta_path = tmp_path / keys[0][:2] / f"{keys[0]}.json"
    metadata = json.loads(meta_path.read_text())
    metadata["created_unix"] -= 10 * 86400
    meta_path.write_text(json.dumps(metadata))

    report = cache.report()
    sizes = [
        (tmp_path / key[:2] / f"{key}.npy").stat().st_size
        + (tmp_path / key[:2] / f"{key}.json").stat().st_size
        for key in keys
    ]
    assert (report["entries"], report["bytes"], report["lock_files"]) == (3, sum(sizes), 3)
    assert report["oldest"] < report["newest"]

    summary = cache.clean(older_than_days=5)
    assert summary["removed_keys"] == [keys[0]] and summary["removed_entries"] == 1
    assert summary["bytes_freed"] == sizes[0] and summary["removed_lock_files"] == 3
    assert cache.get(keys[0]) is None and cache.get(keys[1]) is not None
    assert cache.report()["entries"] == 2

    summary = cache.clean()
    assert summary["removed_entries"] == 2 and summary["bytes_freed"] == sum(sizes[1:])
    assert list(tmp_path.iterdir()) == []  # empty shard folders go too
    assert FeatureCache(tmp_path / "missing").clean()["removed_entries"] == 0


def test_clean_skips_keys_in_use(tmp_path):
    cache = FeatureCache(tmp_path)
    key = cache_key(PARTS)
    cache.put(key, np.ones(4), PARTS)
    descriptor = os.open(tmp_path / key[:2] / f"{key}.lock", os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # as a writer in another process would
        summary = cache.clean()
        assert (summary["skipped_in_use"], summary["removed_entries"]) == (1, 0)
    finally:
        os.close(descriptor)
    assert cache.clean()["removed_entries"] == 1


# -- processes --------------------------------------------------------------------------------------

CHILD_GET_OR_COMPUTE = """
    import sys, time
    import numpy as np
    from rdx.cache import FeatureCache, array_digest, cache_key

    root, counter, started, sleep_s = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    parts = {"kind": "features", "test": "concurrency"}

    def compute():
        with open(started, "a") as handle:
            handle.write("started\\n")
        time.sleep(sleep_s)
        with open(counter, "a") as handle:
            handle.write("computed\\n")
        return np.random.default_rng().normal(size=(256, 16)).astype(np.float32)

    array, hit = FeatureCache(root).get_or_compute(cache_key(parts), parts, compute)
    print(array_digest(array), hit)
"""
CHILD_PARTS = {"kind": "features", "test": "concurrency"}


def test_two_processes_compute_a_key_once(tmp_path):
    counter, started = tmp_path / "counter.txt", tmp_path / "started.txt"
    args = (str(tmp_path / "cache"), str(counter), str(started), "1.0")
    children = [run_child(CHILD_GET_OR_COMPUTE, *args) for _ in range(2)]
    outputs = []
    for child in children:
        stdout, stderr = child.communicate(timeout=60)
        assert child.returncode == 0, stderr
        outputs.append(stdout.split())
    assert counter.read_text().splitlines() == ["computed"]
    (digest_a, hit_a), (digest_b, hit_b) = outputs
    assert digest_a == digest_b and sorted([hit_a, hit_b]) == ["False", "True"]
    stored = FeatureCache(tmp_path / "cache").get(cache_key(CHILD_PARTS))
    assert array_digest(stored) == digest_a


def test_killed_writer_leaves_no_entry_and_no_held_lock(tmp_path):
    root, counter, started = tmp_path / "cache", tmp_path / "counter.txt", tmp_path / "started.txt"
    child = run_child(CHILD_GET_OR_COMPUTE, str(root), str(counter), str(started), "30")
    try:
        deadline = time.monotonic() + 30
        while not started.exists():  # the child is inside compute, holding the key's lock
            assert child.poll() is None, child.communicate()[1]
            assert time.monotonic() < deadline, "child never started computing"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL

    cache = FeatureCache(root)
    key = cache_key(CHILD_PARTS)
    assert cache.get(key) is None
    lock = root / key[:2] / f"{key}.lock"
    descriptor = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the kernel released the dead child's lock
    finally:
        os.close(descriptor)
    array, hit = cache.get_or_compute(key, CHILD_PARTS, lambda: np.full((2, 2), 7.0))
    assert not hit and np.array_equal(cache.get(key), array) and not counter.exists()


# -- rdx-cache --------------------------------------------------------------------------------------


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 1023, 1536, 5 * 1024**3)] == ["0 B", "1023 B", "1.5 KiB", "5.0 GiB"]


def test_cli_size_and_clean(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RDX_ROOT", str(tmp_path))
    root = tmp_path / "outputs" / "cache"
    FeatureCache(root).put(cache_key(PARTS), np.zeros((64, 32), dtype=np.float32), PARTS)

    cache_main(["size"])  # default root from RDX_ROOT
    out = capsys.readouterr().out
    assert "entries: 1" in out and "KiB" in out and str(root) in out

    cache_main(["--root", str(root), "clean", "--older-than", "1", "--dry-run"])
    assert "would remove 0 entries" in capsys.readouterr().out
    cache_main(["--root", str(root), "clean", "--dry-run"])
    assert "would remove 1 entries" in capsys.readouterr().out
    cache_main(["--root", str(root), "clean"])
    assert "removed 1 entries" in capsys.readouterr().out
    cache_main(["--root", str(root), "size"])
    assert "entries: 0" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cache_main(["clean", "--older-than", "-1"])
