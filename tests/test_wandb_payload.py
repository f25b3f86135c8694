"""What ``rdx.sinks.wandb_logger.log_comparison`` hands to W&B, read back from a real offline run.

A hand-made two-method record with distinct scores everywhere (and a grid image of its own size for
every concept) is logged offline; the test then reads what W&B wrote: the concepts table from
``files/media/table/*.table.json`` and its staged artifact copy (which holds the image cells), the image
files, and the history rows and summary from the run's ``run-<id>.wandb`` file. W&B (0.31, wandb-core)
writes no ``wandb-summary.json`` or history file for an offline run and ships no reader for its run
file, so :func:`wandb_run_records` reads it: the LevelDB log format (32 KiB blocks, 7-byte record
headers) after a 7-byte W&B header, each record a ``wandb.proto`` ``Record`` message, as ``wandb sync``
uploads it. The service writes that file after ``finish`` returns, so the reader waits for the run's
exit record.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rdx.methods.explanation import Concept, Explanation
from rdx.record import DISTANCES, SCORE_METRICS, SCORE_SIDES, MethodResult, RunResult
from rdx.sinks.wandb_logger import log_comparison
from rdx.viz.comparison import grid_key

# image i has label LABELS[i]
LABELS = np.array([3, 3, 3, 5, 5, 5, 8, 8, 8, 3, 5, 8])
METHOD_OFFSET = {"rdx": 0.0, "kmeans": 0.3}


def score_value(label: str, distance: str, metric: str, side: str) -> float:
    """A different value for every method, distance, metric and side: rdx silb bsr A = 0.5, B = 0.501,
    mean = 0.502; kmeans adds 0.3; mned adds 0.1, lsed 0.2; tsd adds 0.01, eq 0.02."""
    return round(
        0.5
        + METHOD_OFFSET[label]
        + 0.1 * DISTANCES.index(distance)
        + 0.01 * SCORE_METRICS.index(metric)
        + 0.001 * SCORE_SIDES.index(side),
        6,
    )


def scores(label: str) -> dict[str, Any]:
    return {
        distance: {
            **{
                metric: {side: score_value(label, distance, metric, side) for side in SCORE_SIDES}
                for metric in SCORE_METRICS
            },
            "grids": {"A": [], "B": []},
        }
        for distance in DISTANCES
    }


def method(label: str, concepts: dict[str, list[tuple[list[int], list[int]]]], **fields: Any) -> MethodResult:
    """A method from (members, grid) per concept and side; scores 1.0, 2.0, ... in order."""
    explanation = Explanation(
        label,
        {
            side: [
                Concept(i + 1, np.array(members), np.array(grid), float(i + 1))
                for i, (members, grid) in enumerate(entries)
            ]
            for side, entries in concepts.items()
        },
    )
    return MethodResult.from_explanation(label, label, explanation, LABELS, metrics=scores(label), **fields)


def run_record() -> RunResult:
    rdx = method(
        "rdx",
        {
            # A1: grid labels 3,3,5,5 (two labels, majority 1/2); A2: 8,8,8 (one label)
            "A": [([0, 1, 3, 4], [0, 1, 3, 4]), ([6, 7, 8], [6, 7, 8])],
            # B1: grid labels 3,5,3,3 (two labels, majority 3/4); 5 members
            "B": [([0, 2, 5, 9, 10], [2, 5, 9, 0])],
        },
        recovery={"score": 0.75, "A": 1.0, "B": 0.5},
    )
    kmeans = method(
        "kmeans",
        {
            # A1: 3,3 (one label)
            "A": [([0, 1, 2, 9], [0, 1])],
            # B1: 5,5,5; B2: 8,8; B3: 8,8,5 (two labels, majority 2/3 -> dominated)
            "B": [([3, 4, 5], [3, 4, 5]), ([6, 7], [6, 7]), ([8, 10, 11], [8, 11, 10])],
        },
    )
    return RunResult(
        task_name="payload",
        main_method="rdx",
        methods={"rdx": rdx, "kmeans": kmeans},
        models={"A": {"name": "a", "val_acc": 0.91}, "B": {"name": "b", "val_acc": 0.97}},
        dataset={"name": "d", "n_images": len(LABELS)},
        representations={"cka": 0.42, "probe": {"accuracy_A": 0.88, "accuracy_B": 0.93}},
        planted={"separability": {"A": {"mean": 0.61}, "B": {"mean": 0.99}}},
        timings={"data_s": 1.5, "rdx_s": 2.25},
    )


# ------------------------------------------------------------------------------------------------
# reading the offline run
# ------------------------------------------------------------------------------------------------


def wandb_run_records(run_file: Path) -> list[Any]:
    """The ``wandb.proto`` records of an offline run file, in the order they were written."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert data[:4] == b":W&B", f"{run_file} is not a W&B run file (format changed?)"
    block, position, chunks, messages = 32768, 7, b"", []
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]  # 1 full, 2 first, 3 middle, 4 last piece of a record
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        chunks = chunk if kind in (1, 2) else chunks + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunks)
            messages.append(record)
    return messages


