"""rdx-table: benchmark tables from fake results.json files with known numbers (no training)."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rdx.cli.table import main
from rdx.report.table import (
    RunsError,
    benchmark_tables,
    dataframe_to_markdown,
    find_runs,
    grid_bsr_values,
    load_runs,
)

NAN = float("nan")


def side_scores(a: float, b: float) -> dict[str, float]:
    present = [v for v in (a, b) if not math.isnan(v)]
    return {"A": a, "B": b, "mean": float(np.mean(present)) if present else NAN}


def method_entry(
    label: str,
    bsr: tuple[float, float],
    tsd: tuple[float, float] = (1.0, 1.0),
    eq: tuple[float, float] = (0.1, 0.1),
    recovery: float | None = None,
) -> dict:
    """A method's results entry; MNED/LSED BSR are the SILB ones minus 0.1 and 0.2."""
    metrics = {}
    for distance, shift in (("silb", 0.0), ("mned", 0.1), ("lsed", 0.2)):
        bsr_here = tuple(v - shift for v in bsr)
        metrics[distance] = {
            "bsr": side_scores(*bsr_here),
            "tsd": side_scores(*tsd),
            "eq": side_scores(*eq),
            # one grid per side with a value: the grid BSR equals the side's BSR
            "grids": {
                side: [] if math.isnan(v) else [{"bsr": v, "tsd": 1.0, "eq": 0.0}]
                for side, v in zip("AB", bsr_here, strict=True)
            },
        }
    entry = {"name": label, "label": label, "fit_s": 0.5, "metrics": metrics}
    if recovery is not None:
        entry["recovery"] = {"score": recovery, "A": recovery, "B": None}
    return entry


def results(task: str, methods: list[dict], main_method: str = "rdx", **extra) -> dict:
    return {
        "task_name": task,
        "models": {"A": {"name": "mA", "val_acc": 0.9}, "B": {"name": "mB", "val_acc": 0.95}},
        "dataset": {"name": "mnist", "n_images": 90},
        "main_method": main_method,
        "methods": {m["label"]: m for m in methods},
        **extra,
    }


