"""BYOL's normalised regression (Grill et al. 2020, Eq. 2).

    loss = mean_i || normalize(p_i) - normalize(z_i) ||^2 = mean_i (2 - 2 cos(p_i, z_i))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def byol_regression(prediction: torch.Tensor, *, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``2 - 2 cos(prediction, target)`` over the batch."""
    return (2.0 - 2.0 * F.cosine_similarity(prediction, target, dim=-1)).mean()
