"""What happens after a non-finite step: skip it (up to a budget) or stop with a checkpoint.

:class:`~resmo.train.module.PretrainModule` never applies a step whose loss terms or
gradients are NaN / infinite; it records the step as ``bad_step``. :class:`NonFiniteGuard`
then counts it:

- while at most ``train.max_bad_steps`` steps were bad, the step stays skipped (no weight,
  EMA, queue or BatchNorm-statistics change) with a warning;
- beyond that (the default budget is 0: the first bad step), it writes a checkpoint at this
  batch boundary (the weights of the last good step, checked to be finite) and stops the
  run with :class:`~resmo.train.stopping.RunStopped` naming the step and the term, e.g.
  ``loss term 'ssl' is nan at step 37 (epoch 2, batch 5)``. Continuing from that
  checkpoint goes on with the next batch (the bad one stays skipped).

Under ``16-mixed`` the gradient scaler skips steps whose gradients overflow and lowers
its scale: normal while the scale settles, so such steps are counted
(``scaler_skipped_steps``, in checkpoints, logs and ``summary.json``) but do not use the
budget. More than ``train.max_scaler_skips_in_a_row`` of them in a row means the loss scale
collapsed (the weights are frozen): the run stops as above.

The list of skipped steps is saved in checkpoints and reported in ``summary.json``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import lightning.pytorch as pl

from resmo.train.finite import tensors_finite
from resmo.train.stopping import RunStopped, existing, save_boundary_checkpoint

EXIT_CODE = 1


class NonFiniteGuard(pl.Callback):
    def __init__(self, checkpoint_path: str | os.PathLike, *, max_bad_steps: int = 0,
                 max_scaler_skips_in_a_row: int = 24) -> None:
        self.checkpoint_path = Path(checkpoint_path)
        self.max_bad_steps = max_bad_steps
        self.max_scaler_skips_in_a_row = max_scaler_skips_in_a_row
        self.bad_steps: list[dict] = []
        self.scaler_skipped_steps = 0
        self.scaler_skips_in_a_row = 0
        self._pending: RunStopped | None = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs, batch, batch_idx: int) -> None:
        check = pl_module.check
        self._count_scaler_skip(trainer, pl_module, check.scaler_skipped)
        bad = check.bad
        if bad is None:
            return
        self.bad_steps.append(bad.as_dict())
        pl_module.log("train/skipped_steps", float(len(self.bad_steps)), on_step=True, on_epoch=False)
        if len(self.bad_steps) <= self.max_bad_steps:
            if trainer.is_global_zero:
                warnings.warn(
                    f"skipped a step: {bad.describe()} ({len(self.bad_steps)} of at most "
                    f"{self.max_bad_steps} bad steps, train.max_bad_steps)", stacklevel=2,
                )
            return
        self._pending = self._stop(trainer, pl_module, bad)

    def _count_scaler_skip(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           skipped: bool) -> None:
        if not skipped:
            self.scaler_skips_in_a_row = 0
            return
        self.scaler_skipped_steps += 1
        self.scaler_skips_in_a_row += 1
        pl_module.log("train/scaler_skipped_steps", float(self.scaler_skipped_steps),
                      on_step=True, on_epoch=False)
        if self.scaler_skips_in_a_row > self.max_scaler_skips_in_a_row and self._pending is None:
            self._pending = self._stop_collapsed(trainer, pl_module)

    def _stop_collapsed(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> RunStopped:
        checkpoint = save_boundary_checkpoint(trainer, self.checkpoint_path)
        message = (
            f"stopped: the fp16 gradient scaler skipped {self.scaler_skips_in_a_row} steps in a row "
            f"(gradients overflow at every loss scale; more than "
            f"train.max_scaler_skips_in_a_row={self.max_scaler_skips_in_a_row}) at step "
            f"{trainer.global_step - 1}; checkpoint of the last applied step: {checkpoint}. "
            "Use --precision bf16-mixed or 32-true, or lower optimizer.lr, then continue with --resume auto"
        )
        return RunStopped(message, exit_code=EXIT_CODE, reason="non-finite",
                          checkpoint=checkpoint, step=trainer.global_step - 1)

    def _stop(self, trainer: pl.Trainer, pl_module: pl.LightningModule, bad) -> RunStopped:
        weights_ok = tensors_finite(pl_module.state_dict().values())
        if weights_ok:
            checkpoint = save_boundary_checkpoint(trainer, self.checkpoint_path)
            kept = f"checkpoint of the last good step: {checkpoint} (finite weights)"
        else:  # should not happen (bad steps are never applied); keep the older file
            checkpoint = existing(self.checkpoint_path)
            kept = f"weights are not finite, not saved; last good checkpoint: {checkpoint or 'none'}"
        budget = (f"more than train.max_bad_steps={self.max_bad_steps} bad steps"
                  if self.max_bad_steps else "train.max_bad_steps=0")
        message = (
            f"stopped: {bad.describe()} ({budget}); {kept}; the bad step was not applied. "
            "Lower optimizer.lr, check the data, or set train.max_bad_steps=N to skip up to N "
            "such steps, then continue with --resume auto"
        )
        return RunStopped(message, exit_code=EXIT_CODE, reason="non-finite",
                          checkpoint=checkpoint, step=bad.step)

    def _raise_pending(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            raise pending

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._raise_pending()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._raise_pending()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._raise_pending()

    def state_dict(self) -> dict:
        return {"bad_steps": list(self.bad_steps), "scaler_skipped_steps": self.scaler_skipped_steps,
                "scaler_skips_in_a_row": self.scaler_skips_in_a_row}

    def load_state_dict(self, state_dict: dict) -> None:
        self.bad_steps = list(state_dict.get("bad_steps", []))
        self.scaler_skipped_steps = int(state_dict.get("scaler_skipped_steps", 0))
        self.scaler_skips_in_a_row = int(state_dict.get("scaler_skips_in_a_row", 0))