def write_run(folder: Path, data: dict, mtime: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    path.write_text(json.dumps(data))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def sweep(tmp_path) -> Path:
    """A multirun-like folder: three comparisons; pca is missing from t_c; kmeans has a side without
    concepts in t_a."""
    root = tmp_path / "sweep"
    write_run(
        root / "0",
        results(
            "t_b",
            [method_entry("kmeans", (0.6, 0.4)), method_entry("rdx", (0.9, 0.7), eq=(0.0, 0.1))],
        ),
    )
    write_run(
        root / "1",
        results(
            "t_a",
            [
                method_entry("rdx", (0.8, 0.6)),
                method_entry("kmeans", (0.7, NAN)),
                method_entry("pca", (0.9, 0.9)),
            ],
        ),
    )
    write_run(
        root / "2" / "nested",
        results("t_c", [method_entry("rdx", (1.0, 0.8)), method_entry("kmeans", (0.5, 0.5))]),
    )
    return root


def run_cli(*args: str) -> None:
    main([*map(str, args), "--wandb", "disabled"])


def markdown_section(text: str, heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the table under ``## heading``."""
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_tables_have_the_known_cells_and_means(sweep):
    run_cli(sweep)
    out = sweep / "table"
    table = pd.read_csv(out / "mbsr_silb.csv", index_col="method")
    assert list(table.columns) == ["t_a", "t_b", "t_c", "mean"]  # sorted, then the mean
    assert list(table.index) == ["rdx", "kmeans", "pca"]  # main method first, then order of appearance
    assert table.loc["rdx"].tolist() == pytest.approx([0.7, 0.8, 0.9, 0.8])
    # kmeans t_a: side B has no concepts, so mBSR is side A's 0.7
    assert table.loc["kmeans"].tolist() == pytest.approx([0.7, 0.5, 0.5, 1.7 / 3])
    assert table.loc["pca", "t_a"] == pytest.approx(0.9)
    assert np.isnan(table.loc["pca", "t_c"]) and table.loc["pca", "mean"] == pytest.approx(0.9)
    # NaN cells are empty in the CSV text
    assert "pca,0.9,,,0.9" in (out / "mbsr_silb.csv").read_text()

    mned = pd.read_csv(out / "mbsr_mned.csv", index_col="method")
    lsed = pd.read_csv(out / "mbsr_lsed.csv", index_col="method")
    assert mned.loc["rdx", "t_b"] == pytest.approx(0.7) and lsed.loc["rdx", "t_b"] == pytest.approx(0.6)
    side_a = pd.read_csv(out / "bsr_a_silb.csv", index_col="method")
    side_b = pd.read_csv(out / "bsr_b_silb.csv", index_col="method")
    assert side_a.loc["rdx"].tolist() == pytest.approx([0.8, 0.9, 1.0, 0.9])
    assert side_b.loc["kmeans", "t_b"] == pytest.approx(0.4) and np.isnan(side_b.loc["kmeans", "t_a"])
    eq = pd.read_csv(out / "eq_silb.csv", index_col="method")
    assert eq.loc["rdx", "t_b"] == pytest.approx(0.05)
    tsd = pd.read_csv(out / "tsd_silb.csv", index_col="method")
    assert tsd.loc["rdx", "mean"] == pytest.approx(1.0)
    assert not (out / "recovery.csv").exists()  # no run reports a recovery score

    runs = pd.read_csv(out / "runs.csv")
    assert runs["task_name"].tolist() == ["t_a", "t_b", "t_c"]
    assert runs["path"].tolist() == ["1/results.json", "0/results.json", "2/nested/results.json"]
    assert runs.loc[0, "methods"] == "rdx kmeans pca"
    assert runs["n_images"].tolist() == [90, 90, 90] and runs["val_acc_B"].tolist() == [0.95] * 3
    assert "cka" not in runs.columns


def test_markdown_marks_the_best_per_column_and_shows_missing_values(sweep):
    run_cli(sweep)
    text = (sweep / "table" / "table.md").read_text()
    for heading in ("mBSR (SILB)", "mBSR (MNED)", "mBSR (LSED)", "BSR (SILB), side A", "Runs"):
        assert f"## {heading}\n" in text
    rows = markdown_section(text, "mBSR (SILB)")
    assert rows[0] == ["method", "t_a", "t_b", "t_c", "mean"]
    assert rows[2] == ["rdx", "0.700", "**0.800**", "**0.900**", "0.800"]
    assert rows[3] == ["kmeans", "0.700", "0.500", "0.500", "0.567"]
    assert rows[4] == ["pca", "**0.900**", "–", "–", "**0.900**"]
    # the tie rate: lower is better
    eq_rows = markdown_section(text, "Tie rate EQ (SILB), mean of both sides")
    assert eq_rows[2][2] == "**0.050**" and eq_rows[3][2] == "0.100"


def test_markdown_formatter_alone():
    table = pd.DataFrame(
        {"x|y": [0.12341, 0.12339, NAN], "z": [NAN, NAN, NAN]}, index=pd.Index(["a", "b", "c"], name="method")
    )
    text = dataframe_to_markdown(table, digits=3, higher_is_better=True)
    assert text.splitlines() == [
        "| method | x\\|y | z |",
        "|---|---:|---:|",
        "| a | **0.123** | – |",
        "| b | **0.123** | – |",
        "| c | – | – |",
    ]


def test_newest_run_of_a_task_name_wins_with_a_warning(sweep, caplog):
    older = write_run(sweep / "3", results("t_a", [method_entry("rdx", (0.2, 0.2))]), mtime=1_000_000)
    newer = write_run(sweep / "4", results("t_a", [method_entry("rdx", (0.4, 0.4))]), mtime=2_000_000_000)
    first = sweep / "1" / "results.json"
    os.utime(first, (1_500_000_000, 1_500_000_000))
    with caplog.at_level(logging.WARNING, logger="rdx.report.table"):
        run_cli(sweep)
    table = pd.read_csv(sweep / "table" / "mbsr_silb.csv", index_col="method")
    assert table.loc["rdx", "t_a"] == pytest.approx(0.4)
    assert "pca" not in table.index  # pca only ran in the replaced t_a run
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(older) in warnings and str(newer) in warnings and str(first) in warnings
    runs = pd.read_csv(sweep / "table" / "runs.csv")
    assert runs.loc[runs["task_name"] == "t_a", "path"].tolist() == ["4/results.json"]


def test_columns_fix_the_order_and_select(sweep, capsys):
    run_cli(sweep, "--columns", "t_c,t_a")
    table = pd.read_csv(sweep / "table" / "mbsr_silb.csv", index_col="method")
    assert list(table.columns) == ["t_c", "t_a", "mean"]
    assert table.loc["rdx", "mean"] == pytest.approx(0.8)
    assert pd.read_csv(sweep / "table" / "runs.csv")["task_name"].tolist() == ["t_c", "t_a"]
    with pytest.raises(SystemExit):
        run_cli(sweep, "--columns", "t_a,nope")
    assert "nope" in capsys.readouterr().err


def test_results_inside_the_output_folder_are_skipped(sweep):
    write_run(sweep / "table" / "old", results("t_z", [method_entry("rdx", (0.1, 0.1))]))
    assert len(find_runs(sweep, exclude=sweep / "table")) == 3
    run_cli(sweep)
    assert "t_z" not in pd.read_csv(sweep / "table" / "mbsr_silb.csv").columns


def test_recovery_table_and_representation_columns_when_present(tmp_path):
    root = tmp_path / "runs"
    write_run(
        root / "0",
        results(
            "planted",
            [method_entry("rdx", (0.9, 0.9), recovery=0.75), method_entry("kmeans", (0.5, 0.5))],
            representations={"cka": 0.8, "probe": {"A": 0.9, "B": 0.7, "agreement": 0.6}},
        ),
    )
    write_run(root / "1", results("plain", [method_entry("rdx", (0.8, 0.8))]))
    run_cli(root, "--out-dir", tmp_path / "out")
    recovery = pd.read_csv(tmp_path / "out" / "recovery.csv", index_col="method")
    assert recovery.loc["rdx", "planted"] == pytest.approx(0.75)
    assert np.isnan(recovery.loc["kmeans", "planted"]) and np.isnan(recovery.loc["rdx", "plain"])
    assert "## Planted-difference recovery score" in (tmp_path / "out" / "table.md").read_text()
    runs = pd.read_csv(tmp_path / "out" / "runs.csv", index_col="task_name")
    assert runs.loc["planted", "cka"] == pytest.approx(0.8) and np.isnan(runs.loc["plain", "cka"])
    assert runs.loc["planted", "probe_agreement"] == pytest.approx(0.6)
    assert not (root / "table").exists()


def test_box_plot_is_written_with_every_grid_value(sweep):
    run_cli(sweep)
    png = sweep / "table" / "bsr_boxplot.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    values = grid_bsr_values(load_runs(find_runs(sweep)))
    assert list(values) == ["rdx", "kmeans", "pca"]
    assert sorted(values["rdx"]) == pytest.approx([0.6, 0.7, 0.8, 0.8, 0.9, 1.0])
    assert sorted(values["kmeans"]) == pytest.approx([0.4, 0.5, 0.5, 0.6, 0.7])  # the empty side adds none


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_or_empty_folder_is_a_clear_error(tmp_path, capsys, make):
    folder = tmp_path / "runs"
    if make == "empty":
        (folder / "0").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(folder)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert str(folder) in err
    assert ("does not exist" if make == "missing" else "no results.json found") in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (json.dumps({"task_name": "t", "methods": {}}), "missing key 'main_method'"),
        (json.dumps(results("t", [method_entry("rdx", (1, 1))], main_method="sae")), "main_method 'sae'"),
        ("{not json", "cannot read it as JSON"),
    ],
)
def test_malformed_results_file_is_named(sweep, capsys, content, message):
    bad = sweep / "9" / "results.json"
    bad.parent.mkdir()
    bad.write_text(content)
    with pytest.raises(SystemExit):
        run_cli(sweep)
    err = capsys.readouterr().err
    assert str(bad) in err and message in err
    with pytest.raises(RunsError, match="main_method|JSON"):
        load_runs([bad])


