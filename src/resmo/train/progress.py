"""The progress bar of ``resmo pretrain`` (rank 0, on stdout): one tqdm bar per epoch,
``Epoch 2/3: 40%| 8/20 [..., loss=4.110]``.

Epochs are counted from 1, with the total, as in resmo's stop and resume messages
(resmo.train.resume.describe_position); an epoch resumed mid-way opens at the batch it
resumes from, with the epoch's total.
"""

from __future__ import annotations

import sys

from tqdm import tqdm


class EpochProgress:
    """Draws the bar when ``enabled`` (rank 0 with ``train.progress_bar``); else does nothing."""

    def __init__(self, *, enabled: bool, epochs: int, steps_per_epoch: int) -> None:
        self.enabled, self.epochs, self.steps_per_epoch = enabled, epochs, steps_per_epoch
        self.bar: tqdm | None = None

    def open(self, epoch: int, done: int) -> None:
        """A bar for epoch ``epoch`` (from 0) with ``done`` of its batches already trained."""
        self.close()
        if self.enabled:
            self.bar = tqdm(total=self.steps_per_epoch, initial=done, file=sys.stdout,
                            desc=f"Epoch {epoch + 1}/{self.epochs}", dynamic_ncols=True,
                            smoothing=0, leave=True)

    def update(self, done: int, loss: float | None = None) -> None:
        if self.bar is None:
            return
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
