"""MLP builder, per-paper presets and the encoder (src/resmo/nn)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resmo.nn import (
    DinoHead,
    Encoder,
    EncoderOutput,
    PrototypeLayer,
    build_mlp,
    byol_predictor,
    byol_projector,
    moco_v2_projector,
    moco_v3_predictor,
    moco_v3_projector,
)


def _layout(module: nn.Sequential) -> list[tuple]:
    """A comparable description of each layer: (type, sizes, bias / affine)."""
    rows = []
    for layer in module:
        if isinstance(layer, nn.Linear):
            rows.append(("Linear", layer.in_features, layer.out_features, layer.bias is not None))
        elif isinstance(layer, nn.BatchNorm1d):
            rows.append(("BN", layer.num_features, layer.affine))
        else:
            rows.append((type(layer).__name__,))
    return rows


def test_build_mlp_layout():
    assert _layout(build_mlp(8, 16, 4, layers=3)) == [
        ("Linear", 8, 16, False), ("BN", 16, True), ("ReLU",),
        ("Linear", 16, 16, False), ("BN", 16, True), ("ReLU",),
        ("Linear", 16, 4, True),
    ]
    assert _layout(build_mlp(8, 16, 4, layers=1)) == [("Linear", 8, 4, True)]
    assert _layout(build_mlp(8, 16, 4, layers=2, hidden_batch_norm=False, activation="gelu")) == [
        ("Linear", 8, 16, True), ("GELU",), ("Linear", 16, 4, True),
    ]


def test_moco_v2_projector_has_no_batch_norm():
    assert _layout(moco_v2_projector(8, 16, 4)) == [
        ("Linear", 8, 16, True), ("ReLU",), ("Linear", 16, 4, True),
    ]


def test_moco_v3_projector_last_bn_without_affine():
    assert _layout(moco_v3_projector(8, 16, 4)) == [
        ("Linear", 8, 16, False), ("BN", 16, True), ("ReLU",),
        ("Linear", 16, 4, False), ("BN", 4, False),
    ]
    # three layers for ViTs
    assert _layout(moco_v3_projector(8, 16, 4, layers=3)) == [
        ("Linear", 8, 16, False), ("BN", 16, True), ("ReLU",),
        ("Linear", 16, 16, False), ("BN", 16, True), ("ReLU",),
        ("Linear", 16, 4, False), ("BN", 4, False),
    ]
    # the last BN standardises every output dimension of a batch
    out = moco_v3_projector(8, 16, 4).train()(torch.randn(64, 8))
    torch.testing.assert_close(out.mean(dim=0), torch.zeros(4), rtol=0, atol=1e-5)
    torch.testing.assert_close(out.var(dim=0, unbiased=False), torch.ones(4), rtol=0, atol=1e-3)


def test_moco_v3_predictor_has_no_last_bn():
    layout = _layout(moco_v3_predictor(4, 16, 4))
    assert layout == [("Linear", 4, 16, False), ("BN", 16, True), ("ReLU",), ("Linear", 16, 4, True)]
    assert layout[-1][0] == "Linear"


@pytest.mark.parametrize("preset", [byol_projector, byol_predictor])
def test_byol_heads(preset):
    assert _layout(preset(8, 16, 4)) == [
        ("Linear", 8, 16, False), ("BN", 16, True), ("ReLU",), ("Linear", 16, 4, True),
    ]


def test_preset_defaults_are_the_papers_sizes():
    assert _layout(moco_v3_projector(2048))[0][2] == 4096 and _layout(moco_v3_projector(2048))[-1] == ("BN", 256, False)
    assert _layout(byol_projector(2048))[-1] == ("Linear", 4096, 256, True)
    assert _layout(moco_v2_projector(2048))[-1] == ("Linear", 2048, 256, True)


def test_prototype_rows_have_unit_norm():
    torch.manual_seed(0)
    layer = PrototypeLayer(4, 6)
    x = torch.randn(3, 4)
    expected = x @ F.normalize(layer.weight, dim=1).T
    torch.testing.assert_close(layer(x), expected)
    # rescaling a prototype does not change the logits: only its direction counts
    with torch.no_grad():
        layer.weight.mul_(torch.tensor([[1.0], [2.0], [0.5], [10.0], [3.0], [7.0]]))
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)
    # a unit input gives cosine similarities: |logit| <= 1, = 1 along a prototype
    unit = F.normalize(x, dim=1)
    assert layer(unit).abs().max() <= 1 + 1e-6
    torch.testing.assert_close(
        layer(F.normalize(layer.weight.detach(), dim=1)).diagonal(), torch.ones(6)
    )


def test_dino_head_structure():
    head = DinoHead(8, hidden_dim=16, bottleneck_dim=4, num_prototypes=10)
    assert _layout(head.mlp) == [
        ("Linear", 8, 16, True), ("GELU",), ("Linear", 16, 16, True), ("GELU",),
        ("Linear", 16, 4, True),
    ]
    assert head.prototypes.weight.shape == (10, 4)
    x = torch.randn(5, 8)
    logits = head(x)
    assert logits.shape == (5, 10)
    # MLP -> L2 normalise -> unit-norm prototypes: logits are cosines
    bottleneck = F.normalize(head.mlp(x), dim=-1)
    torch.testing.assert_close(logits, bottleneck @ F.normalize(head.prototypes.weight, dim=1).T)
    assert logits.abs().max() <= 1 + 1e-6
    with_bn = DinoHead(8, hidden_dim=16, bottleneck_dim=4, num_prototypes=10, batch_norm=True)
    assert ("BN", 16, True) in _layout(with_bn.mlp)


def test_encoder_returns_features_and_projection():
    backbone, projector = nn.Linear(3, 5), nn.Linear(5, 2)
    encoder = Encoder(backbone, projector)
    x = torch.randn(4, 3)
    out = encoder(x)
    assert isinstance(out, EncoderOutput)
    assert torch.equal(out.features, backbone(x))
    assert torch.equal(out.projection, projector(backbone(x)))
