"""A diagnostic for the calibration study: would another grid statistic separate seed twins from planted
differences? The specified test scores a grid by its BSR (SILB); this script scores the same RDX grids,
against the same null tight groups (``rdx.metrics.significance.tight_group_ranks``, n_null and seed from
the run's record), by BSR and by TSD (SILB): the mean over the grid's ordered pairs of
rank in O - rank in M (RDX_METHOD.md section 3), which is not bounded by a merge's share of cross pairs
(docs/significance.md, "It cannot see a merge") and measures how far the other model pushes the pairs
apart, not only whether it does. p and Benjamini-Hochberg q per statistic, as the test computes them
(the BSR column reproduces the run's recorded q exactly; the script checks it).

Then an upper bound on any per-concept threshold test built on these numbers: for each score (BSR, TSD,
TSD over its null's median, the two p-values, BSR and TSD with the MNED and LSED distances, and the mean
log ratio of the pairs' SILB distances), the threshold chosen *on these very concepts* that
keeps the share of concepts at or above it <= 0.2 on every seed-twin comparison (``--twins``) and makes
the smallest share on the other comparisons largest. Tuning on the calibration data is exactly what the
issue forbids for the test; it is done here only to show what no threshold can reach.

Prints, as markdown: per comparison, the share of RDX concepts with q < alpha under each statistic; the
oracle thresholds; per concept its size, BSR, TSD, the TSD null's median and 95th percentile, and both
q-values. Not part of the table pipeline; the numbers back the reading in README.md.

Usage: python experiments/significance/statistic_probe.py SWEEP_DIR CACHE_DIR --columns a,b,... \
       [--twins a,b] [--skip c]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from null_diagnostic import OTHER, cached_features

from rdx.metrics.bsr import grid_scores, model_pair_distances
from rdx.metrics.significance import bh_qvalues, null_anchors, p_value, tight_group_ranks
from rdx.record import load_run

STATISTICS = ("bsr", "tsd")


def null_statistics(X_M: np.ndarray, X_O: np.ndarray, size: int, n_null: int, seed: int) -> dict:
    """BSR and TSD (SILB) of the test's null tight groups of M, explaining M against O: {stat: (n_null,)}."""
    anchors = null_anchors(len(X_M), n_null, seed)
    ranks_M, ranks_O = tight_group_ranks(X_M, X_O, anchors, size)
    off_diagonal = ~np.eye(size, dtype=bool)
    return {
        "bsr": (ranks_M < ranks_O)[:, off_diagonal].mean(axis=1),
        "tsd": (ranks_O - ranks_M)[:, off_diagonal].mean(axis=1),
    }


def concept_rows(record, features: dict[str, np.ndarray]) -> list[dict]:
    """Every RDX concept of a run with its BSR, TSD, p and q under both statistics."""
    settings = record.methods["rdx"].significance or {}
    n_null, seed = int(settings["n_null"]), int(settings["seed"])
    nulls: dict[tuple[str, int], dict] = {}
    rows = []
    for concept in record.methods["rdx"].concepts:
        grid, side = np.asarray(concept.grid, dtype=np.int64), concept.side
        key = (side, len(grid))
        if key not in nulls:
            nulls[key] = null_statistics(features[side], features[OTHER[side]], len(grid), n_null, seed)
        pair = model_pair_distances(features["A"], features["B"], grid, "silb")
        scores = grid_scores(pair[side], pair[OTHER[side]])
        row = {"side": side, "index": concept.index, "size": concept.size, "recorded_q": concept.q_value}
        for stat in STATISTICS:
            row[stat] = scores[stat]
            row[f"p_{stat}"] = p_value(scores[stat], nulls[key][stat])
        for distance in ("mned", "lsed"):  # raw scores only (the oracle): the test's null is SILB's
            other_pair = model_pair_distances(features["A"], features["B"], grid, distance)
            other_scores = grid_scores(other_pair[side], other_pair[OTHER[side]])
            row[f"{distance}_bsr"], row[f"{distance}_tsd"] = other_scores["bsr"], other_scores["tsd"]
        off_diagonal = ~np.eye(len(grid), dtype=bool)
        row["log_ratio"] = float(np.mean(np.log(pair[OTHER[side]][off_diagonal] / pair[side][off_diagonal])))
        row["tsd_null_median"] = float(np.median(nulls[key]["tsd"]))
        row["tsd_null_p95"] = float(np.quantile(nulls[key]["tsd"], 0.95))
        rows.append(row)
    for stat in STATISTICS:
        for row, q in zip(rows, bh_qvalues(np.array([row[f"p_{stat}"] for row in rows])), strict=True):
            row[f"q_{stat}"] = float(q)
    for row in rows:  # the BSR column is the specified test: it must give the recorded q
        if row["recorded_q"] is not None and not np.isclose(row["q_bsr"], row["recorded_q"], rtol=1e-9):
            raise AssertionError(f"{record.task_name}: BSR q {row['q_bsr']} != recorded {row['recorded_q']}")
    return rows


