"""The run record: built from explanations, written and read back, members file included."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rdx.methods.explanation import Concept, Explanation
from rdx.record import (
    NO_CONCEPT,
    NULL_CONCEPT,
    SCHEMA_VERSION,
    MethodResult,
    RecordError,
    RunResult,
    load_run,
)
from rdx.sinks.run_dir import commit_run, write_members

LABELS = np.array([3, 3, 5, 5, 8, 8, 3, 5, 8, 8])


def scores(value: float) -> dict:
    side = {"A": value, "B": value, "mean": value}
    return {
        distance: {"bsr": side, "tsd": side, "eq": side, "grids": {"A": [{"bsr": value}], "B": []}}
        for distance in ("silb", "mned", "lsed")
    }


def explanation() -> Explanation:
    """Side A: concepts 1 and 2 and a null cluster; side B: one concept; some images in none."""
    concepts = {
        "A": [
            Concept(1, np.array([0, 1, 6]), np.array([6, 0]), 0.5),
            Concept(2, np.array([2, 3]), np.array([2, 3]), 1.5),
        ],
        "B": [Concept(1, np.array([4, 5, 8, 9]), np.array([9, 4, 5]), 2.0)],
    }
    null = {"A": Concept(0, np.array([4, 5]), np.array([4]), 0.1), "B": None}
    return Explanation("rdx", concepts, null, info={"gamma": 0.05})


def method(label: str = "rdx") -> MethodResult:
    return MethodResult.from_explanation(
        label, "rdx", explanation(), LABELS, metrics=scores(0.8), fit_s=0.25, metrics_s=0.1
    )


def record(**fields) -> RunResult:
    return RunResult(
        task_name="t",
        main_method="rdx",
        methods={"rdx": method(), "kmeans": method("kmeans")},
        models={"A": {"name": "a", "val_acc": 0.9}, "B": {"name": "b"}},
        dataset={"name": "d", "n_images": len(LABELS), "label_names": {"3": "three"}},
        run_key="k" * 64,
        **fields,
    )


def test_members_code_every_image_once_per_side():
    result = method()
    assert result.members["A"].tolist() == [1, 1, 2, 2, NULL_CONCEPT, NULL_CONCEPT, 1, -1, -1, -1]
    assert result.members["B"].tolist() == [NO_CONCEPT] * 4 + [1, 1, NO_CONCEPT, NO_CONCEPT, 1, 1]
    assert [(c.side, c.index, c.size) for c in result.concepts] == [("A", 1, 3), ("A", 2, 2), ("B", 1, 4)]
    assert result.null["A"].size == 2 and result.null["B"] is None
    first = result.concepts[0]
    assert first.grid_labels == [3, 3] and first.member_label_counts == {"3": 3}
    assert result.concepts[2].grid_label_counts == {"8": 3}  # images 9, 4, 5
    assert result.concept_members("B", 1).tolist() == [4, 5, 8, 9]


def test_overlapping_concepts_are_refused():
    shared = Explanation(
        "x",
        {
            "A": [
                Concept(1, np.array([0, 1]), np.array([0]), 1.0),
                Concept(2, np.array([1, 2]), np.array([2]), 1.0),
            ],
            "B": [],
        },
    )
    with pytest.raises(ValueError, match="concept 2 shares images"):
        MethodResult.from_explanation("x", "x", shared, LABELS, metrics=scores(0.5))


def test_the_explanation_is_rebuilt_from_the_record():
    original, rebuilt = explanation(), method().to_explanation()
    for side in "AB":
        for a, b in zip(original.concepts[side], rebuilt.concepts[side], strict=True):
            assert (a.index, a.score) == (b.index, b.score)
            assert np.array_equal(a.members, b.members) and np.array_equal(a.grid, b.grid)
    assert np.array_equal(rebuilt.null["A"].members, [4, 5]) and rebuilt.null["B"] is None


def test_json_round_trip_and_the_members_file(tmp_path):
    run = record()
    coordinates = {side: np.arange(2 * len(LABELS), dtype=float).reshape(-1, 2) / 3 for side in "AB"}
    run.members_file = write_members(run, tmp_path, LABELS, np.arange(100, 110), coordinates)
    path = commit_run(run, tmp_path, tmp_path / "index")
    assert json.loads((tmp_path / "index" / f"{'k' * 64}.json").read_text())["results"] == str(path.resolve())

    loaded = load_run(tmp_path, members=True)
    assert loaded == run and loaded.complete and loaded.schema_version == SCHEMA_VERSION
    for label in run.methods:
        for side in "AB":
            assert np.array_equal(loaded.methods[label].members[side], run.methods[label].members[side])
    table = pd.read_csv(tmp_path / "members.csv")  # one line with pandas
    assert list(table.columns[:8]) == [
        "image",
        "source_index",
        "label",
        "pca_A_1",
        "pca_A_2",
        "pca_B_1",
        "pca_B_2",
        "rdx/A",
    ]
    assert table["source_index"].tolist() == list(range(100, 110))
    np.testing.assert_allclose(table[["pca_B_1", "pca_B_2"]].to_numpy(), coordinates["B"], rtol=1e-6)
    assert table.loc[table["rdx/B"] == 1, "image"].tolist() == [4, 5, 8, 9]
    assert loaded.label_names == {3: "three"}
    assert loaded.main.mbsr == 0.8 and loaded.objective() == 0.8


def test_wandb_mapping_and_console_summary_come_from_the_record():
    run = record(timings={"data_s": 1.0})
    metrics = run.wandb_metrics()
    assert metrics["time/data_s"] == 1.0 and metrics["model_A/val_acc"] == 0.9
    assert metrics["rdx/bsr_silb/mean"] == 0.8 and metrics["kmeans/eq_lsed/B"] == 0.8
    summary = run.wandb_summary()
    assert summary["rdx/mBSR_silb"] == 0.8 and summary["rdx/grids_A/grids"] == 2
    lines = run.console_lines()
    assert lines[0] == "model A = a (None, val acc 0.9000)"
    assert "rdx side B concept 1: 4 images, score 2.000, grid labels {'8': 3}" in lines


def test_an_old_results_file_is_read_in_the_new_layout(tmp_path):
    old = {
        "task_name": "t",
        "main_method": "rdx",
        "methods": {
            "rdx": {
                "name": "rdx",
                "label": "rdx",
                "fit_s": 1.0,
                "metrics": scores(0.7),
                "explanation": {
                    "sides": {
                        "A": {
                            "concepts": [{"index": 1, "size": 4, "score": 1.0, "grid": [1, 2]}],
                            "null": None,
                        },
                        "B": {"concepts": [], "null": None},
                    },
                    "info": {"gamma": 0.1},
                },
            }
        },
        "complete": True,
    }
    (tmp_path / "results.json").write_text(json.dumps(old))
    loaded = load_run(tmp_path)
    assert loaded.members_file is None  # read in the new layout; it never had a members file
    assert [(c.side, c.index, c.size, c.grid) for c in loaded.main.concepts] == [("A", 1, 4, [1, 2])]
    assert loaded.main.info == {"gamma": 0.1} and loaded.main.mbsr == 0.7
    with pytest.raises(RecordError, match="no members file"):
        load_run(tmp_path, members=True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read it as JSON"),
        ("[1, 2]", "does not hold a JSON object"),
        ('{"task_name": "t", "methods": {"m": {}}}', "missing key 'main_method'"),
        ('{"task_name": "t", "main_method": "m", "methods": {}}', "'methods' is empty"),
        (
            '{"schema_version": 99, "task_name": "t", "main_method": "m", "methods": {"m": {}}}',
            "schema_version 99",
        ),
    ],
)
def test_a_file_that_is_not_a_record_is_named(tmp_path, content, message):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(RecordError, match=message) as raised:
        load_run(path)
    assert str(path) in str(raised.value)
