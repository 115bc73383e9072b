"""The Lightning module: a thin shell around a :class:`~resmo.methods.MomentumMethod`.

Per batch (see resmo.methods.base for the method's side):

1. ``training_step``: ``result = method(views, step=global_step)``; every loss term is
   checked (:mod:`resmo.train.finite`): a non-finite term marks the step bad, undoes the
   forward pass's BatchNorm statistics and returns ``None`` (Lightning then skips
   backward and the optimizer step). Otherwise log every loss term and the intra gap per
   level and return ``result.loss``;
2. ``on_before_optimizer_step``: a non-finite gradient marks the step bad and clears all
   gradients, so the optimizer leaves the weights alone (not under ``16-mixed``, whose
   gradient scaler skips such steps itself);
3. ``optimizer_step``: the optimizer step, then ``method.after_optimizer_step`` (queue /
   centre, then the teacher's EMA with the momentum of that same step), unless the step
   was bad. Doing it here, not in ``on_train_batch_end``, means the whole step is done
   before any callback's ``on_train_batch_end`` (where boundary checkpoints are written).

``bad_step`` holds the :class:`~resmo.train.finite.NonFiniteStep` of the current batch;
:class:`~resmo.train.non_finite.NonFiniteGuard` decides whether to skip it or stop.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning.pytorch as pl
import torch

from resmo.config.schema import OptimizerSection
from resmo.methods.base import MomentumMethod, StepResult
from resmo.train.fast_path import is_uint8_batch
from resmo.train.finite import (
    BatchNormSnapshot,
    NonFiniteStep,
    clear_gradients,
    first_non_finite_gradient,
    first_non_finite_term,
)
from resmo.train.optimizers import build_lr_scheduler, build_optimizer

#: Precisions whose gradient scaler handles non-finite gradients by itself.
SCALED_PRECISIONS = ("16-mixed", "16")


class PretrainModule(pl.LightningModule):
    def __init__(self, method: MomentumMethod, optimizer: OptimizerSection, *,
                 check_gradients: bool = True, device_views: Callable | None = None,
                 channels_last: bool = False) -> None:
        super().__init__()
        self.method = method
        self.optimizer_settings = optimizer
        self.check_gradients = check_gradients
        self.bad_step: NonFiniteStep | None = None
        self.step_values: dict[str, torch.Tensor] = {}
        self._pending: tuple[StepResult, int] | None = None
        self._momentum: float | None = None
        self._batch_norm: BatchNormSnapshot | None = None
        self.device_views = device_views  # data.pipeline=batched: uint8 batch -> views here
        self.channels_last = channels_last

    @property
    def total_steps(self) -> int:
        return max(1, int(self.trainer.estimated_stepping_batches))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """On the device: views of a uint8 batch (``data.pipeline: batched``, see
        resmo.train.fast_path), in the run's precision; channels-last views if asked."""
        if self.device_views is not None and is_uint8_batch(batch):
            views, labels = self.device_views(batch)
            batch = (self.trainer.precision_plugin.convert_input(views), labels)
        if self.channels_last:
            views, labels = batch
            batch = ([view.contiguous(memory_format=torch.channels_last) for view in views], labels)
        return batch

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        views, _labels = batch
        step = self.global_step
        self.bad_step, self._pending, self.step_values = None, None, {}
        if self._batch_norm is None:  # built here: after the module moved to its device
            self._batch_norm = BatchNormSnapshot(self.method)
        self._batch_norm.take()
        result = self.method(views, step=step)
        bad = self._check_terms(result, step, batch_idx)
        if bad is not None:
            self._batch_norm.restore()
            self.bad_step = bad
            return None
        self._pending = (result, step)
        batch_size = views[0].shape[0]
        self.step_values = {
            **{f"train/{name}": value.detach() for name, value in result.terms.items()},
            **{f"gap/{level}": value.detach() for level, value in result.gaps.items()},
        }
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

    def _check_terms(self, result: StepResult, step: int, batch_idx: int) -> NonFiniteStep | None:
        found = first_non_finite_term(result.terms)
        anywhere = found is not None
        if self.trainer.world_size > 1:  # every rank must skip or stop together
            anywhere = bool(self.trainer.strategy.reduce_boolean_decision(anywhere, all=False))
        if not anywhere:
            return None
        epoch = self.current_epoch
        if found is None:
            return NonFiniteStep(step, epoch, batch_idx, "loss", float("nan"),
                                 detail="a loss term is not finite on another process")
        return NonFiniteStep(step, epoch, batch_idx, found[0], found[1])

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.bad_step is not None or not self.check_gradients:
            return
        found = first_non_finite_gradient(self.method.named_parameters())
        if found is None:
            return
        self.bad_step = NonFiniteStep(self.global_step, self.current_epoch,
                                      self.trainer.fit_loop.epoch_loop.batch_idx,
                                      "gradient", found[1], detail=found[0])
        clear_gradients(p for group in optimizer.param_groups for p in group["params"])
        if self._batch_norm is not None:
            self._batch_norm.restore()

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        pending, self._pending = self._pending, None
        if pending is None or self.bad_step is not None:
            return
        result, step = pending
        self._momentum = self.method.after_optimizer_step(result, step=step, total_steps=self.total_steps)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self._momentum is None:
            return
        momentum, self._momentum = self._momentum, None
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
