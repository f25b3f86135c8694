"""Content digests: the one home of every hash the project keys things by.

Feature-cache keys, run keys and training-run keys are all :func:`json_digest` of a canonical JSON
text; files and arrays enter those parts through :func:`file_digest` and :func:`array_digest`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["array_digest", "canonical_json", "file_digest", "json_digest"]

_CHUNK_BYTES = 1 << 20
_SETTLED_NS = 2_000_000_000  # a file untouched this long is not being rewritten within a timestamp tick

# (resolved path, device, inode, size, mtime_ns) → SHA-256 hex; see file_digest.
_file_digests: dict[tuple[str, int, int, int, int], str] = {}


def _canonical(value: Any, where: str, int_keys: bool = False) -> Any:
    """``value`` as plain JSON types; TypeError (naming the offending part) for anything else."""
    if isinstance(value, np.ndarray):
        raise TypeError(f"key part {where!r} is a numpy array; pass array_digest(array) instead")
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise TypeError(f"key part {where!r} is bytes; pass its hashlib.sha256(...).hexdigest()")
    if isinstance(value, np.generic):  # a numpy scalar is a value: np.int64(3) keys like 3
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        canonical = {}
        for name, item in value.items():
            if not (
                isinstance(name, str) or (int_keys and isinstance(name, int) and not isinstance(name, bool))
            ):
                raise TypeError(f"key part {where!r} has a non-string key {name!r}")
            canonical[name] = _canonical(item, f"{where}.{name}", int_keys)
        return canonical
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_canonical(item, f"{where}[{index}]", int_keys) for index, item in enumerate(value)]
    hint = "; pass file_digest(path) to key on a file's content" if isinstance(value, os.PathLike) else ""
    raise TypeError(
        f"key part {where!r} has type {type(value).__name__}; "
        f"only JSON values (str, int, float, bool, None, lists, str-keyed mappings) are allowed{hint}"
    )


def canonical_json(parts: Mapping[str, Any], int_keys: bool = False) -> str:
    """The canonical JSON text of ``parts``: sorted keys, compact separators, numpy scalars as Python.

    Mapping keys are strings; with ``int_keys`` nested mappings may also have integer keys (sorted as
    numbers, written as strings, as ``json.dumps`` does: configs such as a label map ``{0: 3}``).

    Raises:
        TypeError: a part is not a JSON value (arrays, bytes and paths name the digest to use instead).
    """
    canonical = {}
    for name, value in parts.items():
        if not isinstance(name, str):
            raise TypeError(f"key part names must be strings, got {name!r}")
        canonical[name] = _canonical(value, name, int_keys)
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"))


def json_digest(parts: Mapping[str, Any], int_keys: bool = False) -> str:
    """SHA-256 hex (64 characters) of the canonical JSON of ``parts`` (mapping key order is irrelevant;
    ``int_keys`` as in :func:`canonical_json`)."""
    return hashlib.sha256(canonical_json(parts, int_keys).encode("utf-8")).hexdigest()


def array_digest(array: np.ndarray) -> str:
    """SHA-256 hex of an array's dtype (with byte order), shape and C-order bytes.

    Equal values with another dtype or shape give another digest. Object and structured arrays raise
    TypeError.
    """
    array = np.asarray(array)
    if array.dtype.hasobject or array.dtype.names is not None:
        raise TypeError(f"array_digest needs a plain numeric/bool array, got dtype {array.dtype}")
    digest = hashlib.sha256(f"{array.dtype.str}|{array.shape}|".encode())
    digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8))  # no copy when contiguous
    return digest.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex of a file's content, read in 1 MiB chunks.

    Memoised for the life of the process by (resolved path, device, inode, size, mtime_ns), so the same
    checkpoint is hashed once; a file rewritten or replaced in place is hashed again. A file modified in
    the last seconds is not memoised: a rewrite of the same size within one timestamp tick would keep
    its inode, size and mtime.
    """
    resolved = Path(path).resolve()
    before = resolved.stat()
    memo_key = (str(resolved), before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns)
    if memo_key in _file_digests:
        return _file_digests[memo_key]
    digest = hashlib.sha256()
    with open(resolved, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    after = resolved.stat()
    hexdigest = digest.hexdigest()
    settled = time.time_ns() - after.st_mtime_ns > _SETTLED_NS
    if settled and (after.st_ino, after.st_size, after.st_mtime_ns) == memo_key[2:]:  # unchanged meanwhile
        _file_digests[memo_key] = hexdigest
    return hexdigest
