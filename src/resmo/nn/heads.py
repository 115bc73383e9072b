"""Projector and predictor presets, one per paper.

Each preset returns a fresh module; sizes default to the papers' ImageNet values and can be
shrunk for small runs.

- MoCo v2 (Chen et al., 2020): 2-layer MLP, no BN, ReLU, 2048 -> 128 (solo-learn's
  MoCo v2+ uses 2048 -> 256).
- MoCo v3 (Chen, Xie, He 2021; facebookresearch/moco-v3 ``moco/builder.py``,
  ``MoCo._build_mlp`` and ``_build_projector_and_predictor_mlps``): projector 2 layers for
  ResNets (``MoCo_ResNet``), 3 for ViTs (``MoCo_ViT``), hidden 4096, out 256, BN after every
  layer, last BN without affine; predictor 2 layers 256 -> 4096 -> 256, BN after the hidden
  layer, and for ViTs also a last BN without affine (``last_batch_norm=True``; the
  ResNet predictor is built with ``last_bn=False``).
- BYOL (Grill et al., 2020): projector and predictor Linear(4096) -> BN -> ReLU -> Linear(256).
- DINO (Caron et al., 2021): 3-layer GELU MLP 2048 -> 256 bottleneck, L2-normalised, then a
  weight-normalised linear layer to K prototypes with its norm fixed to 1. The normalisation
  and the prototype layer run in float32 even under autocast (:mod:`resmo.precision`): the
  logits feed softmaxes with temperatures down to 0.04.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resmo.nn.mlp import build_mlp
from resmo.precision import at_least_float32, autocast_off
from resmo.validation import check_positive_int


def moco_v2_projector(in_dim: int, hidden_dim: int = 2048, out_dim: int = 256) -> nn.Module:
    return build_mlp(in_dim, hidden_dim, out_dim, layers=2, hidden_batch_norm=False)


def moco_v3_projector(
    in_dim: int, hidden_dim: int = 4096, out_dim: int = 256, layers: int = 2
) -> nn.Module:
    return build_mlp(
        in_dim, hidden_dim, out_dim, layers=layers, last_batch_norm=True, last_affine=False
    )


def moco_v3_predictor(
    in_dim: int = 256, hidden_dim: int = 4096, out_dim: int = 256, *, last_batch_norm: bool = False
) -> nn.Module:
    """2-layer predictor; ``last_batch_norm=True`` ends it in a BN without affine (ViT)."""
    return build_mlp(
        in_dim, hidden_dim, out_dim, layers=2, last_batch_norm=last_batch_norm, last_affine=False
    )


def byol_projector(in_dim: int, hidden_dim: int = 4096, out_dim: int = 256) -> nn.Module:
    return build_mlp(in_dim, hidden_dim, out_dim, layers=2)


def byol_predictor(in_dim: int = 256, hidden_dim: int = 4096, out_dim: int = 256) -> nn.Module:
    return build_mlp(in_dim, hidden_dim, out_dim, layers=2)


class PrototypeLayer(nn.Module):
    """Linear map to prototypes with unit-norm rows: ``logits = x @ normalize(W).T``.

    Equivalent to DINO's ``weight_norm`` layer with the gain frozen at 1. Computed in (at
    least) float32, also under autocast.
    """

    def __init__(self, in_dim: int, num_prototypes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_prototypes, in_dim))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with autocast_off(x.device):
            return F.linear(at_least_float32(x), F.normalize(at_least_float32(self.weight), dim=1))


class DinoHead(nn.Module):
    """DINO head: MLP -> L2 normalise -> prototypes (Caron et al., 2021, Sec. 3.1)."""

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        num_prototypes: int = 65536,
        layers: int = 3,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        check_positive_int("num_prototypes", num_prototypes)
        self.mlp = build_mlp(
            in_dim, hidden_dim, bottleneck_dim, layers=layers,
            hidden_batch_norm=batch_norm, activation="gelu",
        )
        self.prototypes = PrototypeLayer(bottleneck_dim, num_prototypes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bottleneck = self.mlp(x)
        with autocast_off(bottleneck.device):
            return self.prototypes(F.normalize(at_least_float32(bottleneck), dim=-1))
