"""InfoNCE (van den Oord et al. 2018) as used by MoCo.

With ``q = normalize(query)``, ``k = normalize(key)`` and temperature ``tau``:

- in-batch negatives (MoCo v3, Chen et al. 2021, Alg. 1): ``logits = q @ k.T / tau`` and
  row ``i``'s positive is key ``i + key_offset`` (``key`` may hold the keys of all ranks);
- queue negatives (MoCo v2, He et al. 2020, Alg. 1): ``logits = [q_i . k_i, q_i @ queue.T] / tau``
  and the positive is column 0;

    loss = mean_i  -log softmax(logits_i)[positive_i]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from resmo.validation import check_positive


def info_nce(
    query: torch.Tensor,
    *,
    key: torch.Tensor,
    temperature: float,
    queue: torch.Tensor | None = None,
    key_offset: int = 0,
) -> torch.Tensor:
    """Mean InfoNCE loss of ``query`` [B, D] against ``key`` and optional ``queue`` [K, D]."""
    check_positive("temperature", temperature)
    q = F.normalize(query, dim=1)
    k = F.normalize(key, dim=1)
    if queue is None:
        logits = q @ k.T / temperature
        labels = torch.arange(q.shape[0], device=q.device) + key_offset
    else:
        positives = (q * k).sum(dim=1, keepdim=True)
        negatives = q @ F.normalize(queue, dim=1).T
        logits = torch.cat([positives, negatives], dim=1) / temperature
        labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels)
