"""The training loop of ``resmo pretrain``, written out, on Lightning Fabric.

Fabric supplies devices, DDP and other strategies, precision (autocast, the fp16 gradient
scaler) and the torchrun / SLURM / multi-process launch; the rest is here, in the style of
DINO's ``train_one_epoch``: :meth:`TrainingLoop.fit` runs the epochs,
:meth:`~TrainingLoop.train_one_epoch` the batches, :meth:`~TrainingLoop.train_step` one step:

1. the batch to the device (``data.pipeline: batched``: views made there, resmo.data.batched);
2. a BatchNorm-statistics copy, then ``method(views, step)`` under autocast
   (resmo.methods.base): loss terms, intra gaps, a device flag "every term is finite";
3. backward (scaled under ``16-mixed``; DDP all-reduces), gradients unscaled;
4. the step's **one host synchronisation** (:meth:`~TrainingLoop._check`): "term not
   finite", "gradient not finite", "stop requested" (resmo.train.step_check), max-reduced
   over processes, read once;
5. a bad step clears its gradients and restores the BatchNorm statistics (under
   ``16-mixed`` an overflow with finite terms is left to the scaler); an applied step gets
   the method's gradient edits (``before_optimizer_step``) and weight decay;
6. optimizer step and learning-rate schedule (resmo.optim.optimizers);
7. applied steps only: ``after_optimizer_step`` (queue / centre, then the EMA teacher);
8. logging every ``train.log_every_n_steps`` (one read) and the epoch sums (on the device);
9. at the batch boundary, the non-finite budget (resmo.train.non_finite) and the stop
   request (resmo.train.interrupt): either writes ``checkpoints/last.ckpt`` and raises
   ``RunStopped``.

Each epoch end: epoch means, images/s, unreadable images, the kNN monitor (rank 0), a
``metrics.csv`` row, ``checkpoints/last.ckpt`` (atomic: resmo.files; its contents:
resmo.train.checkpoint_state) holding the position ``(epoch, batches done)`` from which
:meth:`TrainingLoop.load` continues exactly.
``hooks``: objects with any of ``on_start``, ``on_batch_start``, ``on_batch_end``,
``on_epoch_end`` (called with the loop); ``loop.should_stop`` ends after the epoch.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from resmo.distributed import all_reduce_max
from resmo.files import write_checkpoint
from resmo.optim.optimizers import set_weight_decay
from resmo.train.checkpoint_state import restore_training_state, training_state
from resmo.train.epoch_stats import EpochMeans, Throughput
from resmo.train.interrupt import StopSignals
from resmo.train.non_finite import (
    EXIT_CODE,
    BatchNormSnapshot,
    NonFiniteStep,
    all_finite,
    clear_gradients,
    find_bad_step,
    tensors_finite,
)
from resmo.train.progress import EpochProgress
from resmo.train.resume import describe_position
from resmo.train.step_check import StepCheck, scaler_skips, step_flags
from resmo.train.stopping import RunStopped

if TYPE_CHECKING:
    from lightning.fabric import Fabric

    from resmo.methods.base import StepResult
    from resmo.train.loop_parts import LoopParts, LoopSettings
    from resmo.train.resume import CheckpointInfo


class TrainingLoop:
    """``TrainingLoop(fabric, parts, settings)``; the parts are kept by name (``loop.method``,
    ``loop.knn``, ...: hooks, the checkpoint and the run summary read them there)."""

    def __init__(self, fabric: Fabric, parts: LoopParts, settings: LoopSettings) -> None:
        self.fabric, self.settings = fabric, settings
        self.method, self.raw_optimizer, self.scheduler = parts.method, parts.optimizer, parts.scheduler
        self.model, self.optimizer = fabric.setup(parts.method, parts.optimizer)  # DDP-wrapped, on the device
        self.loader, self.device_views, self.knn = parts.loader, parts.device_views, parts.knn
        self.log, self.budget, self.bad_images = parts.log, parts.budget, parts.bad_images
        self.steps_per_epoch = len(parts.loader)
        self.means, self.throughput = EpochMeans(), Throughput()
        self.progress = EpochProgress(enabled=settings.progress_bar and fabric.is_global_zero,
                                      epochs=settings.epochs, steps_per_epoch=self.steps_per_epoch)
        self.signals = StopSignals()
        self.batch_norm = BatchNormSnapshot(parts.method)  # after setup: on the device
        self.step, self.epoch, self.batches_done = 0, 0, 0  # the position
        self.hooks: list[object] = []
        self.should_stop = False
        self.last_loss: float | None = None

    # --- the epochs -----------------------------------------------------------------
    def fit(self, resume: CheckpointInfo | None = None) -> None:
        if resume is not None:
            self.load(resume)
        try:
            with self.signals:
                self._start()
                while self.epoch < self.settings.epochs and not self.should_stop:
                    self._stop_if_signalled_between_epochs()
                    self.train_one_epoch()
        except BaseException:
            self._close("failed")
            raise
        self._close("success")

    def _start(self) -> None:
        """The ``on_start`` hooks and the random-init kNN. Nothing is saved yet: one process
        stops at once on a signal; several record it and all stop together at the first
        epoch's start (rank 0 alone runs the kNN: raising there would leave the others
        waiting in a collective)."""
        at_once = self.signals.at_once if self.fabric.world_size == 1 else nullcontext
        with at_once("before the first training step"):
            self._call("on_start")
            if self.knn is not None and self.step == 0 and self.knn.random_init_top1 is None:
                self.knn.measure_random_init(self.method.backbone, self.fabric.device, self.fabric.is_global_zero)

    def _stop_if_signalled_between_epochs(self) -> None:
        if self._any_rank(self.signals.received is not None):
            checkpoint = self.settings.checkpoint  # the epoch-end one holds this position
            raise self.signals.stopped(f"before epoch {self.epoch + 1}", step=self.step,
                                       checkpoint=checkpoint if checkpoint.is_file() else None)

    def _close(self, status: str) -> None:
        self.progress.close()
        self.log.close(status)

    def train_one_epoch(self) -> None:
        epoch, start = self.epoch, self.batches_done
        if start == 0:
            self.means.reset()
        self.throughput.start(resumed=start > 0)
        if start < self.steps_per_epoch:
            self.progress.open(epoch, start)
        for batch_index, batch in enumerate(self.loader.start(epoch, start), start=start):
            self._call("on_batch_start")
            check, images = self.train_step(batch, batch_index)
            self.batches_done = batch_index + 1
            self.throughput.add(images * self.fabric.world_size)
            self.progress.update(self.batches_done, self.last_loss)
            self._call("on_batch_end")
            self._stop_if_asked(check)
        self.progress.close()
        self.end_epoch()

    # --- one step -------------------------------------------------------------------
    def train_step(self, batch, batch_index: int) -> tuple[StepCheck, int]:
        """One optimizer step on ``batch``, items 1-8 of the module docstring; returns the
        step's check and the number of images in the batch."""
        views = self._views(batch)
        self.batch_norm.take()
        result = self.model(views, step=self.step)
        terms_finite = all_finite(list(result.terms.values()))
        self.fabric.backward(result.loss)
        self.fabric.strategy.precision.unscale_gradients(self.raw_optimizer)
        check = self._check(terms_finite, result.terms, batch_index)
        if check.applied:
            self._before_update()
        else:
            self._undo(check)
        learning_rate = self.raw_optimizer.param_groups[0]["lr"]  # this step's (logged)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if check.applied:
            self._after_update(result, learning_rate)
        self.step += 1
        return check, views[0].shape[0]

    def _views(self, batch) -> list[torch.Tensor]:
        batch = self.fabric.to_device(batch)
        views = self.device_views(batch)[0] if self.device_views is not None else batch[0]
        if self.settings.channels_last:
            views = [view.contiguous(memory_format=torch.channels_last) for view in views]
        return views

    def _check(self, terms_finite: torch.Tensor, terms: dict[str, torch.Tensor], batch_index: int) -> StepCheck:
        """The step's one host synchronisation (item 4), then, for a bad step only, the
        further reads that name its term or gradient."""
        gradients = [p.grad for p in self.method.parameters() if p.grad is not None]
        flags = step_flags(terms_finite, gradients, stop_requested=self.signals.received is not None)
        bad_terms, bad_gradients, stop = (bool(flag) for flag in all_reduce_max(flags).tolist())
        if scaler_skips(bad_terms, bad_gradients, self.fabric.strategy.precision.precision):
            return StepCheck(scaler_skipped=True, stop=stop)
        if bad_terms or bad_gradients:
            bad = find_bad_step(self.step, self.epoch, batch_index, terms if bad_terms else None,
                                self.method.named_parameters())
            return StepCheck(bad=bad, stop=stop)
        return StepCheck(stop=stop)

    def _undo(self, check: StepCheck) -> None:
        """A step not applied: a bad step's gradients are cleared (the optimizer then leaves
        every parameter alone; a scaler skip keeps them, for the scaler to see the overflow),
        and the BatchNorm statistics its forward pass moved are restored."""
        if check.bad is not None:
            clear_gradients(p for group in self.raw_optimizer.param_groups for p in group["params"])
        self.batch_norm.restore()

    def _before_update(self) -> None:
        """An applied step's gradient edits (DINO's clipping, frozen last layer) and weight decay."""
        self.method.before_optimizer_step(step=self.step, epoch=self.epoch)
        weight_decay = self.method.weight_decay_at(self.step, total_steps=self.settings.schedule.total_steps)
        if weight_decay is not None:
            set_weight_decay(self.raw_optimizer, weight_decay)

    def _after_update(self, result: StepResult, learning_rate: float) -> None:
        """An applied step's queue / centre and EMA-teacher updates, epoch sums and log row."""
        momentum = self.method.after_optimizer_step(result, step=self.step,
                                                    total_steps=self.settings.schedule.total_steps)
        values = {**{f"train/{name}": value.detach() for name, value in result.terms.items()},
                  **{f"gap/{level}": value.detach() for level, value in result.gaps.items()}}
        self.means.add(values)
        if (self.step + 1) % self.settings.log_every_n_steps == 0:
            self._log_step(values, momentum, learning_rate)

    def _log_step(self, values: dict[str, torch.Tensor], momentum: float | None, learning_rate: float) -> None:
        names = list(values)
        numbers = torch.stack([values[name].float().reshape(()) for name in names]).tolist()
        row = {f"{name}_step": number for name, number in zip(names, numbers, strict=True)}
        self.last_loss = row.get("train/loss_step")
        if momentum is not None:
            row["train/momentum"] = momentum
        row["train/lr"] = learning_rate
        self.log.write(row, step=self.step, epoch=self.epoch)

    # --- stopping at a batch boundary ------------------------------------------------
    def _stop_if_asked(self, check: StepCheck) -> None:
        """Item 9: the non-finite budget, then the stop request (not after the last step)."""
        if self._count_non_finite(check):
            raise self._stop_non_finite(check.bad)
        if check.stop and self.step < self.settings.schedule.total_steps:
            self.save()
            position = describe_position(self.step, self.steps_per_epoch)
            raise self.signals.stopped(f"after {position}", checkpoint=self.settings.checkpoint, step=self.step)

    def _count_non_finite(self, check: StepCheck) -> bool:
        """The step in the non-finite budget (and, if not applied, the counts in
        ``metrics.csv``); ``True`` when the run must stop."""
        over_budget = self.budget.after_step(check.bad, check.scaler_skipped, warn=self.fabric.is_global_zero)
        if not check.applied:
            self.log.write({"train/skipped_steps": float(len(self.budget.bad_steps)),
                            "train/scaler_skipped_steps": float(self.budget.scaler_skipped_steps)},
                           step=self.step - 1, epoch=self.epoch)
        return over_budget

    def _stop_non_finite(self, bad: NonFiniteStep | None) -> RunStopped:
        checkpoint: Path | None = self.settings.checkpoint
        if bad is None:
            self.save()
            kept = f"checkpoint of the last applied step: {checkpoint}"
        elif not self._any_rank(not tensors_finite(self.method.state_dict().values())):  # all ranks alike
            self.save()
            kept = f"checkpoint of the last good step: {checkpoint} (finite weights)"
        else:  # should not happen (bad steps are never applied); keep the older file
            checkpoint = checkpoint if checkpoint.is_file() else None
            kept = f"weights are not finite, not saved; last good checkpoint: {checkpoint or 'none'}"
        message = self.budget.stop_message(bad, self.step - 1, kept)
        return RunStopped(message, exit_code=EXIT_CODE, reason="non-finite", checkpoint=checkpoint,
                          step=bad.step if bad is not None else self.step - 1)

    # --- the epoch end ---------------------------------------------------------------
    def end_epoch(self) -> None:
        epoch, rank_zero = self.epoch, self.fabric.is_global_zero
        row = {f"{name}_epoch": value for name, value in self.means.end_epoch().items()}
        rate = self.throughput.end_epoch()
        if rate is not None:
            row["train/images_per_second"] = rate
        skipped = self.bad_images.end_epoch(epoch, warn=rank_zero)
        if skipped is not None:
            row["data/skipped_images"] = float(skipped)
        if self.knn is not None and rank_zero and self.knn.due(epoch + 1, last=epoch + 1 == self.settings.epochs):
            measured = self.knn.measure(epoch + 1, self.method.backbone, self.method.teacher.module.backbone,
                                        self.fabric.device)
            row.update({"knn/student_top1": measured["knn_top1_student"],
                        "knn/teacher_top1": measured["knn_top1_teacher"]})
        self.log.write(row, step=self.step - 1, epoch=epoch)
        self.epoch, self.batches_done = epoch + 1, 0
        self.save()
        self._call("on_epoch_end")

    # --- checkpoints -----------------------------------------------------------------
    def save(self) -> None:
        """The full training state at this batch boundary into ``checkpoints/last.ckpt``
        (rank 0 writes; every rank must call this)."""
        if self.fabric.is_global_zero:
            write_checkpoint(training_state(self), self.settings.checkpoint)
        self.fabric.barrier()

    def load(self, checkpoint: CheckpointInfo) -> None:
        """Continue from ``checkpoint`` (written by :meth:`save`, read by resmo.train.resume).
        Its memory-mapped contents are copied in and then dropped (``checkpoint.state`` is
        emptied), so no tensor of the run keeps the file mapped."""
        restore_training_state(self, checkpoint.state)
        checkpoint.state.clear()

    # --- helpers ---------------------------------------------------------------------
    def _any_rank(self, flag: bool) -> bool:
        """``flag`` OR-ed over all processes (a collective)."""
        return bool(all_reduce_max(torch.tensor(float(flag), device=self.fabric.device)))

    def _call(self, hook: str) -> None:
        for target in self.hooks:
            method = getattr(target, hook, None)
            if method is not None:
                method(self)
