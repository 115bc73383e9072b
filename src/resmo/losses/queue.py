"""MoCo's queue of negative keys (He et al. 2020, Sec. 3.2).

A ring buffer of ``size`` L2-normalised keys, saved in the state dict together with its
write pointer, so a resumed run sees the same negatives. :meth:`enqueue` gathers keys
from all ranks first, so every rank holds the same queue.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resmo.distributed import all_gather_no_grad
from resmo.validation import check_positive_int


class MoCoQueue(nn.Module):
    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        check_positive_int("queue_size", size)
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write normalised ``keys`` (gathered from all ranks) at the pointer, wrapping."""
        keys = F.normalize(all_gather_no_grad(keys.detach()), dim=1).to(self.keys.dtype)
        keys = keys[-self.size :]
        start = int(self.pointer)
        positions = (torch.arange(keys.shape[0], device=keys.device) + start) % self.size
        self.keys[positions] = keys
        self.pointer.fill_((start + keys.shape[0]) % self.size)
