"""Encoder = backbone -> projector, the part that the teacher copies."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncoderOutput:
    """Per-view tensors of one encoder: backbone ``features`` and head ``projection``."""

    features: torch.Tensor
    projection: torch.Tensor


class Encoder(nn.Module):
    """``images -> EncoderOutput(features=backbone(images), projection=projector(features))``."""

    def __init__(self, backbone: nn.Module, projector: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.projector = projector

    def forward(self, images: torch.Tensor) -> EncoderOutput:
        features = self.backbone(images)
        return EncoderOutput(features=features, projection=self.projector(features))
