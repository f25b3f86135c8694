"""rdx-compare: compare two models on one image selection (Hydra app, conf/compare.yaml).

Examples:
    rdx-compare experiment=mnist_835
    rdx-compare experiment=mnist_835 method.params.gamma=0.1 logger=disabled
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from rdx.cli import CONFIG_DIR

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="compare")
def main(cfg: DictConfig) -> None:
    from rdx.compare import run_compare  # heavy imports after Hydra parsed the command line

    output_dir = Path(HydraConfig.get().runtime.output_dir)
    results = run_compare(cfg, output_dir)
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


if __name__ == "__main__":
    main()
