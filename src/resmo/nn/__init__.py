"""Heads and encoders: the MLP builder, per-paper presets, ``Encoder(backbone, projector)``
and DenseCL's ``DenseEncoder``."""

from resmo.nn.dense import (
    DenseEncoder,
    DenseEncoderOutput,
    densecl_dense_projector,
    densecl_projector,
)
from resmo.nn.encoder import Encoder, EncoderOutput
from resmo.nn.heads import (
    DinoHead,
    PrototypeLayer,
    byol_predictor,
    byol_projector,
    moco_v2_projector,
    moco_v3_predictor,
    moco_v3_projector,
)
from resmo.nn.mlp import build_mlp

__all__ = [
    "DenseEncoder", "DenseEncoderOutput", "DinoHead", "Encoder", "EncoderOutput", "PrototypeLayer",
    "build_mlp", "byol_predictor", "byol_projector", "densecl_dense_projector", "densecl_projector",
    "moco_v2_projector", "moco_v3_predictor", "moco_v3_projector",
]
