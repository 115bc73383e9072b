"""``metrics.csv`` and TensorBoard events of a run, kept across a resume (rank 0 writes).

``metrics.csv`` has one row per logging call: ``epoch``, ``step`` and the values logged
then (``train/<term>_step`` every ``train.log_every_n_steps`` steps, ``<name>_epoch`` and
the kNN columns at epoch ends), the layout of Lightning's CSV logger that
:mod:`resmo.report` reads. A resumed run keeps the rows of steps before its checkpoint's
step (the ones the checkpoint already contains) and drops later ones (a run killed some
steps after its last checkpoint logs those steps again). Lightning's CSV loggers start the
file over, hence this writer; TensorBoard events go through Lightning Fabric's
``TensorBoardLogger`` (a resumed run appends a new event file that TensorBoard merges).
"""

from __future__ import annotations

import csv
from pathlib import Path

from lightning.fabric.loggers import TensorBoardLogger


class MetricsLog:
    def __init__(self, out: Path, *, keep_before_step: int | None = None, enabled: bool = True) -> None:
        self.path = Path(out) / "metrics.csv"
        self.enabled = enabled
        self.columns: list[str] = ["epoch", "step"]
        self.rows: list[dict] = []
        self.tensorboard = TensorBoardLogger(root_dir=out, name="tensorboard", version="") if enabled else None
        if enabled and keep_before_step is not None and self.path.is_file():
            with open(self.path, newline="") as file:
                reader = csv.DictReader(file)
                self.columns = list(reader.fieldnames or self.columns)
                self.rows = [row for row in reader if _step(row) < keep_before_step]
            self._rewrite()

    def write(self, values: dict[str, float], *, step: int, epoch: int) -> None:
        """One row of ``values`` at ``step``; the file gains a column for a new name."""
        if not self.enabled or not values:
            return
        row = {"epoch": epoch, "step": step, **values}
        self.rows.append(row)
        new = [name for name in row if name not in self.columns]
        if new:
            self.columns = ["epoch", "step", *sorted(set(self.columns[2:]) | set(new))]
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as file:
                csv.DictWriter(file, fieldnames=self.columns).writerow(row)
        self.tensorboard.log_metrics(values, step=step)

    def close(self, status: str = "success") -> None:
        if self.tensorboard is not None:
            self.tensorboard.finalize(status)

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows(self.rows)


def _step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or "inf")
    except ValueError:
        return float("inf")
