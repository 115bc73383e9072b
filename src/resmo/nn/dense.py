"""DenseCL's encoder (Wang et al., CVPR 2021, "Dense Contrastive Learning", Sec. 3.2): one
backbone, a global and a dense projection head in parallel.

For images ``x`` and a backbone with a spatial last stage (``feature_map`` / ``pool``, see
:mod:`resmo.backbones.registry`), with ``F = feature_map(x)`` of shape ``[B, C, h, w]``:

    features     = avgpool(F)                                   [B, C]
    projection   = Linear(C, H) -> ReLU -> Linear(H, D)  (features)          [B, D]
    dense        = Conv1x1(C, H) -> ReLU -> Conv1x1(H, D)  (F), flattened     [B, D, h*w]
    dense_pooled = avgpool(dense)                                              [B, D]

as the ``DenseCLNeck`` of WXinlong/DenseCL ``openselfsup/models/necks.py`` (``mlp``, ``mlp2``,
``avgpool2``; its ``num_grid=None``, the reference setting, keeps the backbone's grid). The
global head's linear layers start from Kaiming-normal weights (fan-in, ReLU gain) and zero
biases, as ``DenseCL.init_weights`` does (``encoder_q[1].init_weights(init_linear='kaiming')``,
which touches ``nn.Linear`` only); the 1x1 convolutions keep torch's default initialisation,
as there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from resmo.nn.encoder import EncoderOutput
from resmo.nn.mlp import build_mlp
from resmo.validation import check_positive_int


@dataclass
class DenseEncoderOutput(EncoderOutput):
    """:class:`EncoderOutput` plus the spatial tensors of DenseCL (see the module docstring)."""

    feature_map: torch.Tensor
    dense: torch.Tensor
    dense_pooled: torch.Tensor


def densecl_projector(in_dim: int, hidden_dim: int = 2048, out_dim: int = 128) -> nn.Sequential:
    """The global head: ``Linear -> ReLU -> Linear`` with biases, Kaiming-normal weights."""
    mlp = build_mlp(in_dim, hidden_dim, out_dim, layers=2, hidden_batch_norm=False)
    for module in mlp.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return mlp


def densecl_dense_projector(in_dim: int, hidden_dim: int = 2048, out_dim: int = 128) -> nn.Sequential:
    """The dense head: ``Conv1x1 -> ReLU -> Conv1x1`` with biases, applied at every position."""
    for name, value in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
        check_positive_int(name, value)
    return nn.Sequential(
        nn.Conv2d(in_dim, hidden_dim, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden_dim, out_dim, 1)
    )


class DenseEncoder(nn.Module):
    """``images -> DenseEncoderOutput``: the part of DenseCL that the teacher copies."""

    def __init__(self, backbone: nn.Module, projector: nn.Module, dense_projector: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector
        self.dense_projector = dense_projector

    def forward(self, images: torch.Tensor) -> DenseEncoderOutput:
        feature_map = self.backbone.feature_map(images)
        features = self.backbone.pool(feature_map)
        dense = self.dense_projector(feature_map)
        return DenseEncoderOutput(
            features=features,
            projection=self.projector(features),
            feature_map=feature_map,
            dense=dense.flatten(2),
            dense_pooled=F.adaptive_avg_pool2d(dense, 1).flatten(1),
        )