ORACLE_SCORES = {
    "BSR": lambda row: row["bsr"],
    "TSD": lambda row: row["tsd"],
    "TSD / its null's median": lambda row: row["tsd"] / row["tsd_null_median"],
    "1 - p (BSR)": lambda row: 1 - row["p_bsr"],
    "1 - p (TSD)": lambda row: 1 - row["p_tsd"],
    "BSR (MNED)": lambda row: row["mned_bsr"],
    "TSD (MNED)": lambda row: row["mned_tsd"],
    "BSR (LSED)": lambda row: row["lsed_bsr"],
    "TSD (LSED)": lambda row: row["lsed_tsd"],
    "mean log(SILB in O / SILB in M)": lambda row: row["log_ratio"],
}


def oracle_threshold(rows: dict[str, list[dict]], twins: Sequence[str], score) -> tuple[float, dict]:
    """The threshold on ``score`` that keeps every twin comparison's share of concepts at or above it
    <= 0.2 and maximises the smallest share among the other comparisons: (threshold, shares)."""
    values = sorted({score(row) for concepts in rows.values() for row in concepts}) + [np.inf]
    best: tuple[float, dict] | None = None
    for threshold in values:
        shares = {
            name: np.mean([score(row) >= threshold for row in concepts]) for name, concepts in rows.items()
        }
        if max(shares[name] for name in twins) > 0.2:
            continue
        planted = min(share for name, share in shares.items() if name not in twins)
        if best is None or planted > min(s for n, s in best[1].items() if n not in twins):
            best = (threshold, shares)
    return best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("cache", type=Path)
    parser.add_argument("--columns", required=True)
    parser.add_argument("--twins", default="mnist_835_seed_twins,mnist_seed_twins")
    parser.add_argument(
        "--skip", default="mnist_835", help="columns left out of the oracle (no wanted share)"
    )
    args = parser.parse_args(argv)
    shares, details, all_rows = [], [], {}
    for column in args.columns.split(","):
        record = load_run(args.sweep / column)
        alpha = float((record.methods["rdx"].significance or {}).get("alpha", 0.05))
        rows = all_rows[column] = concept_rows(record, cached_features(args.cache, record))
        share = {stat: np.mean([row[f"q_{stat}"] < alpha for row in rows]) for stat in STATISTICS}
        shares.append(f"| {column} | {share['bsr']:.2f} | {share['tsd']:.2f} |")
        details.append(f"\n#### {column}\n")
        details.append("| concept | size | BSR | TSD | TSD null median / p95 | q (BSR) | q (TSD) |")
        details.append("|---|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            details.append(
                f"| {row['side']}{row['index']} | {row['size']} | {row['bsr']:.3f} | {row['tsd']:.1f} | "
                f"{row['tsd_null_median']:.1f} / {row['tsd_null_p95']:.1f} | {row['q_bsr']:.3g} | "
                f"{row['q_tsd']:.3g} |"
            )
    print("| comparison | RDX share q < alpha, BSR (the test) | RDX share q < alpha, TSD |")
    print("|---|---:|---:|")
    print("\n".join(shares))
    twins, skipped = args.twins.split(","), set(args.skip.split(","))
    oracle_rows = {name: rows for name, rows in all_rows.items() if name not in skipped}
    others = [name for name in oracle_rows if name not in twins]
    print("\n| score | oracle threshold | " + " | ".join(twins + others) + " | smallest non-twin share |")
    print("|---|---:|" + "---:|" * (len(twins) + len(others) + 1))
    for label, score in ORACLE_SCORES.items():
        threshold, share = oracle_threshold(oracle_rows, twins, score)
        cells = " | ".join(f"{share[name]:.2f}" for name in twins + others)
        print(f"| {label} | {threshold:.4g} | {cells} | {min(share[name] for name in others):.2f} |")
    print("\n".join(details))


if __name__ == "__main__":
    main()
