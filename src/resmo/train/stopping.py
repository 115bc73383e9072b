"""Stopping a run on purpose at a batch boundary, with a checkpoint to continue from.

Callbacks that must end training early (a signal, too many non-finite steps) do it in
two moves, so that the checkpoint is exact and the last step is still logged:

1. in ``on_train_batch_end``, after the optimizer step and the EMA update of the batch,
   :func:`save_boundary_checkpoint` writes the full training state (Lightning treats it as
   saved "on train batch end" and continues with the next batch when resumed);
2. at the next ``on_train_batch_start`` / ``on_train_epoch_start`` (after Lightning logged
   the batch), the callback raises :class:`RunStopped`, which ``resmo pretrain`` turns into
   one line on stderr and its exit code.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning.pytorch as pl


class RunStopped(Exception):  # noqa: N818 - a stop on purpose, not an error
    """Training ended early on purpose; ``message`` is one line, ``exit_code`` for the shell.

    ``reason`` is ``"signal"`` or ``"non-finite"``; ``checkpoint`` is the file to continue
    from (``None`` when none was written yet); ``step`` the global step it holds.
    """

    def __init__(self, message: str, *, exit_code: int, reason: str,
                 checkpoint: Path | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.reason = reason
        self.checkpoint = checkpoint
        self.step = step


def save_boundary_checkpoint(trainer: pl.Trainer, path: str | os.PathLike) -> Path:
    """Write the full training state to ``path`` now (every rank must call this)."""
    path = Path(path)
    trainer.save_checkpoint(path, weights_only=False)
    return path


def any_rank(trainer: pl.Trainer, flag: bool) -> bool:
    """``flag`` OR-ed over all processes (a collective: every rank must call it)."""
    if trainer.world_size > 1:
        return bool(trainer.strategy.reduce_boolean_decision(bool(flag), all=False))
    return bool(flag)


def existing(path: str | os.PathLike | None) -> Path | None:
    """``path`` when it is an existing file, else ``None``."""
    return Path(path) if path is not None and Path(path).is_file() else None
