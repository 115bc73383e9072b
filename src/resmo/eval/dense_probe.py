"""A linear probe per pixel on a frozen ResNet's feature maps (a dense linear evaluation).

Features: the outputs of the chosen ResNet stages (``stages``, 1-4 = torchvision's ``layer1``
... ``layer4``, resmo's ``resnet_small`` stages alike; default the last stage, the map DenseCL's
dense head reads), computed once by the frozen backbone in eval mode under ``no_grad``. With
several stages, each map is upsampled bilinearly to the size of the finest one and the maps
are concatenated along the channels. Each channel is standardised with the training pixels'
mean and standard deviation (as :mod:`resmo.eval.linear` does per dimension).

Probe: a 1x1 convolution (a linear classifier ``W z + b`` at every feature pixel) from
``W = 0, b = 0``; its logits are upsampled bilinearly (``align_corners=False``) to the mask
size and trained with the pixel-wise cross-entropy, VOC's ``255`` border ignored,

    L(W, b) = mean over labelled pixels of CE(upsample(W z + b), y)

with Adam (``lr``, no weight decay) for ``epochs`` passes over the training images in
batches, shuffled by a generator seeded with ``seed``: the same seed gives the same probe.
Predictions are the arg-max of the upsampled logits; scores are in :mod:`resmo.eval.dense_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from resmo.eval.dense_metrics import confusion_matrix
from resmo.validation import check_positive, check_positive_int

STAGES = (1, 2, 3, 4)


def resnet_stages(backbone: nn.Module, name: str = "") -> tuple[nn.Module, list[nn.Module]]:
    """``(stem, [stage 1, ..., stage 4])`` of a resmo ResNet; ``ValueError`` for other backbones."""
    from resmo.backbones.resnet import TorchvisionResNet
    from resmo.backbones.small_resnet import SmallResNet

    if isinstance(backbone, TorchvisionResNet):
        net = backbone.net
        return nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool), [net.layer1, net.layer2, net.layer3, net.layer4]
    if isinstance(backbone, SmallResNet):
        blocks = list(backbone.stages)
        per_stage = len(blocks) // 4
        return backbone.stem, [nn.Sequential(*blocks[i * per_stage:(i + 1) * per_stage]) for i in range(4)]
    raise ValueError(f"resmo eval dense needs a ResNet backbone (resnet18, resnet50, resnet_small) for its "
                     f"feature maps; this run's backbone is {name or type(backbone).__name__!r}")


def check_stages(stages: Sequence[int]) -> tuple[int, ...]:
    chosen = tuple(sorted(set(int(s) for s in stages)))
    if not chosen or any(s not in STAGES for s in chosen):
        raise ValueError(f"--stages {','.join(map(str, stages))} is not valid; choose among 1, 2, 3, 4 (e.g. 4 or 3,4)")
    return chosen


@torch.no_grad()
def stage_features(stem: nn.Module, layers: list[nn.Module], images: torch.Tensor, stages: tuple[int, ...]) -> torch.Tensor:
    """The chosen stages' maps, upsampled to the finest one's size and concatenated: ``[B, C, h, w]``."""
    x, maps = stem(images), []
    for index, layer in enumerate(layers[: max(stages)], start=1):
        x = layer(x)
        if index in stages:
            maps.append(x)
    size = maps[0].shape[-2:]
    return torch.cat([m if m.shape[-2:] == size else F.interpolate(m, size=size, mode="bilinear", align_corners=False)
                      for m in maps], dim=1)


@torch.no_grad()
def extract_dense(backbone: nn.Module, dataset: Dataset, *, stages: tuple[int, ...], batch_size: int,
                  device: torch.device, name: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """``(features [N, C, h, w] on the CPU, masks [N, S, S] uint8)`` of ``dataset`` (eval mode)."""
    stem, layers = resnet_stages(backbone, name)
    was_training = backbone.training
    backbone.eval().to(device)
    features, masks = [], []
    try:
        for images, labels in DataLoader(dataset, batch_size=batch_size):
            features.append(stage_features(stem, layers, images.to(device), stages).float().cpu())
            masks.append(labels.to(torch.uint8))
    finally:
        backbone.to("cpu").train(was_training)
    return torch.cat(features), torch.cat(masks)


class DenseProbe(nn.Module):
    """``z -> upsample(conv1x1((z - mean) / std))``: the standardisation is part of the probe."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float().reshape(1, -1, 1, 1).clone())
        self.register_buffer("std", std.float().reshape(1, -1, 1, 1).clone())
        self.classifier = nn.Conv2d(mean.numel(), num_classes, kernel_size=1)
        nn.init.zeros_(self.classifier.weight)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        logits = self.classifier((features.float() - self.mean) / self.std)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def channel_standardizer(features: torch.Tensor, *, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over every image and pixel (floored at ``eps``)."""
    flat = features.float().transpose(0, 1).reshape(features.shape[1], -1)
    return flat.mean(dim=1), flat.std(dim=1, unbiased=False).clamp_min(eps)


def fit_dense_probe(features: torch.Tensor, masks: torch.Tensor, *, num_classes: int, epochs: int = 20,
                    lr: float = 0.01, batch_size: int = 32, seed: int = 0, device: torch.device | None = None,
                    ignore_index: int = 255) -> DenseProbe:
    """Train the probe of the module doc on ``features`` / ``masks``; returns it in eval mode."""
    check_positive_int("epochs", epochs)
    check_positive("lr", lr)
    check_positive_int("batch_size", batch_size)
    device = device or torch.device("cpu")
    mean, std = channel_standardizer(features)
    probe = DenseProbe(mean, std, num_classes).to(device)
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    size = tuple(masks.shape[-2:])
    with torch.enable_grad():
        for _ in range(epochs):
            for batch in torch.randperm(len(features), generator=generator).split(batch_size):
                logits = probe(features[batch].to(device), size)
                loss = F.cross_entropy(logits, masks[batch].long().to(device), ignore_index=ignore_index)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    return probe.eval()


@torch.no_grad()
def probe_confusion(probe: DenseProbe, features: torch.Tensor, masks: torch.Tensor, *, num_classes: int,
                    batch_size: int = 32, device: torch.device | None = None, ignore_index: int = 255) -> torch.Tensor:
    """The ``[C, C]`` confusion matrix of the probe's arg-max predictions over all images."""
    device = device or torch.device("cpu")
    size = tuple(masks.shape[-2:])
    total = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    for start in range(0, len(features), batch_size):
        predictions = probe(features[start:start + batch_size].to(device), size).argmax(dim=1).cpu()
        total += confusion_matrix(predictions, masks[start:start + batch_size].long(), num_classes,
                                  ignore_index=ignore_index)
    return total
