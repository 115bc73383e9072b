"""Per-epoch means of the logged loss terms and gaps that survive a mid-epoch resume.

Lightning's ``on_epoch=True`` means live in loop memory that checkpoints do not keep:
after resuming mid-epoch, ``train/loss_epoch`` averages only the steps after the resume.
:class:`EpochMeans` keeps running sums of the module's ``step_values`` (the terms and
gaps of each applied step) in its checkpoint state, so ``summary.json``'s final loss and
intra gap are those of the whole last epoch, interrupted or not. Sums stay on the device
(no synchronisation per step); skipped (non-finite) steps are not counted.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch


class EpochMeans(pl.Callback):
    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.last_epoch: dict[str, float] = {}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.sums, self.count = {}, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        values = getattr(pl_module, "step_values", None)
        if not values:
            return
        for name, value in values.items():
            value = value.detach().float()
            total = self.sums.get(name)
            self.sums[name] = value.clone() if total is None else total.to(value.device) + value
        self.count += 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.last_epoch = self.means()

    def means(self) -> dict[str, float]:
        """Mean of each value over the applied steps of the current epoch so far."""
        return {name: float(total) / self.count for name, total in self.sums.items()} if self.count else {}

    def state_dict(self) -> dict:
        return {"sums": {name: float(total) for name, total in self.sums.items()},
                "count": self.count, "last_epoch": dict(self.last_epoch)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.sums = {name: torch.tensor(total, dtype=torch.float32)
                     for name, total in state_dict.get("sums", {}).items()}
        self.count = int(state_dict.get("count", 0))
        self.last_epoch = dict(state_dict.get("last_epoch", {}))
