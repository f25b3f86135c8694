"""Config sections read into frozen settings dataclasses (``report``, ``significance``): one rule for
unknown keys, the dataclass's ``__post_init__`` for bad values. Light: no torch, no numpy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

Settings = TypeVar("Settings")


def settings_from_config(cls: type[Settings], config: Mapping[str, Any] | None, section: str) -> Settings:
    """``cls(**config)`` (None: the defaults), refusing keys ``cls`` does not have, naming the valid ones
    with the section (``report: unknown setting(s) ['neighbors']; valid: [...]``)."""
    config = dict(config or {})
    known = {field.name for field in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{section}: unknown setting(s) {unknown}; valid: {sorted(known)}")
    return cls(**config)
