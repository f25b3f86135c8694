"""Write the MNIST 3/5/8 trajectory study's results.md from a finished sweep, and copy its two figures.

Reads ``<sweep>/trajectory/trajectory.csv`` (rdx-trajectory's table: one row per step) and each job's
results.json (``rdx.record.load_run``) for what the reading needs and the CSV does not hold: the digit
labels of every RDX concept's members per side, and the stage times.

Per step and side, **mixing** is the share of the side's concept members that are not of their
concept's majority digit (0: every concept is one digit; 2/3: a concept holds the three digits in equal
parts). Side A is what the checkpoint groups together that the final model separates; side B what the
final model groups together that the checkpoint separates.

Usage: python experiments/mnist_835_trajectory/summarise.py SWEEP_DIR [--swept S] [--elapsed S]
       [--output F] [--figures DIR]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
from pathlib import Path

import pandas as pd

from rdx.record import RunResult, load_run
from rdx.report.trajectory import position_of

HERE = Path(__file__).resolve().parent
SIDES = ("A", "B")


def mixing(record: RunResult, side: str) -> float:
    """Share of the side's RDX concept members outside their concept's majority digit (NaN: none)."""
    members = outside = 0
    for concept in record.main.side(side):
        counts = list(concept.member_label_counts.values())
        if counts:
            members += sum(counts)
            outside += sum(counts) - max(counts)
    return outside / members if members else math.nan


def label_mix(record: RunResult, side: str) -> str:
    """Each concept's member digits, largest first, e.g. "8:40 5:31 | 3:12"."""
    parts = []
    for concept in record.main.side(side):
        counts = sorted(concept.member_label_counts.items(), key=lambda item: -item[1])
        parts.append(" ".join(f"{label}:{count}" for label, count in counts))
    return " \\| ".join(parts) or "–"


def job_seconds(record: RunResult) -> float:
    return float(sum(value for value in record.timings.values() if isinstance(value, int | float)))


def _f(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def summarise(sweep: Path, swept: float | None, elapsed: float | None) -> str:
    table = pd.read_csv(sweep / "trajectory" / "trajectory.csv")
    records = {position_of(record): record for record in (load_run(sweep / path) for path in table["path"])}
    methods = [column.split("/", 1)[1] for column in table.columns if column.startswith("mbsr_silb/")]
    lines = [
        "# MNIST 3/5/8 trajectory: measured results",
        "",
        f"Written by `experiments/mnist_835_trajectory/summarise.py` from the sweep `{sweep.name}`: "
        f"{len(table)} steps, each checkpoint (model A) against the final one (model B, step "
        f"{int(table['step_B'].iloc[0])}, validation accuracy {_f(table['val_acc_B'].iloc[0])}).",
        "",
    ]
    if swept is not None:
        per_job = [job_seconds(record) for record in records.values()]
        lines += [
            f"The sweep took **{swept:.0f} s** ({swept / 60:.1f} min) wall-clock"
            + (f", {elapsed:.0f} s with rdx-table, rdx-trajectory and this summary" if elapsed else "")
            + f"; the median job's stages add up to {statistics.median(per_job):.0f} s "
            f"(max {max(per_job):.0f} s).",
            "",
        ]
    lines += [
        "## Per step",
        "",
        "mixing: share of the side's RDX concept members outside their concept's majority digit.",
        "",
        "| step | epoch | val acc A | CKA | probe A | "
        + " | ".join(f"mBSR {m}" for m in methods)
        + " | RDX sizes A | mixing A | RDX sizes B | mixing B |",
        "|" + "---:|" * (5 + len(methods)) + "---|---:|---|---:|",
    ]
    for row in table.to_dict(orient="records"):
        record = records[int(row["step"])]
        scores = " | ".join(_f(row[f"mbsr_silb/{m}"]) for m in methods)
        lines.append(
            f"| {int(row['step'])} | {int(row['epoch'])} | {_f(row['val_acc_A'])} | {_f(row['cka'])} | "
            f"{_f(row['probe_acc_A'])} | {scores} | {row['concept_sizes_A']} | "
            f"{_f(mixing(record, 'A'), 2)} | {row['concept_sizes_B']} | {_f(mixing(record, 'B'), 2)} |"
        )
    lines += ["", "## RDX concepts' member digits per step", ""]
    lines += ["| step | side A | side B |", "|---:|---|---|"]
    for step, record in sorted(records.items()):
        lines.append(f"| {step} | {label_mix(record, 'A')} | {label_mix(record, 'B')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--swept", type=float, default=None, help="the sweep's wall-clock seconds")
    parser.add_argument("--elapsed", type=float, default=None, help="seconds with the summaries")
    parser.add_argument("--output", type=Path, default=HERE / "results.md")
    parser.add_argument("--figures", type=Path, default=HERE, help="where trajectory.png etc. are copied")
    args = parser.parse_args()
    args.output.write_text(summarise(args.sweep, args.swept, args.elapsed))
    for name in ("trajectory.png", "top_concepts.png"):
        shutil.copyfile(args.sweep / "trajectory" / name, args.figures / name)
    print(f"results: {args.output}; figures in {args.figures}")


if __name__ == "__main__":
    main()
