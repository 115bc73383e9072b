"""BYOL (Grill et al. 2020, Eq. 2 and symmetrised loss).

Student: backbone -> projector -> predictor; teacher: EMA copy of backbone and projector.

    L_ssl = || p_1 - z_2 ||^2_norm + || p_2 - z_1 ||^2_norm      (each = mean 2 - 2 cos)
"""

from __future__ import annotations

import torch
from torch import nn

from resmo.losses.byol import byol_regression
from resmo.losses.resmo import ResMoSettings
from resmo.methods.base import MomentumMethod, ViewOutputs, cross_view_pairs
from resmo.methods.registry import METHODS
from resmo.nn.encoder import Encoder
from resmo.nn.heads import byol_predictor, byol_projector


class BYOL(MomentumMethod):
    name = "byol"

    def ssl_loss(self, student: ViewOutputs, teacher: ViewOutputs, *, step: int) -> torch.Tensor:
        return sum(
            byol_regression(student.outputs[s], target=teacher.outputs[t])
            for s, t in cross_view_pairs(len(student.outputs), len(teacher.outputs))
        )


@METHODS.register("byol")
def byol(
    backbone: nn.Module,
    *,
    resmo: ResMoSettings | None = None,
    hidden_dim: int = 4096,
    out_dim: int = 256,
    predictor_hidden_dim: int = 4096,
    momentum: float = 0.99,
    **base_options,
) -> BYOL:
    projector = byol_projector(backbone.feature_dim, hidden_dim, out_dim)
    predictor = byol_predictor(out_dim, predictor_hidden_dim, out_dim)
    return BYOL(
        Encoder(backbone, projector), predictor=predictor, resmo=resmo, momentum=momentum,
        **base_options,
    )