def test_malformed_metrics_are_named(tmp_path):
    data = results("t", [method_entry("rdx", (0.5, 0.5))])
    del data["methods"]["rdx"]["metrics"]["lsed"]["tsd"]
    path = write_run(tmp_path / "0", data)
    with pytest.raises(RunsError, match=r"metrics\.lsed\.tsd"):
        load_runs([path])


def test_benchmark_tables_pure(sweep):
    tables = benchmark_tables(load_runs(find_runs(sweep)), columns=["t_b"])
    assert set(tables) == {
        "mbsr_silb",
        "mbsr_mned",
        "mbsr_lsed",
        "tsd_silb",
        "eq_silb",
        "bsr_a_silb",
        "bsr_b_silb",
    }
    assert list(tables["mbsr_silb"].index) == ["rdx", "kmeans"]  # pca ran only outside t_b
    assert tables["mbsr_silb"].loc["kmeans", "mean"] == pytest.approx(0.5)


def test_table_with_wandb_offline(sweep, monkeypatch, capsys):
    """The offline W&B run lands in the output folder with every table and the box plot."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    main([str(sweep), "--wandb", "offline"])
    assert "W&B run:" in capsys.readouterr().out
    runs = list((sweep / "table" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    table_files = [path.name for path in runs[0].rglob("media/table/*.table.json")]
    assert any(name.startswith("mbsr_silb") for name in table_files), table_files
    assert any(name.startswith("runs") for name in table_files)
    mbsr = next(p for p in runs[0].rglob("media/table/*.table.json") if p.name.startswith("mbsr_silb"))
    content = json.loads(mbsr.read_text())
    assert content["columns"] == ["method", "t_a", "t_b", "t_c", "mean"]
    assert content["data"][0][0] == "rdx" and content["data"][0][1] == pytest.approx(0.7)
    assert [p for p in runs[0].rglob("*.png") if "bsr_boxplot" in p.name]
    # the run's own results.json files are not in the table folder, so a rerun reads the same three
    assert len(find_runs(sweep, exclude=sweep / "table")) == 3
