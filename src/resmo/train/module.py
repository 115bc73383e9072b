"""The Lightning module: a thin shell around a :class:`~resmo.methods.MomentumMethod`.

Per batch (see resmo.methods.base for the method's side):

1. ``training_step``: ``result = method(views, step=global_step)``; log every loss term
   and the intra gap per level; return ``result.loss`` (Lightning runs backward and the
   optimizer step);
2. ``on_train_batch_end`` (after the optimizer step): ``method.after_optimizer_step``
   updates queue / centre and then the teacher, with the momentum of that same step.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from resmo.config.schema import OptimizerSection
from resmo.methods.base import MomentumMethod, StepResult
from resmo.train.optimizers import build_lr_scheduler, build_optimizer


class PretrainModule(pl.LightningModule):
    def __init__(self, method: MomentumMethod, optimizer: OptimizerSection) -> None:
        super().__init__()
        self.method = method
        self.optimizer_settings = optimizer
        self._pending: tuple[StepResult, int] | None = None

    @property
    def total_steps(self) -> int:
        return max(1, int(self.trainer.estimated_stepping_batches))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        views, _labels = batch
        step = self.global_step
        result = self.method(views, step=step)
        self._pending = (result, step)
        batch_size = views[0].shape[0]
        self.log_dict(
            {f"train/{name}": value for name, value in result.terms.items()},
            on_step=True, on_epoch=True, batch_size=batch_size, sync_dist=False,
        )
        self.log_dict(
            {f"gap/{level}": value for level, value in result.gaps.items()},
            on_step=True, on_epoch=True, batch_size=batch_size,
        )
        self.log("loss", result.terms["loss"], prog_bar=True, logger=False, batch_size=batch_size)
        return result.loss

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self._pending is None:
            return
        result, step = self._pending
        self._pending = None
        momentum = self.method.after_optimizer_step(result, step=step, total_steps=self.total_steps)
        self.log("train/momentum", momentum, on_step=True, on_epoch=False)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)

    def configure_optimizers(self):
        settings = self.optimizer_settings
        optimizer = build_optimizer(
            self.method.student_parameters(),
            name=settings.name, lr=settings.lr, weight_decay=settings.weight_decay,
            momentum=settings.momentum, betas=settings.betas, lars_eta=settings.lars_eta,
        )
        total = self.total_steps
        steps_per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        warmup = min(total - 1, round(settings.warmup_epochs * steps_per_epoch))
        scheduler = build_lr_scheduler(
            optimizer, total_steps=total, warmup_steps=max(0, warmup), lr=settings.lr,
            min_lr=settings.min_lr,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
