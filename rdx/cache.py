"""Content-keyed cache of representations (features), shared by runs and by processes of a sweep.

An entry is one array, stored under a key that is the SHA-256 of everything it depends on (the image
selection, the checkpoint content, the layer, the pooling, ...)::

    parts = {"kind": "features", "images": array_digest(images), "checkpoint": file_digest(path),
             "layer": "block2", "pooling": "gap"}
    features, hit = cache.get_or_compute(cache_key(parts), parts, lambda: extract_features(...))

Layout under ``root``: ``<key[:2]>/<key>.npy`` (the array), ``<key[:2]>/<key>.json`` (its metadata: the
key parts, shape, dtype, the array's digest, creation time, seconds it took to compute) and
``<key[:2]>/<key>.lock`` (the per-key ``flock`` lock). Files being written are named
``.<key>.npy.tmp-<pid>-<random>`` (and the same for ``.json``): the leading dot keeps them from ever being
read as entries, and ``clean`` removes the ones a killed writer left behind.

Every writer holds the key's lock, so ``clean`` (which only takes locks without waiting) never removes
a file that a live writer is still working on, and two processes asking for the same missing key
compute it once. Readers (``get``) take no lock: entries only ever appear through ``os.replace``.

Verified entries: the metadata holds ``array_digest`` (:func:`rdx.hashing.array_digest` of the array as
written) and every load checks it, with the shape, the dtype and the key the metadata names. An entry
that fails (bytes changed on disk, a truncated, empty or unreadable ``.npy``, missing or corrupt
metadata) is never returned: a warning names the entry and what was wrong, the entry is removed, and
``get_or_compute`` computes it again. Entries written before digests were stored have none; they cannot
be told apart from entries damaged since, so they are treated the same way (a warning, removed, computed
again once). ``rdx-cache verify [--fix]`` checks every entry the same way (:meth:`FeatureCache.verify`).

An unwritable cache folder (read-only, a file in its place, a full disk, no file locking) never stops a
run: one warning names the folder and the reason, valid entries are still read, and each miss is
computed and returned without being stored (:attr:`FeatureCache.unwritable` holds the reason).

Cost of verification: one SHA-256 pass over the array (about 1 GB/s with the CPU's SHA instructions).
N = 100,000 x d = 768 float32 (307 MB), page-cached file, medians of 7 in one process on the 2-core
development machine (2026-11-28, shared: load average ~5): writing an entry 0.60 s (np.save + fsync
alone 0.23 s, the digest 0.31 s); reading it 0.43 s (np.load alone 0.12 s, verifying 0.31 s); the
digest's median over three such sets was 0.22-0.32 s. Verification stays under 10 % of extraction while
extracting the 100,000 images takes over 3.1 s (slower than ~32,000 images/s). A ViT-B/16 forward pass
at 224 px is 33.7 GFLOP per image (torch's FLOP counter), so even an H100 at its dense bf16 peak
(989 TFLOP/s) needs 3.4 s for them before decoding a single JPEG: 0.31 s is 9 % of that ideal, 0.5 % of
a one-minute extraction; this CPU runs the same forward pass at 1.5 images/s (18 hours).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import numpy as np

from rdx.hashing import array_digest, canonical_json, file_digest, json_digest

__all__ = [
    "FeatureCache",
    "array_digest",
    "cache_key",
    "canonical_json",
    "default_cache_root",
    "file_digest",
]

logger = logging.getLogger(__name__)

_KEY = re.compile(r"[0-9a-f]{64}")
_SHARD = re.compile(r"[0-9a-f]{2}")
_ENTRY_FILE = re.compile(r"(?P<key>[0-9a-f]{64})\.(?P<kind>npy|json|lock)")
_TEMP_FILE = re.compile(r"\.(?P<key>[0-9a-f]{64})\.(?:npy|json)\.tmp-\d+-[0-9a-f]+")
_SECONDS_PER_DAY = 86400.0
# The metadata field holding rdx.hashing.array_digest of the stored array.
_DIGEST = "array_digest"


def default_cache_root() -> Path:
    """``$RDX_ROOT/outputs/cache``, or ``./outputs/cache`` without RDX_ROOT (as conf/paths/default.yaml)."""
    return Path(os.environ.get("RDX_ROOT", ".")) / "outputs" / "cache"


def cache_key(parts: Mapping[str, Any]) -> str:
    """SHA-256 hex (64 characters) of the canonical JSON of ``parts``.

    ``parts`` holds JSON values only (mappings may be nested, e.g. an OmegaConf DictConfig); the order
    of mapping keys does not matter. Arrays, bytes and paths raise TypeError: hash them first with
    :func:`array_digest` / :func:`file_digest`.
    """
    return json_digest(parts)


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"cache keys are 64 lowercase hex characters (from cache_key), got {key!r}")
    return key


def _fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable; a no-op where directories cannot be fsynced."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def _temporary_file(target: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """A new ``.<name>.tmp-<pid>-<random>`` file beside ``target``, flushed and fsynced on exit.

    The caller renames it into place; on error it is deleted. (rdx.sinks.files.atomic_file renames
    at once; here the .npy must wait for its metadata, and the pid tells which writer left a temp.)
    """
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(6)}")
    try:
        with open(temporary, "xb") as handle:
            yield handle, temporary
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat(timespec="seconds")


@dataclass
class _KeyFiles:
    """What a scan found for one key in one shard folder."""

    npy: Path | None = None
    json: Path | None = None
    lock: Path | None = None
    temporaries: list[Path] = field(default_factory=list)


@dataclass
class _Reading:
    """One entry as read from disk: the array, what is wrong with it (None: verified), its .npy's inode."""

    array: np.ndarray | None
    problem: str | None
    inode: int | None


