"""Unreadable images of a run's image datasets (:class:`~resmo.data.images.ImageFiles`),
counted by the training loop at each epoch end with a warning when the count grew. The
flagged paths travel in checkpoints and are flagged again on resume, so counts and the
replacement of bad samples do not start over.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

from resmo.data.images import SkippedFiles


class BadImages:
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

    def end_epoch(self, epoch: int, *, warn: bool) -> int | None:
        """The count so far (``None`` without image datasets); warns when it grew."""
        if not self.datasets:
            return None
        skipped = self.skipped()
        if skipped.count > self.reported and warn:
            warnings.warn(f"{skipped.message()} so far (epoch {epoch + 1}); "
                          "set data.on_bad_image=error to stop at the first one", stacklevel=2)
        self.reported = skipped.count
        return skipped.count

    def state_dict(self) -> dict:
        paths = sorted({path for dataset in self.datasets for path in dataset.unreadable_paths()})
        return {"paths": paths, "reported": self.reported}

    def load_state_dict(self, state: dict) -> None:
        for dataset in self.datasets:
            dataset.mark_unreadable(list(state["paths"]))
        self.reported = int(state["reported"])
