"""The Lightning module: a thin shell around a :class:`~resmo.methods.MomentumMethod`.

Per batch (see resmo.methods.base for the method's side):

1. ``training_step``: ``result = method(views, step=global_step)``; a device flag records
   whether every loss term is finite (no host read), and ``result.loss`` is returned, so
   every process runs backward (DDP needs all ranks in each gradient all-reduce);
2. ``on_before_optimizer_step`` (after backward; under ``16-mixed`` after the gradient
   scaler unscaled the gradients): the step's **one host synchronisation**. The flags
   "a loss term is not finite", "a gradient is not finite" and "stop requested" (a signal,
   see resmo.train.interrupt) are stacked into one tensor, max-reduced over processes in
   one all-reduce and read once (:class:`StepCheck`). A bad step (non-finite term or
   gradient) clears all gradients, so the optimizer leaves the weights alone, and undoes
   the forward pass's BatchNorm statistics. Under ``16-mixed`` a non-finite gradient with
   finite terms is the gradient scaler's overflow: the scaler skips the optimizer step
   itself and lowers its scale; the step is counted as ``scaler_skipped``. An applied
   step then gets the method's gradient edits (``method.before_optimizer_step``: DINO's
   per-parameter clipping and frozen last layer) and weight-decay schedule;
3. ``optimizer_step``: the optimizer step, then ``method.after_optimizer_step`` (queue /
   centre, then the teacher's EMA with the momentum of that same step), only for an applied
   step: a bad or scaler-skipped step changes no weight, teacher, queue or centre;
4. ``on_train_batch_end``: logs the applied step's terms and intra gaps.

:class:`~resmo.train.non_finite.NonFiniteGuard` decides whether to skip a bad step or stop;
:class:`~resmo.train.interrupt.GracefulInterrupt` stops when ``check.stop`` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import lightning.pytorch as pl
import torch

from resmo.config.schema import OptimizerSection, StepSchedule
from resmo.distributed import all_reduce_max
from resmo.methods.base import MomentumMethod, StepResult
from resmo.train.fast_path import is_uint8_batch
from resmo.train.finite import (
    BatchNormSnapshot,
    NonFiniteStep,
    all_finite,
    clear_gradients,
    first_non_finite_gradient,
    first_non_finite_term,
)
from resmo.train.optimizers import build_lr_scheduler, build_optimizer, set_weight_decay
from resmo.train.resume import STEPS_PER_EPOCH_KEY

#: Precisions whose gradient scaler skips steps with non-finite gradients by itself.
SCALED_PRECISIONS = ("16-mixed", "16")


@dataclass
class StepCheck:
    """What the step's one synchronisation decided (the same on every process).

    ``bad``: the step's terms or gradients were not finite (see ``bad_step``);
    ``scaler_skipped``: the fp16 gradient scaler skipped the step (overflow);
    ``stop``: some process asked to stop after this step (a signal).
    """

    bad: NonFiniteStep | None = None
    scaler_skipped: bool = False
    stop: bool = False

    @property
    def applied(self) -> bool:
        return self.bad is None and not self.scaler_skipped


class PretrainModule(pl.LightningModule):
    def __init__(self, method: MomentumMethod, optimizer: OptimizerSection, schedule: StepSchedule, *,
                 device_views: Callable | None = None, channels_last: bool = False) -> None:
        super().__init__()
        self.method = method
        self.optimizer_settings = optimizer
        self.schedule = schedule  # the recipe's epochs in steps (PretrainConfig.resolve)
        #: set from a signal handler (resmo.train.interrupt); read at the step's check
        self.stop_requested = False
        self.check = StepCheck()
        self.step_values: dict[str, torch.Tensor] = {}
        self._pending: tuple[StepResult, int] | None = None
        self._terms_finite: torch.Tensor | None = None
        self._momentum: float | None = None
        self._batch_norm: BatchNormSnapshot | None = None
        self.device_views = device_views  # data.pipeline=batched: uint8 batch -> views here
        self.channels_last = channels_last

    @property
    def bad_step(self) -> NonFiniteStep | None:
        """The current batch's non-finite term or gradient, if any."""
        return self.check.bad

    @property
    def total_steps(self) -> int:
        return self.schedule.total_steps

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """On the device: views of a uint8 batch (``data.pipeline: batched``, see
        resmo.train.fast_path), in the run's precision; channels-last views if asked (a
        no-op for batched views, which are made channels-last)."""
        if self.device_views is not None and is_uint8_batch(batch):
            views, labels = self.device_views(batch)
            batch = (self.trainer.precision_plugin.convert_input(views), labels)
        if self.channels_last:
            views, labels = batch
            batch = ([view.contiguous(memory_format=torch.channels_last) for view in views], labels)
        return batch

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        views, _labels = batch
        step = self.global_step
        self.check, self.step_values = StepCheck(), {}
        if self._batch_norm is None:  # built here: after the module moved to its device
            self._batch_norm = BatchNormSnapshot(self.method)
        self._batch_norm.take()
        result = self.method(views, step=step)
        self._terms_finite = all_finite(list(result.terms.values()))
        self._pending = (result, step)
        self.step_values = {
            **{f"train/{name}": value.detach() for name, value in result.terms.items()},
            **{f"gap/{level}": value.detach() for level, value in result.gaps.items()},
        }
        return result.loss

    def on_before_optimizer_step(self, optimizer) -> None:
        """The step's one host synchronisation: see the module docstring, item 2."""
        gradients = [p.grad for p in self.method.parameters() if p.grad is not None]
        flags = torch.stack([
            ~self._terms_finite, ~all_finite(gradients),
            torch.full((), self.stop_requested, dtype=torch.bool, device=self._terms_finite.device),
        ]).float()
        bad_terms, bad_gradients, stop = (bool(flag) for flag in all_reduce_max(flags).tolist())
        self.check.stop = stop
        scaled = self.trainer.precision in SCALED_PRECISIONS
        if bad_gradients and not bad_terms and scaled:
            self.check.scaler_skipped = True  # the scaler skips this optimizer step itself
        elif bad_terms or bad_gradients:
            self.check.bad = self._describe_bad_step(bad_terms)
            clear_gradients(p for group in optimizer.param_groups for p in group["params"])
        if not self.check.applied:
            self.step_values = {}
            self._batch_norm.restore()
            return
        # the method's gradient edits (DINO: per-parameter clipping, frozen last layer) and
        # its weight-decay schedule, after the gradients are final (all-reduced, unscaled)
        self.method.before_optimizer_step(step=self.global_step, epoch=self.current_epoch)
        weight_decay = self.method.weight_decay_at(self.global_step, total_steps=self.total_steps)
        if weight_decay is not None:
            set_weight_decay(optimizer, weight_decay)

    def _describe_bad_step(self, bad_terms: bool) -> NonFiniteStep:
        """Which term or gradient was not finite (extra host reads: bad steps only)."""
        step, epoch = self.global_step, self.current_epoch
        batch = self.trainer.fit_loop.epoch_loop.batch_idx
        if bad_terms:
            result = self._pending[0] if self._pending is not None else None
            found = first_non_finite_term(result.terms) if result is not None else None
            if found is None:
                return NonFiniteStep(step, epoch, batch, "loss", float("nan"),
                                     detail="a loss term is not finite on another process")
            return NonFiniteStep(step, epoch, batch, found[0], found[1])
        found = first_non_finite_gradient(self.method.named_parameters())
        name, value = found if found is not None else ("", float("nan"))
        return NonFiniteStep(step, epoch, batch, "gradient", value, detail=name)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        pending, self._pending, self._terms_finite = self._pending, None, None
        if pending is None or not self.check.applied:
            return
        result, step = pending
        self._momentum = self.method.after_optimizer_step(result, step=step, total_steps=self.total_steps)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if not self.step_values:
            return
        batch_size = batch[0][0].shape[0]
        self.log_dict(self.step_values, on_step=True, on_epoch=True, batch_size=batch_size)
        if (self.global_step % self.trainer.log_every_n_steps) == 0:
            # the progress bar reads its values every batch: only at logging steps
            self.log("loss", self.step_values["train/loss"], prog_bar=True, logger=False,
                     on_step=True, on_epoch=False, batch_size=batch_size)
        if self._momentum is not None:
            momentum, self._momentum = self._momentum, None
            self.log("train/momentum", momentum, on_step=True, on_epoch=False)
            self.log("train/lr", self.optimizers().param_groups[0]["lr"], on_step=True, on_epoch=False)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # lets `--resume` notes name the epoch and batch (resmo.train.resume.describe_position)
        checkpoint[STEPS_PER_EPOCH_KEY] = int(self.trainer.num_training_batches)

    def configure_optimizers(self):
        settings = self.optimizer_settings
        optimizer = build_optimizer(
            self.method.student_parameters(),
            name=settings.name, lr=settings.lr, weight_decay=settings.weight_decay,
            momentum=settings.momentum, betas=settings.betas, lars_eta=settings.lars_eta,
            lars_clip=settings.lars_clip, lars_exclude_bias_and_norm=settings.lars_exclude_bias_and_norm,
            weight_decay_norm_and_bias=settings.weight_decay_norm_and_bias,
        )
        scheduler = build_lr_scheduler(
            optimizer, total_steps=self.schedule.total_steps, warmup_steps=self.schedule.lr_warmup_steps,
            lr=settings.lr, min_lr=settings.min_lr,
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
