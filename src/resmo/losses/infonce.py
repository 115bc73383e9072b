"""InfoNCE (van den Oord et al. 2018) as used by MoCo.

With ``q = normalize(query)``, ``k = normalize(key)`` and temperature ``tau``:

- in-batch negatives (MoCo v3, Chen et al. 2021, Alg. 1): ``logits = q @ k.T / tau`` and
  row ``i``'s positive is key ``i + key_offset`` (``key`` may hold the keys of all ranks);
- queue negatives (MoCo v2, He et al. 2020, Alg. 1): ``logits = [q_i . k_i, q_i @ queue.T] / tau``
  and the positive is column 0;

    loss = mean_i  -log softmax(logits_i)[positive_i]

The logits and the loss are computed in float32 even under autocast (a 16-bit ``q @ k.T``
divided by a small ``tau`` loses most of the logits' resolution); see :mod:`resmo.precision`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from resmo.precision import at_least_float32, autocast_off


def info_nce(
    query: torch.Tensor,
    *,
    key: torch.Tensor,
    temperature: float,
    queue: torch.Tensor | None = None,
    normalize_queue: bool = True,
    key_offset: int = 0,
) -> torch.Tensor:
    """Mean InfoNCE loss of ``query`` [B, D] against ``key`` and optional ``queue`` [K, D].

    ``normalize_queue=False`` uses ``queue`` as it is: its rows must then be unit vectors,
    which :class:`~resmo.losses.queue.MoCoQueue` guarantees (it stores normalised keys),
    and no ``K x D`` normalisation runs at each step. ``temperature`` > 0 is checked where
    the setting is read (the method's constructor).
    """
    with autocast_off(query.device):
        q = F.normalize(at_least_float32(query), dim=1)
        k = F.normalize(at_least_float32(key), dim=1)
        if queue is None:
            logits = q @ k.T / temperature
            labels = torch.arange(q.shape[0], device=q.device) + key_offset
        else:
            negatives = at_least_float32(queue)
            if normalize_queue:
                negatives = F.normalize(negatives, dim=1)
            positives = (q * k).sum(dim=1, keepdim=True)
            logits = torch.cat([positives, q @ negatives.T], dim=1) / temperature
            labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, labels)
