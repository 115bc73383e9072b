"""MoCo v3 (Chen, Xie, He 2021, Alg. 1).

Student: backbone -> projector (BN, last BN without affine) -> predictor. Teacher: EMA copy
of backbone and projector. For the two views, with in-batch negatives gathered from all
ranks:

    L_ssl = 2 tau * ( InfoNCE(q_1, k_2) + InfoNCE(q_2, k_1) )
"""

from __future__ import annotations

import torch
from torch import nn

from resmo.distributed import all_gather_no_grad, rank
from resmo.losses.infonce import info_nce
from resmo.losses.resmo import ResMoSettings
from resmo.methods.base import MomentumMethod, ViewOutputs, cross_view_pairs
from resmo.methods.registry import METHODS
from resmo.nn.encoder import Encoder
from resmo.nn.heads import moco_v3_predictor, moco_v3_projector
from resmo.validation import check_positive


class MoCoV3(MomentumMethod):
    name = "mocov3"

    def __init__(self, student: Encoder, *, predictor: nn.Module, temperature: float, **base_options):
        super().__init__(student, predictor=predictor, **base_options)
        self.temperature = check_positive("temperature", temperature)

    def ssl_loss(self, student: ViewOutputs, teacher: ViewOutputs, *, step: int) -> torch.Tensor:
        keys = [all_gather_no_grad(k) for k in teacher.outputs]
        offset = rank() * teacher.outputs[0].shape[0]
        loss = sum(
            info_nce(student.outputs[s], key=keys[t], temperature=self.temperature, key_offset=offset)
            for s, t in cross_view_pairs(len(student.outputs), len(keys))
        )
        return 2.0 * self.temperature * loss


@METHODS.register("mocov3")
def mocov3(
    backbone: nn.Module,
    *,
    resmo: ResMoSettings | None = None,
    hidden_dim: int = 4096,
    out_dim: int = 256,
    projector_layers: int = 2,
    predictor_hidden_dim: int = 4096,
    temperature: float = 0.2,
    momentum: float = 0.99,
    **base_options,
) -> MoCoV3:
    projector = moco_v3_projector(backbone.feature_dim, hidden_dim, out_dim, projector_layers)
    predictor = moco_v3_predictor(out_dim, predictor_hidden_dim, out_dim)
    return MoCoV3(
        Encoder(backbone, projector), predictor=predictor, temperature=temperature,
        resmo=resmo, momentum=momentum, **base_options,
    )
