"""Unreadable images during a run: counted per epoch, warned about, kept across resumes.

:class:`BadImageMonitor` watches the image datasets of a run (those with
``skipped_files`` / ``unreadable_paths``, i.e. :class:`~resmo.data.images.ImageFiles`):

- at each epoch end it logs ``data/skipped_images`` and, when the count grew, warns with
  the count and an example path, so a long run reports bad files as it meets them;
- its checkpoint state is the list of flagged paths, flagged again on resume, so counts
  and the replacement of bad samples do not start over after an interruption.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import lightning.pytorch as pl

from resmo.data.images import SkippedFiles


class BadImageMonitor(pl.Callback):
    def __init__(self, datasets: Iterable[object]) -> None:
        unique: dict[int, object] = {}
        for dataset in datasets:
            if dataset is not None and callable(getattr(dataset, "unreadable_paths", None)):
                unique.setdefault(id(dataset), dataset)
        self.datasets = list(unique.values())
        self.reported = 0

    def skipped(self) -> SkippedFiles:
        total = SkippedFiles()
        for dataset in self.datasets:
            total += dataset.skipped_files()
        return total

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.datasets:
            return
        skipped = self.skipped()
        pl_module.log("data/skipped_images", float(skipped.count), on_step=False, on_epoch=True,
                      rank_zero_only=True)
        if skipped.count > self.reported and trainer.is_global_zero:
            warnings.warn(f"{skipped.message()} so far (epoch {trainer.current_epoch + 1}); "
                          "set data.on_bad_image=error to stop at the first one", stacklevel=2)
        self.reported = skipped.count

    def state_dict(self) -> dict:
        paths = sorted({path for dataset in self.datasets for path in dataset.unreadable_paths()})
        return {"paths": paths, "reported": self.reported}

    def load_state_dict(self, state_dict: dict) -> None:
        paths = list(state_dict.get("paths", []))
        for dataset in self.datasets:
            dataset.mark_unreadable(paths)
        self.reported = int(state_dict.get("reported", 0))
