"""A check that every process ends with the same teacher and method state.

Under DDP the student is kept in sync by gradient all-reduce, the teacher by being an EMA
of identical students, the MoCo queue by enqueuing keys gathered from all ranks and the
DINO centre by an all-reduced mean. At the end of training this callback gathers, from
every rank, ``fingerprint = (sum, sum of squares)`` in float64 over the tensors of

- ``teacher``: the teacher's parameters and buffers;
- ``state``: the whole method state dict (student, teacher, queue, centre);

so a silent divergence shows up in ``summary.json`` (``ranks_consistent``) and as a warning.

Buffers (BatchNorm running statistics, queue, centre) are first broadcast from rank 0, as
DDP itself does before every forward pass: the teacher's and student's own forward passes
update running statistics from each rank's local batch, so without this the final
statistics would differ by the last step's batches. Parameters are never broadcast: they
must already agree, and the check verifies it.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch import nn


def fingerprint(module_or_state: nn.Module | dict[str, torch.Tensor]) -> torch.Tensor:
    """``[sum, sum of squares]`` in float64 over all floating-point tensors."""
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    total = torch.zeros(2, dtype=torch.float64)
    for tensor in state.values():
        if tensor.is_floating_point():
            values = tensor.detach().to("cpu", torch.float64)
            total += torch.stack([values.sum(), (values * values).sum()])
    return total


class RankConsistencyCheck(pl.Callback):
    def __init__(self) -> None:
        self.fingerprints: dict[str, list[list[float]]] = {}
        self.consistent: bool | None = None

    @torch.no_grad()
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        method = pl_module.method
        if trainer.world_size > 1:
            for buffer in method.buffers():
                buffer.copy_(trainer.strategy.broadcast(buffer, src=0))
        local = torch.stack([fingerprint(method.teacher), fingerprint(method)]).to(pl_module.device)
        gathered = trainer.strategy.all_gather(local).reshape(-1, 2, 2).cpu()
        self.fingerprints = {
            "teacher": gathered[:, 0].tolist(),
            "state": gathered[:, 1].tolist(),
        }
        self.consistent = bool(torch.allclose(gathered, gathered[:1].expand_as(gathered), rtol=1e-9, atol=0))
        if not self.consistent and trainer.is_global_zero:
            warnings.warn(
                f"teacher or method state differs across the {trainer.world_size} processes: "
                f"{self.fingerprints}", stacklevel=2,
            )
