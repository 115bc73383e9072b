"""Fine-tune a detector for a number of iterations, then measure its AP: one seed, with the
resolved :class:`resmo.transfer.settings.DetectSettings`.

Schedule (the shape of MoCo's VOC schedule, 24k iterations with steps at 18k and 22k): SGD
with momentum 0.9 and weight decay 1e-4 on every parameter (detectron2 has none on norm
layers), a linear warm-up over the first ``min(100, iterations // 5)`` iterations from 0.1 %
of ``lr``, and ``lr`` x 0.1 at 75 % and again at 92 % of the iterations (MoCo: 91.7 %). The
differences to MoCo's protocol are listed in :mod:`resmo.transfer.protocol`. The training
images are flipped horizontally with probability 0.5 (boxes with them) and, with
``train_sizes``, resized to a shorter side drawn from them per image (multi-scale training, as
MoCo's ``MIN_SIZE_TRAIN``; torch's global generator draws it, seeded per seed); testing uses
``min_size``; batches are drawn
without replacement, reshuffled each pass over the data. The seed fixes the heads' (and a
random backbone's) initialisation, the batch order and the flips.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from resmo.transfer import metrics
from resmo.transfer.settings import DetectSettings
from resmo.transfer.voc07_ap import VOC07AP

MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4  # on every trained parameter, norm layers' included
WARMUP_ITERATIONS = 100  # at most; a fifth of a shorter run
WARMUP_FACTOR = 0.001
LR_STEPS = (0.75, 0.92)  # fractions of the iterations where the learning rate is multiplied by 0.1
FLIP_PROBABILITY = 0.5


class NonFiniteLoss(RuntimeError):
    """Training diverged (the message says at which iteration and what to try)."""


def collate(batch):
    return tuple(zip(*batch, strict=True))


def flip(image: torch.Tensor, target: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``image`` mirrored left-right, with its boxes."""
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    return image.flip(-1), {**target, "boxes": boxes}


def training_sizes(settings: DetectSettings) -> tuple[int, ...]:
    """The shorter sides a training image is resized to, one drawn per image (torchvision's
    ``GeneralizedRCNNTransform`` draws from its ``min_size`` tuple in training, as detectron2's
    ``MIN_SIZE_TRAIN`` with ``choice`` sampling); ``(min_size,)`` without ``train_sizes``."""
    return tuple(settings.train_sizes) if settings.train_sizes else (settings.min_size,)


def learning_rate(settings: DetectSettings, iteration: int) -> float:
    """The learning rate of 0-based ``iteration`` (see the module doc)."""
    warmup = min(WARMUP_ITERATIONS, settings.iterations // 5)
    factor = 1.0
    if iteration < warmup:
        factor = WARMUP_FACTOR + (1 - WARMUP_FACTOR) * iteration / warmup
    steps = sum(iteration >= int(settings.iterations * point) for point in LR_STEPS)
    return settings.lr * factor * 0.1 ** steps


def batches(dataset: Dataset, settings: DetectSettings, generator: torch.Generator):
    """Endless shuffled batches (a new order per pass, from ``generator``)."""
    while True:
        order = torch.randperm(len(dataset), generator=generator).tolist()
        loader = DataLoader(dataset, batch_size=settings.batch_size, sampler=order, collate_fn=collate,
                            num_workers=settings.workers, drop_last=len(dataset) >= settings.batch_size,
                            pin_memory=settings.device.startswith("cuda"))
        yield from loader


def train(detector: nn.Module, dataset: Dataset, settings: DetectSettings, seed: int,
          log: Callable[[str], None] = print) -> list[float]:
    """Fine-tune ``detector`` in place; return the total loss of every iteration."""
    device = torch.device(settings.device)
    detector.to(device).train()
    detector.transform.min_size = training_sizes(settings)
    parameters = [p for p in detector.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=settings.lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    stream = batches(dataset, settings, generator)
    for iteration in range(settings.iterations):
        images, targets = next(stream)
        flips = torch.rand(len(images), generator=generator) < FLIP_PROBABILITY
        pairs = [flip(i, t) if f else (i, t) for i, t, f in zip(images, targets, flips.tolist(), strict=True)]
        images = [i.to(device, non_blocking=True) for i, _ in pairs]
        targets = [{k: v.to(device) for k, v in t.items()} for _, t in pairs]
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(settings, iteration)
        parts = detector(images, targets)
        loss = sum(parts.values())
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLoss(f"non-finite detection loss at iteration {iteration + 1} of seed {seed} "
                                f"({', '.join(f'{k}={float(v):.3g}' for k, v in parts.items())}); "
                                f"try a lower --lr (it was {settings.lr:g})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(value)
        if (iteration + 1) % settings.log_every == 0 or iteration + 1 == settings.iterations:
            log(f"seed {seed}: iteration {iteration + 1}/{settings.iterations} loss {value:.4f} "
                f"lr {learning_rate(settings, iteration):.3g}")
    return losses


@torch.no_grad()
def evaluate(detector: nn.Module, dataset: Dataset, settings: DetectSettings) -> dict[str, float]:
    """COCO-style AP, AP50, AP75 (resmo.transfer.metrics) and VOC07's 11-point AP, AP50, AP75
    (resmo.transfer.voc07_ap), in percent, of ``detector`` on ``dataset``."""
    device = torch.device(settings.device)
    detector.to(device).eval()
    detector.transform.min_size = (settings.min_size,)  # one test scale
    metric, voc07 = metrics.new_metric(), VOC07AP()
    loader = DataLoader(dataset, batch_size=settings.batch_size, collate_fn=collate,
                        num_workers=settings.workers)
    for images, targets in loader:
        outputs = detector([image.to(device) for image in images])
        outputs = [{k: v.cpu() for k, v in output.items()} for output in outputs]
        metric.update(outputs, list(targets))
        voc07.update(outputs, list(targets))
    return {**metrics.summary(metric), **voc07.compute()}
