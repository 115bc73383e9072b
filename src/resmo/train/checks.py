"""Checks of recipe numbers that would otherwise fail only once training has started.

The optimizer is built in ``configure_optimizers`` and the kNN monitor runs after the
first epoch, so a bad ``optimizer.lr`` or ``monitor.knn_k`` used to surface as a traceback
minutes (or hours) into a run. :func:`check_run_numbers` checks them up front, each with
a one-line ``ValueError`` naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math

from resmo.config.schema import PretrainConfig
from resmo.train.optimizers import OPTIMIZERS
from resmo.validation import (
    check_choice,
    check_non_negative,
    check_positive,
    check_positive_int,
    check_unit_interval,
)

MAX_SEED = 2**32 - 1
"""NumPy's seed range, which ``seed_everything`` uses for every generator."""


def check_run_numbers(config: PretrainConfig) -> None:
    """Raise ``ValueError`` (one line) for the first unusable optimizer, monitor or seed value."""
    optimizer = config.optimizer
    check_choice("optimizer.name", optimizer.name, OPTIMIZERS)
    for key in ("lr", "weight_decay", "min_lr", "warmup_epochs", "lars_eta"):
        check_non_negative(f"optimizer.{key}", getattr(optimizer, key))
    check_unit_interval("optimizer.momentum", optimizer.momentum)
    for index, beta in enumerate(optimizer.betas):
        if not (isinstance(beta, (int, float)) and 0 <= beta < 1):
            raise ValueError(
                f"optimizer.betas[{index}]={beta!r} is not valid; allowed values: a number in [0, 1)"
            )
    monitor = config.monitor
    check_positive_int("monitor.knn_k", monitor.knn_k)
    check_positive_int("monitor.knn_max_train", monitor.knn_max_train)
    check_positive_int("monitor.knn_max_val", monitor.knn_max_val)
    check_positive("monitor.knn_temperature", monitor.knn_temperature)
    check_positive_int("train.log_every_n_steps", config.train.log_every_n_steps)
    check_non_negative("resmo.warmup_epochs", config.resmo.warmup_epochs)
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or not 0 <= config.seed <= MAX_SEED:
        raise ValueError(f"seed={config.seed!r} is not valid; allowed values: an integer in [0, {MAX_SEED}]")
    if not math.isfinite(config.resmo.weight):
        raise ValueError(f"resmo.weight={config.resmo.weight!r} is not valid; allowed values: a number >= 0")
