"""Agreement between a run's methods where it shows: the record (run and per method), its JSON, the W&B
metrics, rdx-table's ``agreement`` table and the agreement figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from rdx.methods.explanation import Concept, Explanation
from rdx.pipeline import method_agreement
from rdx.record import MethodResult, RunResult
from rdx.report.table import Run, benchmark_tables
from rdx.viz.agreement import agreement_figure, agreement_matrix

N = 40
LABELS = np.arange(N) % 4


def scores() -> dict:
    side = {"A": 0.5, "B": 0.5, "mean": 0.5}
    return {
        distance: {"bsr": side, "tsd": side, "eq": side, "grids": {"A": [], "B": []}}
        for distance in ("silb", "mned", "lsed")
    }


def concept(index: int, members: range) -> Concept:
    members = np.asarray(members)
    return Concept(index, members, members[:4], 1.0)


def method(label: str, concepts: dict[str, list[Concept]]) -> MethodResult:
    return MethodResult.from_explanation(label, label, Explanation(label, concepts), LABELS, metrics=scores())


def record(*methods: MethodResult) -> RunResult:
    return RunResult(task_name="t", main_method="rdx", methods={m.label: m for m in methods})


@pytest.fixture
def three_methods() -> RunResult:
    """kmeans finds rdx's side-A concept 1 exactly and misses concept 2, shows nothing on side B; pca
    half-overlaps rdx's side-B concept."""
    rdx = method(
        "rdx", {"A": [concept(1, range(0, 10)), concept(2, range(10, 20))], "B": [concept(1, range(20, 30))]}
    )
    kmeans = method("kmeans", {"A": [concept(1, range(0, 10)), concept(2, range(30, 40))], "B": []})
    pca = method("pca", {"A": [concept(1, range(35, 40))], "B": [concept(1, range(25, 35))]})
    return record(rdx, kmeans, pca)


def test_the_run_and_each_method_get_their_agreement(three_methods):
    run = three_methods
    method_agreement(run)
    assert run.agreement["methods"] == ["rdx", "kmeans", "pca"]
    pairs = {(p["first"], p["second"]): p for p in run.agreement["pairs"]["A"]}
    assert pairs["rdx", "kmeans"]["mean_jaccard"] == pytest.approx(0.5)  # 1.0 and 0.0
    assert [m["jaccard"] for m in pairs["rdx", "kmeans"]["matches"]] == [1.0, 0.0]
    assert pairs["kmeans", "pca"]["mean_jaccard"] == pytest.approx(5 / 10)  # 35..39 within 30..39
    side_b = {(p["first"], p["second"]): p["mean_jaccard"] for p in run.agreement["pairs"]["B"]}
    assert side_b["rdx", "kmeans"] is None  # kmeans shows nothing on side B: NaN stored as None
    assert side_b["rdx", "pca"] == pytest.approx(5 / 15)
    assert run.methods["rdx"].agreement is None
    assert run.methods["kmeans"].agreement == {"with": "rdx", "A": 0.5, "B": None, "mean": 0.5}
    assert run.methods["pca"].agreement["mean"] == pytest.approx(np.mean([0.0, 5 / 15]))
    shared_a = [(c["method"], c["index"]) for c in run.agreement["shared"]["A"]]
    assert ("rdx", 1) in shared_a and ("kmeans", 1) in shared_a and ("rdx", 2) not in shared_a


def test_agreement_survives_json_without_nan_and_reaches_wandb_and_the_table(three_methods, tmp_path: Path):
    run = three_methods
    method_agreement(run)
    data = json.loads(json.dumps(run.to_json()))
    for value in (data["agreement"], *(m.get("agreement") for m in data["methods"].values())):
        json.dumps(value, allow_nan=False)  # None, never NaN
    assert data["agreement"] == run.agreement
    assert data["methods"]["kmeans"]["agreement"] == run.methods["kmeans"].agreement
    assert MethodResult.from_json(data["methods"]["pca"]).agreement == run.methods["pca"].agreement
    metrics = run.wandb_metrics()
    assert metrics["kmeans/agreement_with_rdx"] == pytest.approx(0.5)
    assert "rdx/agreement_with_rdx" not in metrics
    tables = benchmark_tables([Run(tmp_path, 0.0, run, "t")])
    table = tables["agreement"]
    assert np.isnan(table.loc["rdx", "t"]) and table.loc["kmeans", "t"] == pytest.approx(0.5)


def test_one_method_has_no_agreement_and_no_table():
    run = record(method("rdx", {"A": [concept(1, range(0, 10))], "B": []}))
    method_agreement(run)
    assert run.agreement is None and run.methods["rdx"].agreement is None
    assert "agreement" not in benchmark_tables([Run(Path("."), 0.0, run, "t")])


def test_the_figure_shows_the_symmetric_matrix(three_methods):
    run = three_methods
    method_agreement(run)
    methods, matrix = agreement_matrix(run.agreement, "A")
    assert methods == ["rdx", "kmeans", "pca"]
    assert np.allclose(matrix, matrix.T, equal_nan=True) and np.all(np.diag(matrix) == 1)
    assert matrix[0, 1] == pytest.approx(0.5)
    _, matrix_b = agreement_matrix(run.agreement, "B")
    assert np.isnan(matrix_b[0, 1])
    figure = agreement_figure(run.agreement)
    assert isinstance(figure, Figure) and len(figure.axes) == 3  # two heat maps and the colour bar
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts.count("0.50") >= 2 and "–" not in texts
    assert "–" in [t.get_text() for t in figure.axes[1].texts]
