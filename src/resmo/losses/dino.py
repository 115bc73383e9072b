"""DINO's cross-entropy with centring and sharpening (Caron et al. 2021, Eq. 2-4).

For teacher views ``t`` (global crops) and student views ``s`` (all crops), with centre
``c``, teacher temperature ``tau_t`` and student temperature ``tau_s``:

    P_t = softmax((g_t - c) / tau_t),   log P_s = log_softmax(g_s / tau_s)
    loss = mean over pairs (t, s), s != t, of  mean_batch  -sum_k P_t[k] log P_s[k]

Student view ``j`` and teacher view ``j`` are the same crop for ``j < len(teacher_logits)``.
The centre is updated explicitly, after the optimizer step, by :class:`DinoCenter`:

    c <- m c + (1 - m) mean_batch(g_t)     (batch mean over all ranks and teacher views)

Logits, softmaxes and the loss are computed in float32 even under autocast, and the
centre is a float32 buffer updated from float32 means (:mod:`resmo.precision`): with tens
of thousands of prototypes and ``tau_t = 0.04``, 16-bit softmaxes and means are too coarse.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from resmo.distributed import all_reduce_mean
from resmo.precision import at_least_float32, autocast_off
from resmo.validation import check_unit_interval


def dino_cross_entropy(
    student_logits: Sequence[torch.Tensor],
    *,
    teacher_logits: Sequence[torch.Tensor],
    center: torch.Tensor,
    student_temperature: float,
    teacher_temperature: float,
) -> torch.Tensor:
    """DINO loss averaged over all (teacher view, other student view) pairs; the
    temperatures (> 0) are checked where they are read (resmo.methods.dino)."""
    with autocast_off(center.device):
        center = at_least_float32(center)
        targets = [
            F.softmax((at_least_float32(t.detach()) - center) / teacher_temperature, dim=-1)
            for t in teacher_logits
        ]
        log_probs = [
            F.log_softmax(at_least_float32(s) / student_temperature, dim=-1) for s in student_logits
        ]
        total, pairs = 0.0, 0
        for t_index, target in enumerate(targets):
            for s_index, log_prob in enumerate(log_probs):
                if s_index == t_index:
                    continue
                total = total + (-(target * log_prob).sum(dim=-1)).mean()
                pairs += 1
    if pairs == 0:
        raise ValueError("DINO needs at least two views")
    return total / pairs


class DinoCenter(nn.Module):
    """The running centre of teacher outputs; saved in the state dict."""

    def __init__(self, dim: int, momentum: float = 0.9) -> None:
        super().__init__()
        self.momentum = check_unit_interval("center_momentum", momentum)
        self.register_buffer("center", torch.zeros(1, dim, dtype=torch.float32))

    @torch.no_grad()
    def update(self, teacher_logits: Sequence[torch.Tensor]) -> None:
        """``c <- m c + (1 - m) * batch mean of teacher logits`` (all ranks), in float32."""
        with autocast_off(self.center.device):
            logits = torch.cat([at_least_float32(t.detach()) for t in teacher_logits])
            batch_mean = all_reduce_mean(logits.mean(dim=0, keepdim=True))
            self.center.mul_(self.momentum).add_(batch_mean, alpha=1.0 - self.momentum)
