"""Which checkpoint ``--resume`` continues from, read once.

``--resume PATH``: that file, checked to load (else a one-line ``ValueError``);
``--resume auto``: the newest loadable ``*.ckpt`` under ``<out>/checkpoints/`` by step,
then modification time (``last.ckpt``, ``last-prev.ckpt`` of resmo.files, others); files
that do not load are passed over with a note, and with none the run starts from scratch
(a note too), so one command serves the first submission and every requeue. The chosen
file's memory-mapped contents travel in :attr:`CheckpointInfo.state` to
:meth:`resmo.train.loop.TrainingLoop.load`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from resmo.train.checkpoint_state import CHECKPOINT_FORMAT

CHECKPOINT_FOLDER = "checkpoints"


def describe_position(global_step: int, steps_per_epoch: int | None) -> str:
    """Where training stands, epochs counted from 1 as the progress bar does:
    ``"28 steps (epoch 2, batch 8 done)"``, ``"40 steps (epoch 2 done)"``."""
    if not steps_per_epoch:
        return f"{global_step} steps"
    epochs_done, batches = divmod(global_step, steps_per_epoch)
    if batches == 0:
        return f"{global_step} steps (epoch {epochs_done} done)" if epochs_done else f"{global_step} steps"
    return f"{global_step} steps (epoch {epochs_done + 1}, batch {batches} done)"


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint that loads: path, training step, epoch (from 0), steps per epoch of its
    run (``None`` where it does not say), ``format`` (``None``: an older resmo on Lightning's
    Trainer, which this one cannot resume) and the loaded ``state``."""

    path: Path
    global_step: int
    epoch: int
    mtime: float
    steps_per_epoch: int | None = None
    format: str | None = None
    state: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def position(self) -> str:
        return describe_position(self.global_step, self.steps_per_epoch)


class UnreadableCheckpoint(ValueError):
    """A checkpoint file that cannot be loaded (truncated, corrupt, not a checkpoint)."""


def inspect_checkpoint(path: str | os.PathLike) -> CheckpointInfo:
    """Load ``path`` (memory-mapped) and check it is a training checkpoint; raises
    :class:`UnreadableCheckpoint` with the reason in one line."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as error:  # truncated zip, bad pickle, not a torch file, ...
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UnreadableCheckpoint(f"checkpoint '{path}' cannot be loaded ({reason[:160]})") from None
    if not isinstance(state, dict) or "state_dict" not in state or "global_step" not in state:
        raise UnreadableCheckpoint(f"'{path}' is not a resmo training checkpoint")
    steps_per_epoch = state.get("steps_per_epoch", state.get("resmo_steps_per_epoch"))
    return CheckpointInfo(path, int(state["global_step"]), int(state.get("epoch", 0)), path.stat().st_mtime,
                          int(steps_per_epoch) if steps_per_epoch else None, state.get("format"), state)


def find_resume_checkpoint(out: str | os.PathLike) -> tuple[CheckpointInfo | None, list[str]]:
    """The newest loadable checkpoint of run folder ``out`` and notes on what was skipped."""
    folder = Path(out) / CHECKPOINT_FOLDER
    notes: list[str] = []
    best: CheckpointInfo | None = None
    for candidate in sorted(p for p in folder.glob("*.ckpt") if p.is_file()) if folder.is_dir() else []:
        try:
            info = inspect_checkpoint(candidate)
        except UnreadableCheckpoint as error:
            notes.append(f"--resume auto: skipping {error}")
            continue
        if best is None or (info.global_step, info.mtime) > (best.global_step, best.mtime):
            best = info  # only the best one's contents stay in memory
    if best is None:
        notes.append(f"--resume auto: no checkpoint in '{folder}' yet; starting from scratch")
    else:
        notes.append(f"--resume auto: continuing from '{best.path}' after {best.position}")
    return best, notes


def resolve_resume(resume: str | None, out: str | os.PathLike) -> tuple[CheckpointInfo | None, list[str]]:
    """The checkpoint to continue from (or ``None``) and notes to print; ``ValueError`` (one
    line) for a path that is not a loadable checkpoint of this resmo."""
    if resume is None:
        return None, []
    if resume == "auto":
        info, notes = find_resume_checkpoint(out)
    else:
        if not Path(resume).is_file():
            raise ValueError(f"--resume '{resume}' is not a checkpoint file; pass a .ckpt path or 'auto'")
        try:
            info = inspect_checkpoint(resume)
        except UnreadableCheckpoint as error:
            raise ValueError(f"--resume: {error}; pass another .ckpt file or 'auto'") from None
        notes = [f"--resume: continuing from '{resume}' after {info.position}"]
    if info is not None and info.format != CHECKPOINT_FORMAT:
        written = f"format {info.format!r}" if info.format else "an older resmo on Lightning's Trainer"
        raise ValueError(
            f"--resume: '{info.path}' was written by {written}, which this resmo cannot continue "
            f"(it reads format {CHECKPOINT_FORMAT!r}); start a new run with another --out, or "
            "finish this one with the resmo version that started it")
    return info, notes
