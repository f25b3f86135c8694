"""The one result type every method returns: concepts per side, each with members and a grid.

Sides are named by the model they explain: side "A" holds what model A groups together that model B
does not (RDX direction "01"), side "B" the converse (direction "10"). Baselines fill each side from a
fit on that model alone. Methods never draw; the viz and sinks read an ``Explanation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SIDES = ("A", "B")
DIRECTION_TO_SIDE = {"10": "B", "01": "A"}  # RDX's directions and the side each explains


@dataclass
class Concept:
    """One explained concept.

    Attributes:
        index: 1-based position among the shown concepts of its side (0 is reserved for a null cluster).
        members: indices into the image set (int64, shape (m,)) that belong to the concept.
        grid: up to 9 indices chosen to show the concept, anchor/most typical first.
        score: the method's own strength of the concept (RDX: mean within-cluster affinity).
    """

    index: int
    members: np.ndarray
    grid: np.ndarray
    score: float

    @property
    def size(self) -> int:
        return int(len(self.members))

    def to_dict(self, labels: np.ndarray | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "size": self.size,
            "score": float(self.score),
            "grid": [int(i) for i in self.grid],
        }
        if labels is not None:
            grid_labels = [int(labels[i]) for i in self.grid]
            out["grid_labels"] = grid_labels
            out["grid_label_counts"] = label_counts(grid_labels)
            out["member_label_counts"] = label_counts(labels[self.members].tolist())
        return out


def label_counts(values: list[int]) -> dict[str, int]:
    """Counts of each label, keys as strings (JSON-friendly), most frequent first."""
    uniques, counts = np.unique(np.asarray(values, dtype=np.int64), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {str(int(uniques[i])): int(counts[i]) for i in order}


@dataclass
class Explanation:
    """Concepts for both sides of a comparison, produced by one method.

    ``concepts["A"]`` explains model A (shown in A's representation), ``concepts["B"]`` model B.
    ``null`` holds, per side, a cluster the method computed but does not show (RDX's null cluster).
    """

    method: str
    concepts: dict[str, list[Concept]]
    null: dict[str, Concept | None] = field(default_factory=lambda: {"A": None, "B": None})
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.concepts) - set(SIDES)
        if unknown:
            raise ValueError(f"Explanation sides must be {SIDES}, got {sorted(unknown)}")

    def to_dict(self, labels: np.ndarray | None = None) -> dict[str, Any]:
        return {
            "method": self.method,
            "sides": {
                side: {
                    "concepts": [c.to_dict(labels) for c in self.concepts.get(side, [])],
                    "null": None if self.null.get(side) is None else self.null[side].to_dict(labels),
                }
                for side in SIDES
            },
            "info": self.info,
        }
