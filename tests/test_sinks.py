"""Atomic file writers and the W&B run logger (offline and disabled; never the network)."""

from __future__ import annotations

import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from rdx.sinks import RunLogger, save_figure, save_png, write_json_atomic


def leftover_temporaries(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.tmp"))


def test_write_json_atomic_round_trips_numpy_types(tmp_path) -> None:
    payload = {
        "int": np.int64(3),
        "float": np.float32(0.5),
        "bool": np.bool_(True),
        "array": np.arange(4, dtype=np.int32),
        "matrix": np.eye(2),
        "path": tmp_path / "x.png",
        "nested": [{"score": np.float64(1.25)}],
    }
    path = write_json_atomic(tmp_path / "sub" / "results.json", payload)
    loaded = json.loads(path.read_text())
    assert loaded == {
        "int": 3,
        "float": 0.5,
        "bool": True,
        "array": [0, 1, 2, 3],
        "matrix": [[1.0, 0.0], [0.0, 1.0]],
        "path": str(tmp_path / "x.png"),
        "nested": [{"score": 1.25}],
    }
    assert '\n  "int": 3' in path.read_text()  # indent 2
    assert leftover_temporaries(tmp_path) == []


def test_interrupted_write_keeps_the_old_file(tmp_path) -> None:
    path = tmp_path / "results.json"
    write_json_atomic(path, {"version": 1})

    class Unserialisable:
        pass

    # The encoder fails part-way, after some JSON has already been streamed to the temporary file.
    with pytest.raises(TypeError):
        write_json_atomic(path, {"version": 2, "values": list(range(1000)), "bad": Unserialisable()})
    assert json.loads(path.read_text()) == {"version": 1}
    assert leftover_temporaries(tmp_path) == []


def test_save_png_and_figure_atomically(tmp_path) -> None:
    image = np.arange(60, dtype=np.uint8).reshape(6, 10)
    png = save_png(image, tmp_path / "grids" / "a.png")
    np.testing.assert_array_equal(np.asarray(Image.open(png)), image)
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    assert np.asarray(Image.open(save_png(rgb, tmp_path / "b.png"))).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="uint8"):
        save_png(image.astype(np.float32), tmp_path / "c.png")

    figure = Figure(figsize=(2, 2))
    figure.subplots().plot([0, 1], [1, 0])
    saved = save_figure(figure, tmp_path / "figures" / "plot.png", dpi=50)
    assert Image.open(saved).format == "PNG"
    assert save_figure(figure, tmp_path / "plot.pdf").read_bytes().startswith(b"%PDF")
    assert not (tmp_path / "c.png").exists()
    assert leftover_temporaries(tmp_path) == []


def test_run_logger_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        RunLogger(mode="dryrun")


def test_run_logger_disabled_writes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "wandb", None)  # importing wandb now fails: disabled must not try
    with RunLogger(mode="disabled", dir=tmp_path / "logs", config={"a": 1}) as run_logger:
        run_logger.log_metrics({"bsr": 0.7})
        run_logger.log_images({"grid": np.zeros((8, 8), dtype=np.uint8)}, captions={"grid": "c"})
        run_logger.log_table("concepts", ["index", "grid"], [[1, np.zeros((8, 8), dtype=np.uint8)]])
        run_logger.update_summary({"mbsr": 0.7})
        assert run_logger.run_dir is None
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="finished"):
        run_logger.log_metrics({"late": 1})


class FakeRun:
    def __init__(self, run_dir: Path) -> None:
        self.dir = str(run_dir / "files")
        self.id = "fake"
        self.exit_codes: list[int] = []

    def finish(self, exit_code: int = 0) -> None:
        self.exit_codes.append(exit_code)


def test_run_logger_context_finishes_once_with_failing_exit_code(tmp_path, monkeypatch) -> None:
    """The context manager finishes the run even when the block raises, marking it failed."""
    runs: list[FakeRun] = []

    def fake_init(**kwargs) -> FakeRun:
        assert kwargs["mode"] == "offline" and kwargs["reinit"] == "finish_previous"
        runs.append(FakeRun(tmp_path / "wandb" / "offline-run-x"))
        return runs[-1]

    fake_wandb = types.SimpleNamespace(init=fake_init, Settings=lambda **settings: settings)
    monkeypatch.setitem(sys.modules, "wandb", fake_wandb)
    monkeypatch.delenv("WANDB_DATA_DIR", raising=False)
    with pytest.raises(KeyError):
        with RunLogger(mode="offline", dir=tmp_path) as run_logger:
            assert run_logger.run_dir == tmp_path / "wandb" / "offline-run-x"
            raise KeyError("boom")
    run_logger.finish()
    assert runs[0].exit_codes == [1]
    assert "WANDB_DATA_DIR" not in os.environ

    with RunLogger(mode="offline", dir=tmp_path):
        pass
    assert runs[1].exit_codes == [0]


def test_run_logger_offline_writes_media_locally(tmp_path, monkeypatch) -> None:
    """One real offline run: image, table with an image column, metrics; media land under tmp_path."""
    for variable in ("WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_DIR", "WANDB_MODE", "WANDB_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    started = time.perf_counter()
    grid = np.random.default_rng(0).integers(0, 255, size=(32, 32, 3), dtype=np.uint8)
    figure = Figure(figsize=(2, 2))
    figure.subplots().plot([0, 1], [1, 0])
    with RunLogger(mode="offline", dir=tmp_path, name="test", config={"method": "rdx", "k": 3}) as run_logger:
        run_logger.log_images({"summary": figure, "grid_A_1": grid}, captions={"grid_A_1": "concept 1"})
        run_logger.log_table(
            "concepts", ["side", "index", "score", "grid"], [["A", 1, np.float32(0.5), grid]]
        )
        run_logger.log_metrics({"bsr": np.float64(0.8), "n": np.int64(1500)})
        run_logger.update_summary({"mbsr": 0.8})
        run_dir = run_logger.run_dir
    elapsed = time.perf_counter() - started
    print(f"offline W&B run took {elapsed:.2f} s", file=sys.stderr)

    assert run_dir is not None and run_dir.is_dir()
    assert run_dir.parent == tmp_path / "wandb" and run_dir.name.startswith("offline-run-")
    assert list(run_dir.glob("run-*.wandb"))
    media = run_dir / "files" / "media"
    image_files = sorted(path.name for path in (media / "images").glob("*.png"))
    assert any(name.startswith("summary_") for name in image_files)
    assert any(name.startswith("grid_A_1_") for name in image_files)
    tables = list((media / "table").glob("concepts_*.table.json"))
    assert len(tables) == 1
    table = json.loads(tables[0].read_text())
    assert table["columns"] == ["side", "index", "score", "grid"]
    assert table["data"][0][:3] == ["A", 1, 0.5]
    # The table's image cells travel in the run_table artifact staged beside the run (for `wandb sync`).
    staged = list((tmp_path / "wandb" / "data" / "artifacts" / "staging").iterdir())
    assert any(path.read_bytes().startswith(b"\x89PNG") for path in staged)
    assert "WANDB_DATA_DIR" not in os.environ  # restored after the run
