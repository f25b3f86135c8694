"""rdx-train: train a ConvNet, or fine-tune a torchvision model, and write its checkpoints and index
(Hydra app, conf/train.yaml).

Examples:
    rdx-train                                 # the MNIST 3/5/8 ConvNet of the paper
    rdx-train training=fashion_mobilenet      # MobileNetV2 (ImageNet weights) fine-tuned on Fashion-MNIST
    rdx-train force=true                      # retrain even if this config's checkpoints exist
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from rdx.cli import CONFIG_DIR

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    from rdx.models.checkpoints import read_index
    from rdx.training.train import ensure_trained

    training = OmegaConf.to_container(cfg.training, resolve=True)
    run_dir = ensure_trained(training, Path(cfg.paths.checkpoints), force=cfg.force)
    rows = read_index(run_dir)
    for row in rows:
        log.info(
            "step %5d  epoch %d  val acc %.4f  %s", row["step"], row["epoch"], row["val_acc"], row["kind"]
        )
    print(f"checkpoints: {run_dir}  ({len(rows)} checkpoints, index: {Path(run_dir) / 'index.csv'})")


if __name__ == "__main__":
    main()