def items(entries: Any) -> dict[str, Any]:
    return {entry.key or "/".join(entry.nested_key): json.loads(entry.value_json) for entry in entries}


def read_offline_run(run_dir: Path, timeout_s: float = 60.0) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The history rows and the final summary (every summary update applied in order) of a run."""
    (run_file,) = run_dir.glob("run-*.wandb")
    deadline = time.monotonic() + timeout_s
    records = wandb_run_records(run_file)
    while not any(record.WhichOneof("record_type") == "exit" for record in records):
        assert time.monotonic() < deadline, f"W&B did not finish writing {run_file} in {timeout_s} s"
        time.sleep(0.2)
        records = wandb_run_records(run_file)
    history, summary = [], {}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append(items(record.history.item))
        elif kind == "summary":
            summary.update(items(record.summary.update))
    return history, summary


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> dict[str, Any]:
    """One offline log_comparison of the hand-made record, read back."""
    out = tmp_path_factory.mktemp("wandb_payload")
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_DIR", "WANDB_MODE", "WANDB_DATA_DIR"):
            patch.delenv(variable, raising=False)
        patch.setenv("WANDB_CONFIG_DIR", str(out / "config"))
        patch.setenv("WANDB_CACHE_DIR", str(out / "cache"))
        record = run_record()
        figures = {"summary": np.full((8, 8, 3), 200, dtype=np.uint8)}
        for row, (method_result, concept) in enumerate(record.concept_rows()):
            # the grid of table row r is (4 + r) high and (4 + 2r) wide: each cell names its figure
            figures[grid_key(method_result.label, concept.side, concept.index)] = np.full(
                (4 + row, 4 + 2 * row, 3), 30 * row, dtype=np.uint8
            )
        settings = {"mode": "offline", "project": "rdx-test", "group": "g", "tags": ["t"]}
        run_dir = log_comparison(record, figures, settings, {"seed": 0}, out)
    history, summary = read_offline_run(run_dir)
    (table_file,) = (run_dir / "files" / "media" / "table").glob("concepts_*.table.json")
    staged = [path.read_bytes() for path in (out / "wandb" / "data" / "artifacts" / "staging").iterdir()]
    staged_tables = [json.loads(data) for data in staged if data.startswith(b"{")]
    return {
        "staged_tables": [table for table in staged_tables if table.get("_type") == "table"],
        "record": record,
        "figures": figures,
        "run_dir": run_dir,
        "history": history,
        "summary": summary,
        "table": json.loads(table_file.read_text()),
    }


# ------------------------------------------------------------------------------------------------
# the payload
# ------------------------------------------------------------------------------------------------


def test_the_summary_holds_the_records_values(logged):
    summary, record = logged["summary"], logged["record"]
    # by hand: mBSR = the silb bsr "mean" entry; rdx 0.502, kmeans 0.802
    assert summary["rdx/mBSR_silb"] == pytest.approx(0.502)
    assert summary["kmeans/mBSR_silb"] == pytest.approx(0.802)
    assert summary["rdx/recovery"] == 0.75 and "kmeans/recovery" not in summary
    assert summary["n_images"] == 12
    # grid composition, by hand from the grids' labels (run_record's comments)
    expected_composition = {
        "rdx/grids_A": {
            "grids": 2,
            "dominated_by_one_label": 1,
            "mixing_labels": 1,
            "mean_majority_fraction": 0.75,
        },
        "rdx/grids_B": {
            "grids": 1,
            "dominated_by_one_label": 1,
            "mixing_labels": 1,
            "mean_majority_fraction": 0.75,
        },
        "kmeans/grids_A": {
            "grids": 1,
            "dominated_by_one_label": 1,
            "mixing_labels": 0,
            "mean_majority_fraction": 1.0,
        },
        "kmeans/grids_B": {
            "grids": 3,
            "dominated_by_one_label": 3,
            "mixing_labels": 1,
            "mean_majority_fraction": (1 + 1 + 2 / 3) / 3,
        },
    }
    for prefix, values in expected_composition.items():
        for key, value in values.items():
            assert summary[f"{prefix}/{key}"] == pytest.approx(value), f"{prefix}/{key}"
    # and every summary value of the record, exactly
    for key, value in record.wandb_summary().items():
        assert summary[key] == pytest.approx(value), key


def test_the_metrics_row_holds_every_score(logged):
    record = logged["record"]
    expected = record.wandb_metrics()
    rows = [row for row in logged["history"] if "rdx/bsr_silb/A" in row]
    assert len(rows) == 1, "one history row of metrics"
    (row,) = rows
    for label in ("rdx", "kmeans"):
        for distance in DISTANCES:
            for metric in SCORE_METRICS:
                for side in SCORE_SIDES:
                    key = f"{label}/{metric}_{distance}/{side}"
                    assert row[key] == pytest.approx(score_value(label, distance, metric, side)), key
    assert row["rdx/bsr_silb/A"] == pytest.approx(0.5) and row["kmeans/bsr_mned/B"] == pytest.approx(0.901)
    assert row["rdx/recovery/score"] == 0.75 and (row["rdx/recovery/A"], row["rdx/recovery/B"]) == (1.0, 0.5)
    assert (row["model_A/val_acc"], row["model_B/val_acc"]) == (0.91, 0.97)
    assert row["representations/cka"] == 0.42 and row["representations/probe_accuracy_B"] == 0.93
    assert row["planted/pair_separability/A"] == 0.61 and row["time/rdx_s"] == 2.25
    assert {key: row[key] for key in expected} == pytest.approx(expected)


def test_the_concepts_table_has_one_row_per_concept(logged):
    table = logged["table"]
    assert table["columns"] == [
        "method", "side", "concept", "size", "score", "p", "q", "stability", "grid_labels", "grid"
    ]  # fmt: skip
    rows = table["data"]
    # method, side, concept, size, score, grid label counts (most frequent first), by hand; this
    # record has no significance: p, q and stability are empty
    assert all(row[5:8] == [None, None, None] for row in rows)
    rows = [row[:5] + row[8:] for row in rows]
    assert [row[:6] for row in rows] == [
        ["rdx", "A", 1, 4, 1.0, "3:2 5:2"],
        ["rdx", "A", 2, 3, 2.0, "8:3"],
        ["rdx", "B", 1, 5, 1.0, "3:3 5:1"],
        ["kmeans", "A", 1, 4, 1.0, "3:2"],
        ["kmeans", "B", 1, 3, 1.0, "5:3"],
        ["kmeans", "B", 2, 2, 2.0, "8:2"],
        ["kmeans", "B", 3, 3, 3.0, "8:2 5:1"],
    ]
    # the image cells travel in the staged artifact copy of the table: row r holds figure r
    assert logged["staged_tables"]
    for staged in logged["staged_tables"]:
        assert [row[:5] + row[8:9] for row in staged["data"]] == [row[:6] for row in rows]
        cells = [row[9] for row in staged["data"]]
        assert all(cell["_type"] == "image-file" for cell in cells)
        assert [(cell["height"], cell["width"]) for cell in cells] == [(4 + r, 4 + 2 * r) for r in range(7)]


def test_every_figure_is_logged_as_an_image_under_its_key(logged):
    images = {}
    for row in logged["history"]:
        for key, value in row.items():
            if key.endswith("/_type") and value == "image-file":
                name = key.removesuffix("/_type")
                images[name] = (row[f"{name}/path"], row[f"{name}/height"], row[f"{name}/width"])
    assert sorted(images) == sorted(logged["figures"])
    for name, (path, height, width) in images.items():
        assert (height, width) == logged["figures"][name].shape[:2], name
        assert (logged["run_dir"] / "files" / path).is_file()
