"""A check that every process ends with the same teacher and method state.

Under DDP the student is kept in sync by gradient all-reduce, the teacher by being an EMA
of identical students, the MoCo queue by enqueuing keys gathered from all ranks and the
DINO centre by an all-reduced mean. At the end of training :func:`check_ranks` gathers, from
every rank, ``fingerprint = (sum, sum of squares)`` in float64 over the tensors of

- ``teacher``: the teacher's parameters and buffers;
- ``state``: the whole method state dict (student, teacher, queue, centre);

so a silent divergence shows up in ``summary.json`` (``ranks_consistent``) and as a warning.

Buffers (BatchNorm running statistics, queue, centre) are first broadcast from rank 0
(DDP runs with ``broadcast_buffers=False``, see resmo.train.pretrain): the teacher's and
student's own forward passes update running statistics from each rank's local batch, so
without this the final statistics would differ. The broadcast is one collective per dtype
of all buffers flattened together, on the device (no pickled objects). Parameters are never
broadcast: they must already agree, and the check verifies it. The fingerprints are summed
on the device and gathered as one tensor.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn

from resmo.distributed import all_gather_no_grad, broadcast_tensors_, rank, world_size


def fingerprint(module_or_state: nn.Module | dict[str, torch.Tensor]) -> torch.Tensor:
    """``[sum, sum of squares]`` in float64 over all floating-point tensors, on their device."""
    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    sums = [
        torch.stack([values.sum(), (values * values).sum()])
        for values in (t.detach().double() for t in state.values() if t.is_floating_point())
    ]
    return torch.stack(sums).sum(dim=0) if sums else torch.zeros(2, dtype=torch.float64)


@dataclass
class RankCheck:
    """``fingerprints``: ``{"teacher": [[sum, sum of squares] per rank], "state": [...]}``."""

    consistent: bool
    fingerprints: dict[str, list[list[float]]]


@torch.no_grad()
def check_ranks(method: nn.Module, device: torch.device) -> RankCheck:
    """Broadcast rank 0's buffers, then compare every rank's fingerprints (a collective;
    ``device``: where the process group's tensors live)."""
    broadcast_tensors_(list(method.buffers()), src=0)
    local = torch.stack([fingerprint(method.teacher), fingerprint(method)]).to(device)
    gathered = all_gather_no_grad(local).reshape(-1, 2, 2).cpu()
    fingerprints = {"teacher": gathered[:, 0].tolist(), "state": gathered[:, 1].tolist()}
    consistent = bool(torch.allclose(gathered, gathered[:1].expand_as(gathered), rtol=1e-9, atol=0))
    if not consistent and rank() == 0:
        warnings.warn(f"teacher or method state differs across the {world_size()} processes: "
                      f"{fingerprints}", stacklevel=2)
    return RankCheck(consistent, fingerprints)
