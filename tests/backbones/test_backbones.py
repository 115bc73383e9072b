"""Backbone registry and factories (src/resmo/backbones)."""

from __future__ import annotations

import pytest
import torch
from torchvision import models

from resmo import backbone_names, create_backbone

# options that keep each backbone cheap on a CPU with 32x32 images
SMALL_OPTIONS: dict[str, dict[str, object]] = {
    "resnet_small": {"width": 8},
    "resnet18": {"cifar_stem": True},
    "resnet50": {},
    "vit_tiny": {"img_size": 32, "patch_size": 4},
    "vit_small": {"img_size": 32, "patch_size": 4},
}
FEATURE_DIMS = {"resnet_small": 64, "resnet18": 512, "resnet50": 2048, "vit_tiny": 192, "vit_small": 384}


def test_registered_backbones():
    assert backbone_names() == sorted(SMALL_OPTIONS)


@pytest.mark.parametrize("name", backbone_names())
def test_every_backbone_builds_and_pools(name):
    if name.startswith("vit"):
        pytest.importorskip("timm")
    torch.manual_seed(0)
    backbone = create_backbone(name, **SMALL_OPTIONS.get(name, {}))
    assert backbone.feature_dim == FEATURE_DIMS[name]
    backbone.eval()
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, backbone.feature_dim)
    assert torch.isfinite(features).all()
    # in eval mode images are encoded independently of the rest of the batch
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(backbone(images)[1:], backbone(images[1:]), rtol=1e-4, atol=1e-5)


def _layer1_input_size(backbone, size: int) -> tuple[int, int]:
    seen = {}

    def record(module, args):
        seen["shape"] = args[0].shape

    handle = backbone.net.layer1.register_forward_pre_hook(record)
    with torch.no_grad():
        backbone.eval()(torch.randn(1, 3, size, size))
    handle.remove()
    return tuple(seen["shape"][-2:])


def test_resnet18_cifar_stem_keeps_resolution():
    cifar = create_backbone("resnet18", cifar_stem=True)
    assert cifar.net.conv1.kernel_size == (3, 3) and cifar.net.conv1.stride == (1, 1)
    assert isinstance(cifar.net.maxpool, torch.nn.Identity)
    assert _layer1_input_size(cifar, 32) == (32, 32)
    # the ImageNet stem (7x7 stride 2 + max-pool) divides the resolution by 4
    imagenet = create_backbone("resnet18")
    assert imagenet.net.conv1.kernel_size == (7, 7)
    assert _layer1_input_size(imagenet, 32) == (8, 8)


def test_resnet18_weights_load_into_torchvision():
    backbone = create_backbone("resnet18", cifar_stem=True)
    reference = models.resnet18(weights=None)
    reference.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    reference.maxpool = torch.nn.Identity()
    reference.fc = torch.nn.Identity()
    state = {k.removeprefix("net."): v for k, v in backbone.state_dict().items()}
    reference.load_state_dict(state, strict=True)
    backbone.eval()
    reference.eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(reference(images), backbone(images))


def test_resnet_small_structure():
    backbone = create_backbone("resnet_small", width=4, blocks=2)
    assert backbone.feature_dim == 32
    assert len(backbone.stages) == 8  # four stages of two blocks
    strides = [block.conv1.stride[0] for block in backbone.stages]
    assert strides == [1, 1, 2, 1, 2, 1, 2, 1]
    with torch.no_grad():
        assert backbone(torch.randn(2, 3, 16, 16)).shape == (2, 32)
    # default: width 16, one block per stage -> 128 features, about 0.3 M parameters
    default = create_backbone("resnet_small")
    assert default.feature_dim == 128
    assert 0.2e6 < sum(p.numel() for p in default.parameters()) < 0.4e6


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError) as error:
        create_backbone("resnet9000")
    message = str(error.value)
    assert "backbone='resnet9000'" in message
    for name in backbone_names():
        assert name in message


def test_unknown_backbone_option_is_rejected():
    with pytest.raises(TypeError):
        create_backbone("resnet_small", depth=3)
