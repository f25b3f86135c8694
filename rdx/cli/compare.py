"""rdx-compare: compare two models on one image selection (Hydra app, conf/compare.yaml).

Examples:
    rdx-compare experiment=mnist_835
    rdx-compare experiment=mnist_835 method.params.gamma=0.1 logger=disabled
    rdx-compare -m experiment=mnist_835 method.params.gamma=0.05,0.1 hydra/launcher=joblib

Returns (to Hydra sweepers such as Optuna) the main method's mBSR with SILB distances.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from rdx.cli import CONFIG_DIR, check_method_configs

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="compare")
def main(cfg: DictConfig) -> float:
    from rdx.compare import run_compare  # light: a finished job is skipped within a second

    check_method_configs(cfg)  # a misspelt parameter fails here, naming the valid ones

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN and cfg.logger.get("group") is None:
        with open_dict(cfg):  # one W&B group per sweep: its folder
            cfg.logger.group = str(hydra_cfg.sweep.dir)
    job = {"overrides": list(hydra_cfg.overrides.task), "mode": str(hydra_cfg.mode.name)}
    if hydra_cfg.mode == RunMode.MULTIRUN:
        job.update(num=int(hydra_cfg.job.num), sweep_dir=str(hydra_cfg.sweep.dir))
    record = run_compare(cfg, output_dir, job=job)
    if record.skipped:
        print(f"skipped (finished before): {record.reused_from or output_dir}")
    else:
        for line in record.console_lines():
            log.info(line)
    shown = {"results": output_dir / "results.json"}
    shown |= {
        name: record.figure_path(name)
        for name in ("summary", "pca_scatter", "comparison")
        if name in record.figures
    }
    if record.report is not None:
        shown["report"] = record.path(record.report["file"])
    if record.members_file is not None:
        shown["members"] = record.path(record.members_file)
    if record.wandb_run_dir:
        shown["W&B run"] = record.wandb_run_dir
    for name, path in shown.items():
        print(f"{name + ':':<13}{path}")
    return record.objective()


if __name__ == "__main__":
    main()
