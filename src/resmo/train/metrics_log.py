"""``metrics.csv`` that survives a resume.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts, so a run
continued with ``--resume`` would lose every row logged before the interruption.
:class:`ResumableCSVLogger` keeps those rows instead: the rows of steps before the
checkpoint's step (the ones the checkpoint already contains), while rows logged after
it (by a run killed some steps after its last checkpoint) are dropped, since the resumed
run logs those steps again. New rows are appended; a new column rewrites the header.
"""

from __future__ import annotations

import csv
import os

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class _KeepingExperimentWriter(ExperimentWriter):
    def __init__(self, log_dir: str, keep_before_step: int) -> None:
        self._keep_before_step = keep_before_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:  # called by __init__: keep, do not delete
        if not self._fs.isfile(self.metrics_file_path):
            return
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            header = list(reader.fieldnames or [])
            rows = [row for row in reader if _step(row) < self._keep_before_step]
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
        self.metrics_keys = header


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or "inf")
    except ValueError:
        return float("inf")


class ResumableCSVLogger(CSVLogger):
    """A ``CSVLogger`` that keeps the rows of steps ``< keep_before_step`` of an existing
    ``metrics.csv`` (``None``: Lightning's behaviour, the file starts over)."""

    def __init__(self, *args, keep_before_step: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keep_before_step = keep_before_step

    @property
    @rank_zero_experiment  # other ranks get a dummy and must not touch the file
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None and self.keep_before_step is not None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _KeepingExperimentWriter(os.fspath(self.log_dir), self.keep_before_step)
        return super().experiment
