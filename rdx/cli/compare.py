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

from rdx.cli import CONFIG_DIR

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="compare")
def main(cfg: DictConfig) -> float:
    from rdx.runs import resume_finished_run  # light: a finished job is skipped within a second

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN and cfg.logger.get("group") is None:
        with open_dict(cfg):  # one W&B group per sweep: its folder
            cfg.logger.group = str(hydra_cfg.sweep.dir)
    job = {"overrides": list(hydra_cfg.overrides.task), "mode": str(hydra_cfg.mode.name)}
    if hydra_cfg.mode == RunMode.MULTIRUN:
        job.update(num=int(hydra_cfg.job.num), sweep_dir=str(hydra_cfg.sweep.dir))
    results = resume_finished_run(cfg, output_dir, job) if cfg.resume else None
    if results is not None:
        print(f"skipped (finished before): {results.get('reused_from', output_dir)}")
        print(f"results:  {output_dir / 'results.json'}")
        return main_objective(results)

    from rdx.compare import run_compare  # heavy imports only for a job that runs

    results = run_compare(cfg, output_dir, job=job)
    for side, info in results["models"].items():
        accuracy = f", val acc {info['val_acc']:.4f}" if "val_acc" in info else ""
        log.info("model %s = %s (%s%s)", side, info["name"], info["checkpoint"], accuracy)
    main_result = results["methods"][results["main_method"]]
    for row in main_result["concepts"]:
        log.info(
            "%s side %s concept %d: %d images, score %.3f, grid labels %s",
            results["main_method"],
            row["side"],
            row["concept"],
            row["size"],
            row["score"],
            row["grid_label_counts"],
        )
    for direction, alignment in main_result["explanation"]["info"].get("alignment", {}).items():
        log.info(
            "alignment %s: held-out CKA %.4f -> %.4f (train %.4f), kept step %d",
            direction,
            alignment["initial_heldout_cka"],
            alignment["heldout_cka"],
            alignment["train_cka"],
            alignment["kept_step"],
        )
    for label, method in results["methods"].items():
        bsr = {distance: scores["bsr"] for distance, scores in method["metrics"].items()}
        log.info(
            "%-12s fit %6.2f s | BSR SILB A %.3f B %.3f mean %.3f | mBSR MNED %.3f LSED %.3f",
            label,
            method["fit_s"],
            bsr["silb"]["A"],
            bsr["silb"]["B"],
            bsr["silb"]["mean"],
            bsr["mned"]["mean"],
            bsr["lsed"]["mean"],
        )
    print(f"results:  {output_dir / 'results.json'}")
    print(f"summary:  {results['figures']['summary']}")
    print(f"scatter:  {results['figures']['pca_scatter']}")
    if "comparison" in results["figures"]:
        print(f"all methods: {results['figures']['comparison']}")
    print(f"grids:    {output_dir / 'grids'}")
    if results.get("wandb_run_dir"):
        print(f"W&B run:  {results['wandb_run_dir']}")
    return main_objective(results)


def main_objective(results: dict) -> float:
    """What a sweeper optimises: the main method's mBSR with SILB distances."""
    return float(results["methods"][results["main_method"]]["metrics"]["silb"]["bsr"]["mean"])


if __name__ == "__main__":
    main()
