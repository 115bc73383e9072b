"""Float32 regions inside mixed precision.

Under ``torch.autocast`` (``bf16-mixed`` / ``16-mixed``) matrix products run in 16 bits.
That is fine for the backbone and the MLPs, not for the few numbers that decide the
loss: contrastive logits ``q @ k.T / tau`` with a small ``tau``, softmaxes over many
prototypes, cosines near 1. The losses compute those as

    with autocast_off(x.device):
        x = at_least_float32(x)
        ...

so they are float32 whatever the precision of the network (float64 stays float64), and
the numbers of a float32 run are unchanged.
"""

from __future__ import annotations

import contextlib

import torch


def autocast_off(device: torch.device) -> contextlib.AbstractContextManager:
    """A region where autocast is disabled on ``device``'s type; ops run in their inputs'
    dtypes. Devices without autocast (``meta``) get a no-op context."""
    if not torch.amp.is_autocast_available(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, enabled=False)


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 if it is a 16-bit float, else unchanged (no copy)."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))
