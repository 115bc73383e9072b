"""DenseCL's dense contrastive loss ``L_r`` (Wang et al., CVPR 2021, Sec. 3.2 and 3.3).

For one image, the student's dense vectors ``r_i`` of view 1 (positions ``i = 1..S``), the
teacher's dense vectors ``t_j`` of view 2 and the backbone feature maps ``f^s_i`` (student,
view 1) and ``f^t_j`` (teacher, view 2):

    j*(i)  = argmax_j cos(f^s_i, f^t_j)                        (correspondence, Sec. 3.3)
    L_dense = mean_{images, i}  -log  exp(r_i . t_{j*(i)} / tau)
                                      / ( exp(r_i . t_{j*(i)} / tau) + sum_k exp(r_i . n_k / tau) )

with ``r``, ``t`` L2-normalised and ``n_k`` the dense queue's negatives; the mean runs over
all ``B * S`` positions, one cross-entropy row per position. A transcription of
WXinlong/DenseCL ``openselfsup/models/densecl.py`` (``DenseCL.forward_train``)::

    backbone_sim_matrix = torch.matmul(q_b.permute(0, 2, 1), k_b)     # q_b, k_b normalised
    densecl_sim_ind = backbone_sim_matrix.max(dim=2)[1]
    indexed_k_grid = torch.gather(k_grid, 2, densecl_sim_ind.unsqueeze(1).expand(...))
    l_pos_dense = (q_grid * indexed_k_grid).sum(1).view(-1, 1)
    l_neg_dense = q_grid (N*S^2 x C) @ queue2                          # then ContrastiveHead

The correspondence compares the *backbone* feature maps (not the projections) and carries no
gradient (an argmax). Computed in float32 even under autocast (:mod:`resmo.precision`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from resmo.losses.infonce import info_nce
from resmo.precision import at_least_float32, autocast_off


@torch.no_grad()
def dense_correspondence(student_map: torch.Tensor, *, teacher_map: torch.Tensor) -> torch.Tensor:
    """``j*(i)`` of the module docstring: ``[B, S_student]`` indices into the teacher's
    positions. The maps are ``[B, C, h, w]`` or already flattened ``[B, C, S]``."""
    if student_map.shape[:2] != teacher_map.shape[:2]:
        raise ValueError(
            f"dense correspondence needs maps of the same batch and channels, got "
            f"{tuple(student_map.shape)} and {tuple(teacher_map.shape)}"
        )
    with autocast_off(student_map.device):
        student = F.normalize(at_least_float32(student_map.detach()).flatten(2), dim=1)
        teacher = F.normalize(at_least_float32(teacher_map.detach()).flatten(2), dim=1)
        similarity = student.transpose(1, 2) @ teacher  # [B, S_student, S_teacher]
        return similarity.argmax(dim=2)


def positions_as_rows(grid: torch.Tensor) -> torch.Tensor:
    """``[B, D, S]`` (or ``[B, D, h, w]``) -> ``[B * S, D]``: one row per image and position,
    image-major (the reference's ``permute(0, 2, 1).reshape(-1, D)``)."""
    grid = grid.flatten(2)
    return grid.transpose(1, 2).reshape(-1, grid.shape[1])


def dense_info_nce(
    query: torch.Tensor,
    *,
    key: torch.Tensor,
    student_map: torch.Tensor,
    teacher_map: torch.Tensor,
    queue: torch.Tensor,
    temperature: float,
    normalize_queue: bool = True,
) -> torch.Tensor:
    """``L_dense`` of the module docstring.

    ``query``: the student's dense vectors ``[B, D, S]``; ``key``: the teacher's of the other
    view ``[B, D, S_t]`` (detached here); ``student_map`` / ``teacher_map``: the backbone maps
    of the same two views; ``queue``: ``[K, D]`` negatives (unit rows when
    ``normalize_queue=False``, as :class:`~resmo.losses.queue.MoCoQueue` keeps them).
    """
    index = dense_correspondence(student_map, teacher_map=teacher_map)
    key = key.detach().flatten(2)
    matched = torch.gather(key, 2, index.unsqueeze(1).expand(-1, key.shape[1], -1))
    return info_nce(
        positions_as_rows(query), key=positions_as_rows(matched), queue=queue,
        normalize_queue=normalize_queue, temperature=temperature,
    )
