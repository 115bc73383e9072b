"""Optimizers and the learning-rate schedule for pretraining.

Parameter groups for ``sgd`` / ``adamw``: weights of linear and convolution layers get
weight decay; norm parameters and biases (every parameter with fewer than two dimensions)
get none, unless ``weight_decay_norm_and_bias`` (as solo-learn's SGD recipes, whose
``exclude_bias_n_norm_wd`` is off, and MoCo v2's reference code do).

``lars`` is solo-learn's LARS (:mod:`resmo.optim.lars`, whose docstring has the update):
one group of the 1-D parameters (biases, norms) and one of the rest, both with the
configured weight decay; with ``lars_exclude_bias_and_norm`` (default, as in the cited
recipes) the 1-D parameters take plain SGD with momentum and no weight decay (their group
then says ``weight_decay=0``, which the optimizer would not apply anyway), without it they
are adapted and decayed like the weights, as in solo-learn.

Learning rate at optimizer step ``s`` of ``S`` with ``W`` warm-up steps:

    lr(s) = lr * (s + 1) / W                                         for s < W
    lr(s) = min_lr + (lr - min_lr) * (1 + cos(pi * (s - W) / (S - W))) / 2   otherwise

``lr`` is the configured one after ``optimizer.lr_scaling`` (:func:`effective_lr`) for the
global batch ``B`` (per-process batch x processes) and ``R = optimizer.lr_reference_batch``:

    none:   lr = optimizer.lr
    linear: lr = optimizer.lr * B / R            (solo-learn main_pretrain: B / 256)
    sqrt:   lr = optimizer.lr * sqrt(B / R)

``min_lr`` is used as given (solo-learn scales ``lr`` and ``classifier_lr`` only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from resmo.config.schema import OPTIMIZER_NAMES, OptimizerSection
from resmo.optim.lars import LARS
from resmo.validation import check_choice, check_non_negative, check_positive

OPTIMIZERS = OPTIMIZER_NAMES


def parameter_groups(parameters: Iterable[nn.Parameter], weight_decay: float, *,
                     decay_norm_and_bias: bool = False) -> list[dict]:
    """Two groups for ``sgd`` / ``adamw``: weights, and norm/bias parameters, decayed only
    with ``decay_norm_and_bias``."""
    decay, no_decay = [], []
    for parameter in parameters:
        if parameter.requires_grad:
            (decay if parameter.ndim > 1 else no_decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": weight_decay if decay_norm_and_bias else 0.0},
    ]


def lars_parameter_groups(
    parameters: Iterable[nn.Parameter], weight_decay: float, *, exclude_bias_n_norm: bool
) -> list[dict]:
    """Two groups for :class:`~resmo.optim.lars.LARS`: parameters with ``ndim != 1``, then
    the 1-D ones (the reference's exclusion test), whose weight decay is shown as 0 when
    they are excluded (LARS applies none to them then)."""
    adapted, one_dimensional = [], []
    for parameter in parameters:
        if parameter.requires_grad:
            (one_dimensional if parameter.ndim == 1 else adapted).append(parameter)
    return [
        {"params": adapted, "weight_decay": weight_decay},
        {"params": one_dimensional, "weight_decay": 0.0 if exclude_bias_n_norm else weight_decay},
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
    lars_clip: bool = True,
    lars_exclude_bias_and_norm: bool = True,
    weight_decay_norm_and_bias: bool = False,
) -> torch.optim.Optimizer:
    """The optimizer ``name``; ``lars_*`` are LARS's ``eta``, ``clip_lr`` and
    ``exclude_bias_n_norm`` (ignored by ``sgd`` / ``adamw``), ``weight_decay_norm_and_bias``
    decays the 1-D parameters of ``sgd`` / ``adamw`` too."""
    check_choice("optimizer.name", name, OPTIMIZERS)
    check_positive("optimizer.lr", lr)
    check_non_negative("optimizer.weight_decay", weight_decay)
    if name == "lars":
        check_non_negative("optimizer.lars_eta", lars_eta)
        groups = lars_parameter_groups(
            parameters, weight_decay, exclude_bias_n_norm=bool(lars_exclude_bias_and_norm)
        )
        return LARS(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, eta=lars_eta,
                    clip_lr=bool(lars_clip), exclude_bias_n_norm=bool(lars_exclude_bias_and_norm))
    groups = parameter_groups(parameters, weight_decay, decay_norm_and_bias=weight_decay_norm_and_bias)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def effective_lr(settings: OptimizerSection, global_batch: int) -> float:
    """``settings.lr`` scaled by ``settings.lr_scaling`` for ``global_batch`` images per
    step (the formulas in the module docstring)."""
    check_positive("global batch", global_batch)
    ratio = global_batch / settings.lr_reference_batch
    if settings.lr_scaling == "linear":
        return settings.lr * ratio
    if settings.lr_scaling == "sqrt":
        return settings.lr * math.sqrt(ratio)
    return settings.lr


def lr_note(settings: OptimizerSection, global_batch: int, processes: int) -> str:
    """One line: the global batch and the learning rate the optimizer uses, and why."""
    per_process = global_batch // processes
    batch = (f"global batch {global_batch} ({per_process} per process x {processes} "
             f"{'process' if processes == 1 else 'processes'})")
    lr = effective_lr(settings, global_batch)
    if settings.lr_scaling == "none":
        return (f"{batch}; learning rate {lr:g} as given (optimizer.lr_scaling=none: not scaled "
                "with the batch)")
    factor = f"{global_batch}/{settings.lr_reference_batch}"
    if settings.lr_scaling == "sqrt":
        factor = f"sqrt({factor})"
    return (f"{batch}; learning rate {lr:g} = optimizer.lr {settings.lr:g} x {factor} "
            f"(optimizer.lr_scaling={settings.lr_scaling})")


def optimizer_from(settings: OptimizerSection, parameters: Iterable[nn.Parameter], *,
                   lr: float | None = None) -> torch.optim.Optimizer:
    """:func:`build_optimizer` with a recipe's ``optimizer`` section; ``lr``: the effective
    learning rate (:func:`effective_lr`), ``settings.lr`` when not given."""
    return build_optimizer(
        parameters, name=settings.name, lr=settings.lr if lr is None else lr, weight_decay=settings.weight_decay,
        momentum=settings.momentum, betas=settings.betas, lars_eta=settings.lars_eta,
        lars_clip=settings.lars_clip, lars_exclude_bias_and_norm=settings.lars_exclude_bias_and_norm,
        weight_decay_norm_and_bias=settings.weight_decay_norm_and_bias,
    )


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


def set_weight_decay(optimizer: torch.optim.Optimizer, weight_decay: float) -> None:
    """Set ``weight_decay`` on the optimizer's regularised parameter groups, as DINO's
    ``train_one_epoch`` sets ``param_group["weight_decay"] = wd_schedule[it]`` on the first
    group only ("only the first group is regularized").

    The regularised groups are found by content, not position: a group with parameters
    that all have two or more dimensions (the weights group of :func:`parameter_groups`
    and :func:`lars_parameter_groups`). A single group holding all parameters is left alone.
    """
    check_non_negative("weight_decay", weight_decay)
    for group in optimizer.param_groups:
        params = group["params"]
        if params and all(p.ndim > 1 for p in params):
            group["weight_decay"] = weight_decay
