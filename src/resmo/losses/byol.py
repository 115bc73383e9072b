"""BYOL's normalised regression (Grill et al. 2020, Eq. 2).

    loss = mean_i || normalize(p_i) - normalize(z_i) ||^2 = mean_i (2 - 2 cos(p_i, z_i))

computed in float32 even under autocast (:mod:`resmo.precision`): the loss approaches 0
as training converges, where bfloat16 cosines have no resolution left.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from resmo.precision import at_least_float32, autocast_off


def byol_regression(prediction: torch.Tensor, *, target: torch.Tensor) -> torch.Tensor:
    """Mean of ``2 - 2 cos(prediction, target)`` over the batch."""
    with autocast_off(prediction.device):
        cosine = F.cosine_similarity(at_least_float32(prediction), at_least_float32(target), dim=-1)
        return (2.0 - 2.0 * cosine).mean()
