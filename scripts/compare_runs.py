"""Check that two comparison runs found the same thing: every score, concept, grid and figure.

Usage: python scripts/compare_runs.py OLD_RUN_DIR NEW_RUN_DIR

Reads both run records through ``rdx.record.load_run`` (old records without a schema version too) and
compares, for every method: the scores of every metric and distance (exactly), every concept's side,
index, size, score and grid (exactly); the models' checkpoints, steps and accuracies; and every figure
file byte for byte. When NEW has a members file, it checks that the file rebuilds each concept: its
member count equals the record's size. Exits 1 on the first kind of difference, listing them all.
"""

from __future__ import annotations

import filecmp
import sys

from rdx.record import load_run


def main(old_dir: str, new_dir: str) -> int:
    old, new = load_run(old_dir), load_run(new_dir, members=True)
    problems = []
    for side in ("A", "B"):
        for key in ("step", "epoch", "val_acc", "layer", "pooling"):
            if old.models[side].get(key) != new.models[side].get(key):
                problems.append(
                    f"model {side} {key}: {old.models[side].get(key)} != {new.models[side].get(key)}"
                )
    if list(old.methods) != list(new.methods):
        problems.append(f"methods {list(old.methods)} != {list(new.methods)}")
    for label, method in old.methods.items():
        other = new.methods.get(label)
        if other is None:
            continue
        if method.metrics != other.metrics:
            problems.append(f"{label}: metrics differ")
        if method.recovery != other.recovery:
            problems.append(f"{label}: recovery differs")
        for a, b in zip(method.concepts, other.concepts, strict=False):
            if (a.side, a.index, a.size, a.score, a.grid, a.grid_labels) != (
                b.side,
                b.index,
                b.size,
                b.score,
                b.grid,
                b.grid_labels,
            ):
                problems.append(f"{label} side {a.side} concept {a.index}: {a} != {b}")
        if len(method.concepts) != len(other.concepts):
            problems.append(f"{label}: {len(method.concepts)} != {len(other.concepts)} concepts")
        for concept in other.concepts:
            members = other.concept_members(concept.side, concept.index)
            if len(members) != concept.size:
                problems.append(
                    f"{label} {concept.side}{concept.index}: {len(members)} members != size {concept.size}"
                )
    if old.representations != new.representations:
        problems.append("representations differ")
    figures = 0
    for name in old.figures:
        if name not in new.figures:
            problems.append(f"figure {name} missing in the new run")
            continue
        figures += 1
        if not filecmp.cmp(old.figure_path(name), new.figure_path(name), shallow=False):
            problems.append(f"figure {name} differs")
    for line in problems:
        print("DIFF", line)
    n_concepts = sum(len(m.concepts) for m in new.methods.values())
    print(
        f"{len(new.methods)} methods, {n_concepts} concepts, {figures} figures compared: "
        f"{'identical' if not problems else f'{len(problems)} differences'}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
