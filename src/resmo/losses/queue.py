"""MoCo's queue of negative keys (He et al. 2020, Sec. 3.2).

A ring buffer of ``size`` L2-normalised keys, saved in the state dict together with its
write pointer, so a resumed run sees the same negatives. :meth:`enqueue` gathers keys
from all ranks first, so every rank holds the same queue.

With ``views=V`` the queue holds one ring per view, ``keys`` of shape ``[V, size, dim]``
sharing one pointer, as solo-learn's MoCo v2+ (vturrisi/solo-learn
``solo/methods/mocov2plus.py``: ``queue`` of shape ``(2, proj_output_dim, queue_size)``,
one ``queue_ptr``; here the key axis comes before the feature axis). :meth:`enqueue` then
takes ``[V, n, dim]`` and writes view ``v``'s ``n`` keys (all ranks, ``V * n * world``
values in one gather) to ring ``v``. Without ``views`` (default) ``keys`` is ``[size, dim]``
and :meth:`enqueue` takes ``[n, dim]``, as before.

The pointer advances deterministically, ``pointer <- (pointer + n) mod size`` for ``n``
gathered keys (per view), so it is tracked as a Python int and :meth:`enqueue` never reads
a tensor back from the device (no host synchronisation per step). The ``pointer`` buffer
mirrors it for checkpoints; loading a state dict (of the queue or of any module holding
it) sets the Python pointer from the loaded buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resmo.distributed import all_gather_no_grad
from resmo.precision import at_least_float32, autocast_off
from resmo.validation import check_positive_int


class MoCoQueue(nn.Module):
    def __init__(self, dim: int, size: int, *, views: int | None = None) -> None:
        super().__init__()
        check_positive_int("queue_size", size)
        shape = (size, dim) if views is None else (check_positive_int("queue views", views), size, dim)
        self.views = views
        self.register_buffer("keys", F.normalize(torch.randn(shape), dim=-1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self._next = 0  # the write position; ``pointer`` holds the same value

    @property
    def size(self) -> int:
        """Keys per ring (per view when the queue has a view axis)."""
        return self.keys.shape[-2]

    def view_keys(self, view: int) -> torch.Tensor:
        """The ``[size, dim]`` ring of ``view`` (the whole queue without a view axis)."""
        return self.keys if self.views is None else self.keys[view]

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write normalised ``keys`` (gathered from all ranks) at the pointer, wrapping.

        ``keys``: ``[n, dim]``, or ``[views, n, dim]`` for a queue with a view axis.
        """
        keys = keys.detach()
        if self.views is None:
            keys = all_gather_no_grad(keys)
        else:
            if keys.ndim != 3 or keys.shape[0] != self.views:
                raise ValueError(
                    f"a queue of {self.views} views takes keys [{self.views}, n, dim], got "
                    f"{tuple(keys.shape)}"
                )
            # one gather of [n, V, dim] (ranks concatenated on dim 0), back to [V, world * n, dim]
            keys = all_gather_no_grad(keys.transpose(0, 1).contiguous()).transpose(0, 1)
        keys = keys[..., -self.size :, :]
        with autocast_off(keys.device):
            keys = F.normalize(at_least_float32(keys), dim=-1).to(self.keys.dtype)
        start, count = self._next, keys.shape[-2]
        head = min(count, self.size - start)  # slots start .. start + head - 1, then wrap to 0
        self.keys[..., start : start + head, :] = keys[..., :head, :]
        self.keys[..., : count - head, :] = keys[..., head:, :]
        self._next = (start + count) % self.size
        self.pointer.fill_(self._next)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # called for this module by every ``load_state_dict``, also a parent's
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if not self.pointer.is_meta:  # a meta buffer holds no value to read
            self._next = int(self.pointer)
