"""Linear probe trained on augmented images (the slower, "full" linear evaluation).

Each epoch the frozen backbone (eval mode, no grad) encodes freshly augmented training
images, ``RandomResizedCrop(image_size, scale=(0.08, 1))`` + horizontal flip (the
augmentation of the MoCo v3 / DINO linear-evaluation recipes), and the
:class:`~resmo.eval.linear.LinearProbe` (standardised with the clean training features'
statistics) takes Adam steps on the cross-entropy ``CE(W z + b, y)`` (+ ``weight_decay``
as L2), with a cosine learning-rate schedule. Augmentation and batch order are drawn from
generators seeded by ``seed``, so a run is repeatable (with ``num_workers=0``) and leaves
the global random state untouched.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from resmo.data import IMAGENET_MEAN, IMAGENET_STD, EvalDataset
from resmo.eval.linear import LinearProbe
from resmo.validation import check_non_negative, check_positive, check_positive_int


def probe_augmentation(image_size: int) -> v2.Compose:
    """Random resized crop (scale 0.08-1), flip, tensor, ImageNet normalisation."""
    return v2.Compose([
        v2.RandomResizedCrop(image_size, scale=(0.08, 1.0), interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)),
    ])


def fit_linear_probe_on_views(
    backbone: nn.Module, dataset: Dataset, *, image_size: int, num_classes: int,
    mean: torch.Tensor, std: torch.Tensor, epochs: int = 10, lr: float = 1e-3,
    weight_decay: float = 0.0, batch_size: int = 256, seed: int = 0,
    device: torch.device | str = "cpu", num_workers: int = 0,
) -> LinearProbe:
    """Train a probe on ``backbone`` features of augmented ``dataset`` images (see module doc)."""
    check_positive_int("epochs", epochs)
    check_positive("lr", lr)
    check_non_negative("weight_decay", weight_decay)
    devices = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []
    was_training = backbone.training
    backbone.eval()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            probe = LinearProbe(mean, std, num_classes).to(device)
            loader = DataLoader(
                EvalDataset(dataset, probe_augmentation(image_size)), batch_size=batch_size, shuffle=True,
                num_workers=num_workers, generator=torch.Generator().manual_seed(seed),
            )
            optimizer = torch.optim.Adam(probe.linear.parameters(), lr=lr, weight_decay=weight_decay)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
            for _ in range(epochs):
                for images, labels in loader:
                    with torch.no_grad():
                        features = backbone(images.to(device)).float()
                    loss = F.cross_entropy(probe(features), labels.to(device))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
    finally:
        backbone.train(was_training)
    return probe.cpu().eval()
