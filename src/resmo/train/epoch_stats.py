"""What the loop counts over an epoch, kept in checkpoints so that a resumed run reports the
same numbers as one never stopped.

- :class:`EpochMeans`: running sums of each applied step's loss terms and gaps, on the
  device (no host read per step); their means over the whole last epoch go into
  ``metrics.csv`` (``<name>_epoch``) and ``summary.json``, interrupted or not. Skipped
  (non-finite) steps are not counted.
- :class:`Throughput`: training images per second per epoch (all processes together).
"""

from __future__ import annotations

import time

import torch


class EpochMeans:
    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.last_epoch: dict[str, float] = {}

    def reset(self) -> None:
        self.sums, self.count = {}, 0

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            value = value.detach().float()
            total = self.sums.get(name)
            self.sums[name] = value.clone() if total is None else total.to(value.device) + value
        self.count += 1

    def end_epoch(self) -> dict[str, float]:
        self.last_epoch = self.means()
        return self.last_epoch

    def means(self) -> dict[str, float]:
        """Mean of each value over the applied steps of the current epoch so far."""
        return {name: float(total) / self.count for name, total in self.sums.items()} if self.count else {}

    def state_dict(self) -> dict:
        return {"sums": {name: float(total) for name, total in self.sums.items()},
                "count": self.count, "last_epoch": dict(self.last_epoch)}

    def load_state_dict(self, state: dict) -> None:
        self.sums = {name: torch.tensor(total, dtype=torch.float32) for name, total in state["sums"].items()}
        self.count = int(state["count"])
        self.last_epoch = dict(state["last_epoch"])


class Throughput:
    def __init__(self) -> None:
        self.per_epoch: list[float] = []
        self.images = 0  # trained on in the current (or last) epoch, all processes
        self._start, self._seconds = 0.0, 0.0  # the epoch's start; its seconds in a loaded state

    def start(self, *, resumed: bool = False) -> None:
        """The epoch starts (``resumed``: continues, from a checkpoint, with the images and
        seconds counted before it)."""
        if resumed:
            self._start = time.perf_counter() - self._seconds
        else:
            self._start, self.images = time.perf_counter(), 0

    def add(self, images: int) -> None:
        self.images += images

    def end_epoch(self) -> float | None:
        """This epoch's images per second (``None`` when it trained no batch)."""
        seconds = time.perf_counter() - self._start
        if not self.images or seconds <= 0:
            return None
        self.per_epoch.append(self.images / seconds)
        return self.per_epoch[-1]

    def state_dict(self) -> dict:
        return {"per_epoch": list(self.per_epoch), "images": self.images,
                "seconds": time.perf_counter() - self._start}

    def load_state_dict(self, state: dict) -> None:
        self.per_epoch = list(state["per_epoch"])
        self.images, self._seconds = int(state["images"]), float(state["seconds"])
