"""The progress bar of ``resmo pretrain`` (rank 0, on stdout): one tqdm bar per epoch,
``Epoch 2/3: 40%| 8/20 [..., loss=4.110]``.

Epochs are counted from 1, with the total, as in resmo's stop and resume messages
(resmo.train.resume.describe_position). Lightning's own bar counts from 0 and, in an
epoch resumed mid-way (where Lightning starts no new epoch), shows ``Training: 6/?``;
this one opens the bar at the first batch of such an epoch, at the batch it resumes from.
"""

from __future__ import annotations

import math
import sys

import lightning.pytorch as pl
from tqdm import tqdm


class EpochProgressBar(pl.Callback):
    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._open(trainer, done=0)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if self.bar is None and trainer.is_global_zero:  # an epoch resumed mid-way
            self._open(trainer, done=batch_idx)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if self.bar is None:
            return
        if trainer.global_step % trainer.log_every_n_steps == 0:  # the module logs the loss then only
            loss = trainer.progress_bar_metrics.get("loss")
            if loss is not None:
                self.bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)
        self.bar.update(batch_idx + 1 - self.bar.n)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._close()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._close()

    def _open(self, trainer: pl.Trainer, *, done: int) -> None:
        self._close()
        if not trainer.is_global_zero:
            return
        total = trainer.num_training_batches
        self.bar = tqdm(
            total=None if math.isinf(total) else int(total), initial=done, file=sys.stdout,
            desc=f"Epoch {trainer.current_epoch + 1}/{trainer.max_epochs}", dynamic_ncols=True,
            smoothing=0, leave=True,
        )

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
