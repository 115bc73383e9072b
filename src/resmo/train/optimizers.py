"""Optimizers and the learning-rate schedule for pretraining.

Parameter groups: weights of linear and convolution layers get weight decay; norm
parameters and biases (every parameter with fewer than two dimensions) get none and are
excluded from LARS adaptation, as in the BYOL / MoCo v3 / solo-learn recipes.

Learning rate at optimizer step ``s`` of ``S`` with ``W`` warm-up steps:

    lr(s) = lr * (s + 1) / W                                         for s < W
    lr(s) = min_lr + (lr - min_lr) * (1 + cos(pi * (s - W) / (S - W))) / 2   otherwise

The configured ``lr`` is used as given: never rescaled by the batch size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from resmo.train.lars import LARS
from resmo.validation import check_choice, check_non_negative, check_positive

OPTIMIZERS = ("sgd", "lars", "adamw")


def parameter_groups(parameters: Iterable[nn.Parameter], weight_decay: float) -> list[dict]:
    """Two groups: decayed weights, and norm/bias parameters without decay or LARS."""
    decay, no_decay = [], []
    for parameter in parameters:
        if parameter.requires_grad:
            (decay if parameter.ndim > 1 else no_decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0, "lars_exclude": True},
    ]


def build_optimizer(
    parameters: Iterable[nn.Parameter],
    *,
    name: str,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    lars_eta: float = 0.02,
) -> torch.optim.Optimizer:
    check_choice("optimizer.name", name, OPTIMIZERS)
    check_positive("optimizer.lr", lr)
    check_non_negative("optimizer.weight_decay", weight_decay)
    groups = parameter_groups(parameters, weight_decay)
    if name == "sgd":
        for group in groups:
            group.pop("lars_exclude", None)
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum, eta=lars_eta)
    for group in groups:
        group.pop("lars_exclude", None)
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def warmup_cosine_factor(step: int, *, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """``lr(step) / lr`` for the schedule in the module docstring."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * (1.0 + math.cos(math.pi * progress)) / 2.0


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int, lr: float, min_lr: float
) -> torch.optim.lr_scheduler.LambdaLR:
    min_ratio = min_lr / lr
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: warmup_cosine_factor(
            step, total_steps=total_steps, warmup_steps=warmup_steps, min_ratio=min_ratio
        ),
    )
