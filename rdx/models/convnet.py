"""The small MNIST ConvNet of the paper and the Lightning module that trains it (or any classifier)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=5, padding=2),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class ConvNet(nn.Module):
    """Conv(5x5)-BN-ReLU-MaxPool blocks, global average pooling, one linear classifier.

    Submodules: ``block1`` … ``blockK`` (one per entry of ``channels``), ``pool``, ``classifier``.
    With the default channels, ``block2`` outputs (n, 64, 7, 7); pooled, that is the 64-d
    non-negative representation compared in the paper.
    """

    def __init__(self, num_classes: int, channels: Sequence[int] = (32, 64)) -> None:
        super().__init__()
        if num_classes < 1 or not channels:
            raise ValueError(
                f"need num_classes >= 1 and at least one channel count, got {num_classes}, {channels}"
            )
        in_channels = 1
        for index, out_channels in enumerate(channels, start=1):
            self.add_module(f"block{index}", _conv_block(in_channels, int(out_channels)))
            in_channels = int(out_channels)
        self.num_blocks = len(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images (n, 1, 28, 28) to logits (n, num_classes)."""
        for index in range(1, self.num_blocks + 1):
            x = getattr(self, f"block{index}")(x)
        return self.classifier(torch.flatten(self.pool(x), 1))


class ImageClassifier(L.LightningModule):
    """Trains a classifier ``net`` (images → logits) with Adam and a per-step OneCycle learning rate,
    cross-entropy loss.

    Logs ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``. ``steps_per_epoch=None`` takes the
    step count from the trainer (``estimated_stepping_batches``). The network itself is not saved as a
    hyperparameter (a subclass that builds it saves the arguments it is built from).
    """

    def __init__(
        self,
        net: nn.Module,
        max_lr: float = 0.01,
        weight_decay: float = 0.0,
        pct_start: float = 0.3,
        max_epochs: int = 5,
        steps_per_epoch: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net"])
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (n, num_classes) for a batch of preprocessed images."""
        return self.net(x)

    def _loss_and_accuracy(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = batch
        logits = self.net(images)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return loss, accuracy

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, accuracy = self._loss_and_accuracy(batch)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", accuracy, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, accuracy = self._loss_and_accuracy(batch)
        self.log("val/loss", loss, prog_bar=True)
        self.log("val/acc", accuracy, prog_bar=True)

    def configure_optimizers(self) -> dict[str, Any]:
        hparams = self.hparams
        optimizer = torch.optim.Adam(self.parameters(), lr=hparams.max_lr, weight_decay=hparams.weight_decay)
        if hparams.steps_per_epoch is not None:
            total_steps = hparams.max_epochs * hparams.steps_per_epoch
        else:
            total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=hparams.max_lr, total_steps=total_steps, pct_start=hparams.pct_start
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


class ConvNetClassifier(ImageClassifier):
    """Trains a :class:`ConvNet` as :class:`ImageClassifier` does; its hyperparameters include the
    ConvNet's ``num_classes`` and ``channels``."""

    def __init__(
        self,
        num_classes: int,
        channels: Sequence[int] = (32, 64),
        max_lr: float = 0.01,
        weight_decay: float = 0.0,
        pct_start: float = 0.3,
        max_epochs: int = 5,
        steps_per_epoch: int | None = None,
    ) -> None:
        super().__init__(
            ConvNet(num_classes, channels),
            max_lr=max_lr,
            weight_decay=weight_decay,
            pct_start=pct_start,
            max_epochs=max_epochs,
            steps_per_epoch=steps_per_epoch,
        )
