"""scripts/bench_rdx.py: its plain reference (tests/plain_rdx.py) agrees exactly with the project's RDX; the
CLI writes a table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from rdx.methods import RDX

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_rdx.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_rdx", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_pair_is_deterministic_float32_with_a_planted_difference(bench):
    X_A, X_B, truth_A, truth_B = bench.make_pair(300, 16, seed=3, return_truth=True)
    assert X_A.shape == X_B.shape == (300, 16) and X_A.dtype == X_B.dtype == np.float32
    again = bench.make_pair(300, 16, seed=3)
    np.testing.assert_array_equal(X_A, again[0])
    np.testing.assert_array_equal(X_B, again[1])
    assert not np.array_equal(X_A, bench.make_pair(300, 16, seed=4)[0])
    assert len(np.unique(truth_A)) == 10 and len(np.unique(truth_B)) == 10  # two merged, one split
    assert np.all(truth_B[truth_A == 1] == 0)


def test_make_pair_plants_as_many_merges_and_splits_as_asked(bench):
    X_A, X_B, truth_A, truth_B = bench.make_pair(
        800, 8, seed=1, n_clusters=8, merges=2, splits=2, return_truth=True
    )
    for pair in range(2):  # clusters 2p + 1 join 2p in B
        assert np.all(truth_B[truth_A == 2 * pair + 1] == 2 * pair)
    for split in range(2):  # clusters 4 and 5 are halved in B, into themselves and 8 + split
        parts = np.unique(truth_B[truth_A == 4 + split], return_counts=True)
        assert parts[0].tolist() == [4 + split, 8 + split] and abs(parts[1][0] - parts[1][1]) <= 1
    untouched = truth_A >= 6
    np.testing.assert_array_equal(truth_B[untouched], truth_A[untouched])
    # merged clusters share B's centre: their B features are as close as within-cluster ones
    centre = [X_B[truth_A == c].mean(axis=0) for c in (0, 1, 6)]
    assert np.linalg.norm(centre[0] - centre[1]) < 0.5 * np.linalg.norm(centre[0] - centre[2])
    with pytest.raises(ValueError, match="n_clusters"):
        bench.make_pair(100, 4, n_clusters=5, merges=2, splits=2)


def test_plain_reference_agrees_exactly_with_project_rdx(bench):
    X_A, X_B = bench.make_pair(300, 16, seed=0)
    params = {"n_concepts": 5, "gamma": 0.05, "beta": 5.0, "random_state": 0}
    model = RDX(**params).fit(X_A, X_B)
    plain = bench.plain_rdx(X_A, X_B, **params)
    project_grids = bench.project_grids(model)
    for direction in ("10", "01"):
        ours, theirs = model.labels_[direction], plain["labels"][direction]
        assert adjusted_rand_score(ours, theirs) == 1.0
        np.testing.assert_array_equal(ours, theirs)  # same ordering by mean affinity, null cluster 0
        # Grids: the project's must be one of the plain reference's best blocks. Small clusters make the
        # anchors' scores tie exactly (every block is the whole cluster), and rounding then picks one.
        assert len(project_grids[direction]) == len(plain["grid_ties"][direction]) == 6
        for grid, tied_best in zip(project_grids[direction], plain["grid_ties"][direction], strict=True):
            assert any(np.array_equal(grid, block) for block in tied_best), (direction, grid, tied_best)
        np.testing.assert_allclose(
            model.cluster_affinity_[direction], plain["cluster_affinity"][direction], rtol=1e-5
        )


def test_cli_writes_json_and_table(bench, tmp_path, capsys):
    out = tmp_path / "bench" / "rdx_bench.json"
    bench.main(["--sizes", "200", "--dims", "8", "--out", str(out)])
    report = json.loads(out.read_text())
    header = report["markdown"].splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == bench.COLUMNS
    assert report["columns"] == bench.COLUMNS
    (row,) = report["rows"]
    assert (row["n"], row["d"]) == (200, 8)
    for impl in ("a", "b"):
        run = row[impl]
        assert run["status"] == "ok", run
        assert run["time_s"] > 0 and run["peak_rss_kb"] >= run["baseline_rss_kb"] > 0
    assert row["agreement"]["ari_10"] == row["agreement"]["ari_01"] == 1.0
    assert row["agreement"]["grids_equivalent_10"] and row["agreement"]["grids_equivalent_01"]
    printed = capsys.readouterr().out
    assert header in printed and "[2/2] N=200 d=8 impl=b" in printed and "BLAS" in printed


def test_floor_is_timed_beside_repeated_fits_and_tabled(bench, tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench.main(
        ["--sizes", "300", "--dims", "16", "--floor", "--repeats", "3", "--clusters", "6", "--out", str(out)]
    )
    report = json.loads(out.read_text())
    assert report["settings"]["floor"] and report["settings"]["repeats"] == 3
    assert report["settings"]["clusters"] == 6
    (row,) = report["rows"]
    a = row["a"]
    assert len(a["fits"]) == len(a["floors"]) == 3
    assert a["time_s"] == np.median([fit["wall_s"] for fit in a["fits"]])
    floor = a["floor"]
    for one in a["floors"]:  # each repeat: the products and the sorts alone; the table: medians
        assert one["floor_s"] == pytest.approx(one["products_s"] + one["sorts_s"])
    assert floor["floor_s"] == np.median([one["floor_s"] for one in a["floors"]])
    assert 0 < floor["products_s"] and 0 < floor["sorts_s"] and floor["floor_s"] < a["time_s"]
    header, _, cells = report["floor_markdown"].splitlines()
    assert [c.strip() for c in header.strip("|").split("|")] == bench.FLOOR_COLUMNS
    cells = [c.strip() for c in cells.strip("|").split("|")]
    assert cells[:2] == ["300", "16"] and cells[8] == f"{a['time_s'] / floor['floor_s']:.1f}×"
    # the method's floor: the floor plus the parts any exact RDX with these labels must do, timed alone
    bound = a["method_floor"]
    parts = [
        "rank_inversion_s",
        "difference_formula_s",
        "affinity_exp_s",
        "eigensolver_products_s",
        "k_means_s",
    ]
    assert all(bound[part] > 0 for part in parts) and bound["floor_s"] == floor["floor_s"]
    assert bound["bound_s"] == pytest.approx(floor["floor_s"] + sum(bound[part] for part in parts))
    assert floor["floor_s"] < bound["bound_s"] < a["time_s"]  # a lower bound of the fit, above the floor
    assert cells[9:11] == [f"{bound['bound_s']:.2f}", f"{bound['bound_over_floor']:.2f}×"]
    assert report["floor_markdown"] in capsys.readouterr().out
    # the data: six clusters of A, B merges two and splits one
    _, _, truth_A, truth_B = bench.make_pair(300, 16, seed=0, n_clusters=6, return_truth=True)
    assert len(np.unique(truth_A)) == len(np.unique(truth_B)) == 6


def test_timeout_and_skipped_plain_run_are_reported_not_raised(bench, tmp_path):
    out = tmp_path / "bench.json"
    bench.main(
        ["--sizes", "200", "--dims", "8", "--max-plain-n", "100", "--timeout", "0.2", "--out", str(out)]
    )
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["a"]["status"] == "timeout" and row["b"] is None
    cells = [c.strip() for c in report["markdown"].splitlines()[2].strip("|").split("|")]
    assert cells[2] == "timeout" and cells[3] == bench.DASH and cells[-1] == bench.DASH


def test_a_worker_that_dies_is_reported_as_failed(bench, tmp_path):
    args = bench.parse_args(["--timeout", "60"])
    run = bench.run_one("no-such-implementation", 50, 4, args, tmp_path)  # the worker exits with an error
    assert run["status"] == "failed" and "exit 2" in run["reason"]
    row = {"n": 50, "d": 4, "a": run, "b": None}
    assert bench.table_row(row)[2] == "failed"


def test_plain_reference_is_the_tests_one_and_breaks_grid_ties_by_member_order(bench):
    plain = bench.plain_reference()
    assert Path(plain.__file__) == Path(__file__).resolve().parent / "plain_rdx.py"
    # 4 points on a line, one cluster smaller than the grid: every anchor's block is the whole cluster
    X = np.array([[0.0], [1.0], [3.0], [7.0]])
    affinity = np.random.default_rng(0).uniform(0.5, 2.0, size=(4, 4))
    members = np.array([0, 1, 2, 3])
    scored = plain.neighbourhood_scores(members, X, affinity, 9, distances=plain.distances(X))
    ties = plain.tied_best(scored, bench.TIE_RTOL)
    assert ties[0] == plain.tied_best(scored)[0] == [0, 1, 2, 3] and len(ties) == 4
    assert [block[0] for block in ties] == [0, 1, 2, 3]
