"""ResNets from torchvision (He et al., 2016) with an optional CIFAR stem.

The CIFAR stem replaces the 7x7 stride-2 first convolution and the max-pool with a 3x3
stride-1 convolution and no pooling, as in the SimCLR/MoCo CIFAR recipes. The module keeps
torchvision's parameter names, so exported weights load into
``torchvision.models.resnet18()`` (with the same stem change) with ``strict=True``
after dropping ``fc``.

Besides the pooled ``forward``, a ResNet exposes its last spatial feature map (``layer4``'s
output, before global average pooling) for dense methods (DenseCL):
``feature_map(images) -> [B, feature_dim, h, w]`` and ``pool(feature_map) -> [B, feature_dim]``,
with ``forward(images) == pool(feature_map(images))`` (torchvision's own ``avgpool`` and
``flatten``, so the pooled features are unchanged).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models

from resmo.backbones.registry import BACKBONES


class TorchvisionResNet(nn.Module):
    """A torchvision ResNet without its classifier: ``[B,3,H,W] -> [B, feature_dim]``."""

    def __init__(self, arch: str, *, cifar_stem: bool = False, zero_init_residual: bool = False):
        super().__init__()
        net = getattr(models, arch)(weights=None, zero_init_residual=zero_init_residual)
        if cifar_stem:
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
            net.maxpool = nn.Identity()
        self.feature_dim: int = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net
        self.arch = arch
        self.cifar_stem = cifar_stem

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """``layer4``'s output ``[B, feature_dim, h, w]`` (before global pooling)."""
        net = self.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
        return net.layer4(net.layer3(net.layer2(net.layer1(x))))

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Global average pooling of a :meth:`feature_map`: ``[B, C, h, w] -> [B, C]``."""
        return torch.flatten(self.net.avgpool(feature_map), 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_map(images))


@BACKBONES.register("resnet18")
def resnet18(*, cifar_stem: bool = False, zero_init_residual: bool = False) -> nn.Module:
    return TorchvisionResNet("resnet18", cifar_stem=cifar_stem, zero_init_residual=zero_init_residual)


@BACKBONES.register("resnet50")
def resnet50(*, cifar_stem: bool = False, zero_init_residual: bool = False) -> nn.Module:
    return TorchvisionResNet("resnet50", cifar_stem=cifar_stem, zero_init_residual=zero_init_residual)
