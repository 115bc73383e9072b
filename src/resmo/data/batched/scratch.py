"""Reusable temporaries for the batched view ops.

On CPU, glibc hands large freed blocks back to the system, so a fresh multi-megabyte
tensor per step pays page faults every batch; reusing a few named buffers removes that
cost (it was more than half of the view-generation time at 32 px). On GPU the caching
allocator makes this unnecessary but harmless.
"""

from __future__ import annotations

import torch


class Scratch:
    """Named temporaries reused from call to call (fresh ones when shapes change).

    Not shared between threads; dropped when pickled or copied.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        buffer = self._buffers.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != like.dtype or buffer.device != like.device:
            buffer = torch.empty(shape, dtype=like.dtype, device=like.device)
            self._buffers[name] = buffer
        return buffer

    def __getstate__(self) -> dict:
        return {"_buffers": {}}


def temp(scratch: Scratch | None, name: str, shape, like: torch.Tensor) -> torch.Tensor:
    if scratch is None:
        return torch.empty(shape, dtype=like.dtype, device=like.device)
    return scratch.get(name, tuple(shape), like)
