"""Momentum schedules as pure functions of the global step.

Cosine schedule (BYOL, Grill et al. 2020, Sec. 3.2, with steps counted from 0):

    m(step) = final - (final - base) * (cos(pi * step / (total_steps - 1)) + 1) / 2

so ``m(0) = base`` and ``m(total_steps - 1) = final``; steps past the end keep ``final``.
Being a function of the step, the value after a resume is the value an uninterrupted run
would use: nothing to save, nothing to drift. The arguments are used as given: the
settings behind them are checked where they are read (the method's constructor,
resmo.config), and ``step`` is the training loop's own counter.
"""

from __future__ import annotations

import math


def cosine_momentum(step: int, *, total_steps: int, base: float, final: float = 1.0) -> float:
    """Momentum for optimizer step ``step`` (0-based) of ``total_steps``."""
    if total_steps == 1:
        return final
    progress = min(step, total_steps - 1) / (total_steps - 1)
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def linear_warmup(step: int, *, warmup_steps: int, start: float, end: float) -> float:
    """Linear ramp from ``start`` at step 0 to ``end`` at ``warmup_steps``, then ``end``."""
    if warmup_steps == 0 or step >= warmup_steps:
        return end
    return start + (end - start) * step / warmup_steps


def cosine_schedule(step: int, total_steps: int, start: float, end: float) -> float:
    """DINO's cosine schedule (facebookresearch/dino ``utils.py``, ``cosine_scheduler`` with
    no warm-up), used there for the weight decay (0.04 -> 0.4) and indexed by the global
    iteration ``it = epoch * len(loader) + batch``:

        value(step) = end + (start - end) * (1 + cos(pi * step / total_steps)) / 2

    so ``value(0) = start``; note the denominator ``total_steps`` (not ``total_steps - 1``,
    unlike :func:`cosine_momentum`): the last step ``total_steps - 1`` is just short of
    ``end``, exactly as the reference array. Steps from ``total_steps`` on keep ``end``.
    """
    progress = min(step, total_steps) / total_steps
    return end + (start - end) * (1.0 + math.cos(math.pi * progress)) / 2.0
