"""A narrow, shallow ResNet for CPU demos, tests and CPU benchmarks.

Same block as ResNet-18 (two 3x3 convolutions with batch norm and an identity or 1x1
projection shortcut), a CIFAR stem, four stages of ``blocks`` blocks each with widths
``width * (1, 2, 4, 8)`` and global average pooling. With the defaults (width 16, one
block per stage) it has about 0.3 M parameters and a 128-dimensional output.

As the torchvision ResNets it exposes its last spatial feature map for dense methods:
``feature_map(images) -> [B, 8 * width, H / 8, W / 8]`` and ``pool(feature_map)``, with
``forward(images) == pool(feature_map(images))``.
"""

from __future__ import annotations

import torch
from torch import nn

from resmo.backbones.registry import BACKBONES
from resmo.validation import check_positive_int


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """``[B,3,H,W] -> [B, 8 * width]`` pooled features."""

    def __init__(self, *, width: int = 16, blocks: int = 1) -> None:
        super().__init__()
        check_positive_int("width", width)
        check_positive_int("blocks", blocks)
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        stages, channels = [], width
        for index, multiplier in enumerate((1, 2, 4, 8)):
            out_channels = width * multiplier
            for block in range(blocks):
                stride = 2 if index > 0 and block == 0 else 1
                stages.append(BasicBlock(channels, out_channels, stride))
                channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.pooling = nn.AdaptiveAvgPool2d(1)
        self.feature_dim: int = channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def feature_map(self, images: torch.Tensor) -> torch.Tensor:
        """The last stage's output ``[B, feature_dim, h, w]`` (before global pooling)."""
        return self.stages(self.stem(images))

    def pool(self, feature_map: torch.Tensor) -> torch.Tensor:
        """Global average pooling of a :meth:`feature_map`: ``[B, C, h, w] -> [B, C]``."""
        return self.pooling(feature_map).flatten(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(self.feature_map(images))


@BACKBONES.register("resnet_small")
def resnet_small(*, width: int = 16, blocks: int = 1) -> nn.Module:
    return SmallResNet(width=width, blocks=blocks)
