"""The intra-representation gap between student and teacher on the same views.

    intra_gap = 1 - mean over views v and samples i of cos(s_v[i], t_v[i])

0 means the student reproduces the teacher on every view; it is computed from tensors a
training step already has, so it costs no forward pass. The cosines are computed in
(at least) float32, also under autocast (:mod:`resmo.precision`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from resmo.precision import at_least_float32, autocast_off


@torch.no_grad()
def intra_gap(student: Sequence[torch.Tensor], *, teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """``1 - mean cos(student[v], teacher[v])`` over views and batch (a 0-dim tensor)."""
    if len(student) != len(teacher) or not student:
        raise ValueError(
            f"intra gap pairs views one to one: got {len(student)} student and {len(teacher)} teacher views"
        )
    with autocast_off(student[0].device):
        cosines = [
            F.cosine_similarity(at_least_float32(s.detach()), at_least_float32(t.detach()), dim=-1)
            for s, t in zip(student, teacher, strict=True)
        ]
        return 1.0 - torch.cat(cosines).mean()
