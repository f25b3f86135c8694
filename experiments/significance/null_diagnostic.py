"""A diagnostic for the calibration study: what the difference test's null looks like per comparison.

For each comparison and side, the null of 9-image grids is drawn again with the test's own function and
settings (``rdx.metrics.significance.null_bsr``, n_null and seed from the run's record) on the features
the run used (found in the feature cache by checkpoint and image digests). Printed as a markdown table:
the null's median and 95th percentile (9-image grids), its share at or above each RDX grid's BSR on that
side (the null of that grid's size: p without the + 1), and the anchor labels whose tight groups score
highest (mean null BSR per anchor label): where the null's mass lies. Not part of the table
pipeline; the numbers back the reading in README.md.

Usage: python experiments/significance/null_diagnostic.py SWEEP_DIR CACHE_DIR --columns a,b,...
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from rdx.hashing import file_digest
from rdx.metrics.significance import null_anchors, null_bsr
from rdx.record import RunResult, load_run

GRID_SIZE = 9
OTHER = {"A": "B", "B": "A"}


def cached_features(cache: Path, record: RunResult) -> dict[str, np.ndarray]:
    """Each side's features of a run, from the feature cache (matched by checkpoint and image digests)."""
    images = (record.inputs or {}).get("dataset.images")
    entries = [json.loads(path.read_text()) for path in cache.glob("*/*.json")]
    features = {}
    for side in ("A", "B"):
        model = record.models[side]
        digest = file_digest(model["checkpoint"])
        for entry in entries:
            parts = entry.get("parts", {})
            if (
                parts.get("checkpoint") == digest
                and parts.get("images") == images
                and parts.get("layer") == model["layer"]
                and parts.get("pooling") == model["pooling"]
            ):
                features[side] = np.load(cache / entry["key"][:2] / f"{entry['key']}.npy")
                break
        else:
            raise LookupError(f"{record.task_name}: side {side}'s features are not in {cache}")
    return features


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("cache", type=Path)
    parser.add_argument("--columns", required=True)
    args = parser.parse_args(argv)
    print(
        "| comparison | side | null median | null 95th pct | share of null >= RDX grid BSRs | "
        "anchor labels with the highest mean null BSR |"
    )
    print("|---|---|---:|---:|---|---|")
    for column in args.columns.split(","):
        record = load_run(args.sweep / column)
        settings = record.methods["rdx"].significance or {}
        labels = pd.read_csv(record.path(record.members_file), usecols=["label"])["label"].to_numpy()
        names = record.label_names or {}
        features = cached_features(args.cache, record)
        n_null, seed = int(settings["n_null"]), int(settings["seed"])
        anchors = null_anchors(len(labels), n_null, seed)
        for side in ("A", "B"):
            nulls = {GRID_SIZE: null_bsr(features[side], features[OTHER[side]], GRID_SIZE, n_null, seed)}
            null = nulls[GRID_SIZE]
            grids = record.methods["rdx"].metrics["silb"]["grids"][side]
            shares = []
            for concept, grid in zip(record.methods["rdx"].side(side), grids, strict=True):
                size = len(concept.grid)
                if size not in nulls:
                    nulls[size] = null_bsr(features[side], features[OTHER[side]], size, n_null, seed)
                note = "" if size == GRID_SIZE else f" (g={size})"
                shares.append(f"{np.mean(nulls[size] >= grid['bsr']):.2f}{note}")
            by_label = pd.Series(null).groupby(labels[anchors]).mean().sort_values(ascending=False)
            top = ", ".join(f"{names.get(int(key), key)} {value:.2f}" for key, value in by_label[:3].items())
            print(
                f"| {column} | {side} | {np.median(null):.3f} | {np.quantile(null, 0.95):.3f} | "
                f"{', '.join(shares)} | {top} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