def _why(error: BaseException) -> str:
    """An OS error's reason without the path (the messages name the entry), else the error itself."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__}: {error}"


def _unreadable_npy(size: int, error: Exception) -> str:
    """Why ``np.load`` failed, in words; numpy's advice to allow pickles is never passed on (the cache
    stores plain arrays only, so a file that would need them is damaged, not of another kind)."""
    if size == 0:
        return "its .npy is empty (0 bytes)"
    if "pickle" in str(error).lower():
        return "its .npy has no valid header (the file is damaged)"
    return f"its .npy is not a readable .npy array (truncated or damaged: {_why(error)})"


def _metadata_problem(metadata: Any, key: str, array: np.ndarray) -> str | None:
    """What is wrong with an entry whose .npy loaded as ``array``, given its metadata; None: verified."""
    if not isinstance(metadata, dict):
        return "its metadata is not a JSON object"
    if metadata.get("key", key) != key:
        return f"its metadata belongs to another key ({str(metadata['key'])[:64]!r})"
    try:
        shape, dtype = tuple(metadata["shape"]), np.dtype(metadata["dtype"])
    except (KeyError, TypeError, ValueError) as error:
        return f"its metadata has no valid shape and dtype ({_why(error)})"
    if array.shape != shape or array.dtype != dtype:
        return f"the .npy holds {array.dtype}{array.shape} but its metadata says {dtype}{shape}"
    expected = metadata.get(_DIGEST)
    if expected is None:
        return "it has no content digest (written before entries were verified), so it cannot be checked"
    actual = array_digest(array)
    if actual != expected:
        return (
            f"its content does not match its digest (metadata {str(expected)[:12]}..., file "
            f"{actual[:12]}...): the .npy or its metadata changed after they were written"
        )
    return None


def _size(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


class FeatureCache:
    """Arrays on disk under content keys, safe for concurrent processes; see the module docstring.

    Args:
        root: cache folder (created on the first write).
        enabled: False → ``get`` always misses, ``put`` stores nothing, ``get_or_compute`` just computes.

    Attributes:
        hits, misses: lookups on this instance that found / did not find a valid entry (a disabled
            cache counts neither).
        unwritable: None, or why the folder could not be written (then this instance stores nothing).
    """

    def __init__(self, root: Path | str, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled
        self.hits = 0
        self.misses = 0
        self.unwritable: str | None = None

    def __repr__(self) -> str:
        return f"FeatureCache(root={str(self.root)!r}, enabled={self.enabled})"

    # -- paths and locks ---------------------------------------------------------------------------

    def _path(self, key: str, suffix: str) -> Path:
        return self.root / key[:2] / f"{key}{suffix}"

    @contextlib.contextmanager
    def _locked(self, key: str, wait: bool = True) -> Iterator[bool]:
        """Hold the key's exclusive ``flock``; yields False (holding nothing) when ``wait`` is False and
        another process holds it.

        ``clean`` deletes lock files (while holding them), so after locking we check that the path
        still names the file we locked; otherwise a newcomer could lock a fresh file beside us.
        """
        lock_path = self._path(key, ".lock")
        while True:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # clean removed the empty shard folder just now
                continue
            try:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    if not wait:
                        yield False
                        return
                    logger.info("waiting for another process to finish cache entry %s", key[:12])
                    fcntl.flock(descriptor, fcntl.LOCK_EX)
                locked = os.fstat(descriptor)
                try:
                    current = os.stat(lock_path)
                except FileNotFoundError:
                    continue
                if (locked.st_dev, locked.st_ino) != (current.st_dev, current.st_ino):
                    continue
                yield True
                return
            finally:
                os.close(descriptor)  # also releases the lock

    # -- reading -----------------------------------------------------------------------------------

    def _read(self, key: str) -> _Reading | None:
        """The entry under ``key``, checked (see :class:`_Reading`); None when there is none."""
        npy_path = self._path(key, ".npy")
        try:
            handle = open(npy_path, "rb")
        except (FileNotFoundError, NotADirectoryError):  # no entry, or the cache folder is a file
            return None
        except OSError as error:  # it is there (e.g. without read permission) but cannot be used
            try:
                inode = os.stat(npy_path).st_ino
            except OSError:
                return None
            return _Reading(None, f"its .npy cannot be opened ({_why(error)})", inode)
        with handle:
            status = os.fstat(handle.fileno())
            inode = status.st_ino
            try:
                array = np.load(handle, allow_pickle=False)
            except Exception as error:  # whatever a damaged file makes np.load raise: unusable
                return _Reading(None, _unreadable_npy(status.st_size, error), inode)
        json_path = self._path(key, ".json")
        try:
            metadata = json.loads(json_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return _Reading(None, "its metadata (.json) is missing", inode)
        except (OSError, ValueError) as error:
            return _Reading(None, f"its metadata (.json) is unreadable ({_why(error)})", inode)
        return _Reading(array, _metadata_problem(metadata, key, array), inode)

    def _remove(self, key: str, inode: int | None) -> bool:
        """Remove the entry (the caller holds its lock, or could not take it) unless its .npy is no longer
        the file that was checked (a writer replaced it meanwhile); whether the bad entry is gone."""
        npy_path = self._path(key, ".npy")
        try:
            if inode is None or os.stat(npy_path).st_ino != inode:
                return True
            npy_path.unlink()  # the commit point first: never a .npy without its .json
            self._path(key, ".json").unlink(missing_ok=True)
        except FileNotFoundError:
            return True
        except OSError as error:
            logger.warning("could not remove cache entry %s from %s: %s", key, self.root, _why(error))
            return False
        return True

    def _discard(self, key: str, reading: _Reading, locked: bool) -> None:
        """Warn about an unusable entry and remove it.

        Without the key's lock in hand, take it without waiting first: if another process holds it, that
        process is writing this key (or checking it), so the entry is left to it.
        """
        logger.warning(
            "cache entry %s in %s is unusable (%s); removing it and treating it as a miss",
            key,
            self._path(key, "").parent,
            reading.problem,
        )
        with contextlib.ExitStack() as stack:
            if not locked:
                try:
                    if not stack.enter_context(self._locked(key, wait=False)):
                        return
                except OSError:
                    pass  # an unwritable folder: removing will fail too, and say so
            self._remove(key, reading.inode)

    def _load(self, key: str, locked: bool = False) -> np.ndarray | None:
        """The verified array, or None when absent or unusable (an unusable entry is removed)."""
        reading = self._read(key)
        if reading is None:
            return None
        if reading.problem is not None:
            self._discard(key, reading, locked)
            return None
        return reading.array

    def get(self, key: str) -> np.ndarray | None:
        """The array stored under ``key``; None when disabled, absent, or unusable (then removed)."""
        _check_key(key)
        if not self.enabled:
            return None
        array = self._load(key)
        if array is None:
            self.misses += 1
        else:
            self.hits += 1
        return array

    # -- writing -----------------------------------------------------------------------------------

    def _store(self, key: str, array: np.ndarray, parts: Mapping[str, Any], seconds: float | None) -> None:
        """Write an entry; the caller holds the key's lock.

        Order: .npy to a temp file, .json to a temp file, rename the .json, rename the .npy. The .npy
        rename is the commit point: a present .npy always has its .json (a killed writer leaves at most
        a temp file and an orphan .json, which readers ignore and ``clean`` removes).
        """
        npy_path, json_path = self._path(key, ".npy"), self._path(key, ".json")
        npy_path.parent.mkdir(parents=True, exist_ok=True)
        created = time.time()
        metadata = {
            "key": key,
            "parts": json.loads(canonical_json(parts)),
            "shape": list(array.shape),
            "dtype": array.dtype.str,
            "nbytes": int(array.nbytes),
            _DIGEST: array_digest(array),
            "created": _iso(created),
            "created_unix": created,
            "compute_seconds": None if seconds is None else float(seconds),
        }
        with _temporary_file(npy_path) as (npy_handle, npy_temporary):
            np.save(npy_handle, array, allow_pickle=False)
        try:
            with _temporary_file(json_path) as (json_handle, json_temporary):
                json_handle.write(json.dumps(metadata, indent=2).encode("utf-8") + b"\n")
            os.replace(json_temporary, json_path)
            _fsync_directory(json_path.parent)
            os.replace(npy_temporary, npy_path)
            _fsync_directory(npy_path.parent)
        except BaseException:
            npy_temporary.unlink(missing_ok=True)
            raise

    def _give_up_writing(self, error: OSError) -> None:
        """Stop writing to this cache for the life of the instance, with one warning naming why."""
        self.unwritable = _why(error)
        logger.warning(
            "the feature cache folder %s is not writable (%s): going on without storing features; each "
            "one missing from the cache is computed and used, not saved. Point paths.cache at a writable "
            "folder to cache them.",
            self.root,
            self.unwritable,
        )

    def _lock_for_writing(self, stack: contextlib.ExitStack, key: str) -> bool:
        """Take the key's lock into ``stack``; False (after one warning) when the folder is unwritable."""
        if self.unwritable is not None:
            return False
        try:
            stack.enter_context(self._locked(key))
        except OSError as error:
            self._give_up_writing(error)
            return False
        return True

    def _try_store(
        self, key: str, array: np.ndarray, parts: Mapping[str, Any], seconds: float | None
    ) -> None:
        """:meth:`_store`, warning instead of failing when the folder cannot take the entry."""
        try:
            self._store(key, array, parts, seconds)
        except OSError as error:
            self._give_up_writing(error)

    @staticmethod
    def _as_storable(array: Any) -> np.ndarray:
        array = np.asarray(array)
        if array.dtype.hasobject or array.dtype.names is not None:
            raise TypeError(f"FeatureCache stores plain numeric/bool arrays, got dtype {array.dtype}")
        return array

    def put(
        self, key: str, array: np.ndarray, parts: Mapping[str, Any], compute_seconds: float | None = None
    ) -> None:
        """Store ``array`` under ``key`` atomically (under the key's lock); a no-op when disabled, and (with
        a warning) when the folder is unwritable.

        ``parts`` (normally those ``key`` was made from by :func:`cache_key`) go into the metadata.
        """
        _check_key(key)
        array = self._as_storable(array)
        canonical_json(parts)  # reject bad parts before touching the disk
        if not self.enabled:
            return
        with contextlib.ExitStack() as stack:
            if self._lock_for_writing(stack, key):
                self._try_store(key, array, parts, compute_seconds)

    def get_or_compute(
        self, key: str, parts: Mapping[str, Any], compute: Callable[[], np.ndarray]
    ) -> tuple[np.ndarray, bool]:
        """The array under ``key``, computing and storing it on a miss; returns (array, hit).

        Check, compute and store run under the key's lock, so processes asking for the same missing
        key compute it once: the others wait, then hit. ``compute`` must not write the same key (it
        would wait for itself). When disabled: computes, no lock, hit is False. When the folder is
        unwritable: computes on a miss, stores nothing (one warning per instance).
        """
        _check_key(key)
        canonical_json(parts)
        if not self.enabled:
            return self._as_storable(compute()), False
        array = self._load(key)  # fast path without the lock: entries appear atomically
        if array is not None:
            self.hits += 1
            return array, True
        with contextlib.ExitStack() as stack:
            locked = self._lock_for_writing(stack, key)
            if locked:
                array = self._load(key, locked=True)  # another process may have written it meanwhile
                if array is not None:
                    self.hits += 1
                    return array, True
            self.misses += 1
            start = time.perf_counter()
            array = self._as_storable(compute())
            if locked:
                self._try_store(key, array, parts, time.perf_counter() - start)
            return array, False

    # -- maintenance -------------------------------------------------------------------------------

    def _scan(self) -> dict[tuple[Path, str], _KeyFiles]:
        """Every cache file under root by (shard folder, key); other files are left out."""
        found: dict[tuple[Path, str], _KeyFiles] = {}
        if not self.root.is_dir():
            return found
        for shard in sorted(self.root.iterdir()):
            if not (_SHARD.fullmatch(shard.name) and shard.is_dir()):
                continue
            for path in sorted(shard.iterdir()):
                if match := _ENTRY_FILE.fullmatch(path.name):
                    files = found.setdefault((shard, match["key"]), _KeyFiles())
                    setattr(files, match["kind"], path)
                elif match := _TEMP_FILE.fullmatch(path.name):
                    found.setdefault((shard, match["key"]), _KeyFiles()).temporaries.append(path)
        return {(shard, key): files for (shard, key), files in found.items() if key[:2] == shard.name}

    @staticmethod
    def _created(files: _KeyFiles) -> float:
        """Creation time of an entry: its metadata's, else the .npy's modification time."""
        try:
            return float(json.loads(files.json.read_text(encoding="utf-8"))["created_unix"])
        except (AttributeError, OSError, ValueError, KeyError, TypeError):
            return files.npy.stat().st_mtime

    def report(self) -> dict[str, Any]:
        """What the cache holds.

        Returns:
            ``root``; ``entries`` (arrays stored) and ``bytes`` (their .npy + .json sizes); ``oldest``
            and ``newest`` (ISO-8601 UTC creation times, None when empty); ``stale_files`` and
            ``stale_bytes`` (temp files and orphan metadata: written, or being written, but not
            committed); ``lock_files``.
        """
        entries = entry_bytes = stale_files = stale_bytes = lock_files = 0
        created: list[float] = []
        for files in self._scan().values():
            lock_files += files.lock is not None
            stale = list(files.temporaries)
            if files.npy is not None:
                entries += 1
                entry_bytes += _size(files.npy) + _size(files.json)
                with contextlib.suppress(FileNotFoundError):
                    created.append(self._created(files))
            elif files.json is not None:
                stale.append(files.json)
            stale_files += len(stale)
            stale_bytes += sum(map(_size, stale))
        return {
            "root": str(self.root),
            "entries": entries,
            "bytes": entry_bytes,
            "oldest": _iso(min(created, default=None)),
            "newest": _iso(max(created, default=None)),
            "stale_files": stale_files,
            "stale_bytes": stale_bytes,
            "lock_files": lock_files,
        }

    def verify(self, fix: bool = False) -> dict[str, Any]:
        """Check every entry as a load does (readable .npy, metadata, shape, dtype, content digest).

        Each key is checked under its lock, taken without waiting: keys another process holds (being
        computed or written) are skipped. A folder that cannot take locks is checked without them.

        Args:
            fix: remove the bad entries (a later run computes them again).

        Returns:
            ``root``; ``checked`` and ``ok`` (entries); ``bad`` (one ``{"key", "problem", "removed"}`` per
            bad entry, in key order); ``remaining_bad`` (bad entries still on disk); ``skipped_in_use``
            (keys); ``stale_files`` (temp files and orphan metadata, which ``clean`` removes); ``fix``.
        """
        summary: dict[str, Any] = {
            "root": str(self.root),
            "checked": 0,
            "ok": 0,
            "bad": [],
            "remaining_bad": 0,
            "skipped_in_use": 0,
            "stale_files": 0,
            "fix": fix,
        }
        for (_, key), files in self._scan().items():
            summary["stale_files"] += len(files.temporaries) + (files.npy is None and files.json is not None)
            if files.npy is None:
                continue
            with contextlib.ExitStack() as stack:
                try:
                    free = stack.enter_context(self._locked(key, wait=False))
                except OSError:
                    free = True  # an unwritable folder: no process can be writing to it either
                if not free:
                    summary["skipped_in_use"] += 1
                    continue
                reading = self._read(key)
                if reading is None:  # removed since the scan
                    continue
                summary["checked"] += 1
                if reading.problem is None:
                    summary["ok"] += 1
                    continue
                removed = fix and self._remove(key, reading.inode)
                summary["bad"].append({"key": key, "problem": reading.problem, "removed": removed})
                summary["remaining_bad"] += not removed
        return summary

    @contextlib.contextmanager
    def _probe_lock(self, key: str, dry_run: bool) -> Iterator[bool]:
        """Whether no process holds the key's lock; for real runs, keep holding it meanwhile."""
        if not dry_run:
            with self._locked(key, wait=False) as acquired:
                yield acquired
            return
        try:
            descriptor = os.open(self._path(key, ".lock"), os.O_RDWR)
        except FileNotFoundError:
            yield True
            return
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            yield True
        finally:
            os.close(descriptor)

    def clean(self, older_than_days: float | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Remove entries, stale temp files, orphan metadata and lock files.

        Keys whose lock another process holds (being computed or written) are skipped entirely; any
        other temp file or orphan .json is a killed writer's leftover and goes.

        Args:
            older_than_days: remove only entries created more than this many days ago (None: all).
            dry_run: remove nothing; report what would go.

        Returns:
            ``removed_entries``, ``removed_stale_files``, ``removed_lock_files``, ``bytes_freed``,
            ``skipped_in_use`` (keys), ``removed_keys`` (the entries' keys) and ``dry_run``.
        """
        if older_than_days is not None and older_than_days < 0:
            raise ValueError(f"older_than_days must be >= 0, got {older_than_days}")
        cutoff = None if older_than_days is None else time.time() - older_than_days * _SECONDS_PER_DAY
        summary: dict[str, Any] = {
            "removed_entries": 0,
            "removed_stale_files": 0,
            "removed_lock_files": 0,
            "bytes_freed": 0,
            "skipped_in_use": 0,
            "removed_keys": [],
            "dry_run": dry_run,
        }

        def remove(path: Path | None) -> None:
            if path is None:
                return
            summary["bytes_freed"] += _size(path)
            if not dry_run:
                path.unlink(missing_ok=True)

        shards = set()
        for (shard, key), files in self._scan().items():
            shards.add(shard)
            with self._probe_lock(key, dry_run) as free:
                if not free:
                    summary["skipped_in_use"] += 1
                    continue
                if files.npy is not None:
                    try:
                        expired = cutoff is None or self._created(files) < cutoff
                    except FileNotFoundError:
                        expired = False
                    if expired:
                        remove(files.npy)  # the commit point first: never a .npy without its .json
                        remove(files.json)
                        summary["removed_entries"] += 1
                        summary["removed_keys"].append(key)
                elif files.json is not None:
                    remove(files.json)
                    summary["removed_stale_files"] += 1
                for temporary in files.temporaries:
                    remove(temporary)
                summary["removed_stale_files"] += len(files.temporaries)
                summary["removed_lock_files"] += files.lock is not None
                if not dry_run:  # probing created the lock file if it was missing; it goes too
                    # removed while we hold it: lockers re-check the inode (see _locked)
                    self._path(key, ".lock").unlink(missing_ok=True)
        if not dry_run:
            for shard in shards:
                with contextlib.suppress(OSError):  # only removes empty folders
                    shard.rmdir()
        return summary
