"""Which checkpoint ``--resume`` continues from.

- ``--resume PATH``: that file, after checking that it loads (else a one-line
  ``ValueError``);
- ``--resume auto``: the newest checkpoint under ``<out>/checkpoints/`` that loads, by
  training step and then modification time: ``last.ckpt``, the previous version
  ``last-prev.ckpt`` kept by :class:`~resmo.train.checkpoint_io.AtomicCheckpointIO`, or
  any other ``*.ckpt`` there (e.g. Lightning's SLURM ``hpc_ckpt_*.ckpt``). Files that do
  not load are passed over with a note. With no usable checkpoint the run starts from
  scratch, also with a note, so the same command can be used for the first submission
  and every requeue of a job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

CHECKPOINT_FOLDER = "checkpoints"


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint that loads: its path, training step and epoch."""

    path: Path
    global_step: int
    epoch: int
    mtime: float


class UnreadableCheckpoint(ValueError):
    """A checkpoint file that cannot be loaded (truncated, corrupt, not a checkpoint)."""


def inspect_checkpoint(path: str | os.PathLike) -> CheckpointInfo:
    """Load ``path`` lazily (memory-mapped) and check it is a Lightning checkpoint.

    Raises :class:`UnreadableCheckpoint` with the reason in one line.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as error:  # truncated zip, bad pickle, not a torch file, ...
        reason = " ".join(str(error).split()) or type(error).__name__
        raise UnreadableCheckpoint(f"checkpoint '{path}' cannot be loaded ({reason[:160]})") from None
    if not isinstance(state, dict) or "state_dict" not in state or "global_step" not in state:
        raise UnreadableCheckpoint(f"'{path}' is not a resmo / Lightning training checkpoint")
    return CheckpointInfo(path, int(state["global_step"]), int(state.get("epoch", 0)),
                          path.stat().st_mtime)


def find_resume_checkpoint(out: str | os.PathLike) -> tuple[CheckpointInfo | None, list[str]]:
    """The newest loadable checkpoint of run folder ``out`` and notes on what was skipped."""
    folder = Path(out) / CHECKPOINT_FOLDER
    notes: list[str] = []
    found: list[CheckpointInfo] = []
    candidates = sorted(p for p in folder.glob("*.ckpt") if p.is_file()) if folder.is_dir() else []
    for candidate in candidates:
        try:
            found.append(inspect_checkpoint(candidate))
        except UnreadableCheckpoint as error:
            notes.append(f"--resume auto: skipping {error}")
    if not found:
        notes.append(f"--resume auto: no checkpoint in '{folder}' yet; starting from scratch")
        return None, notes
    best = max(found, key=lambda info: (info.global_step, info.mtime))
    notes.append(f"--resume auto: continuing from '{best.path}' (step {best.global_step}, epoch {best.epoch})")
    return best, notes


def resolve_resume(resume: str | None, out: str | os.PathLike) -> tuple[str | None, list[str]]:
    """The checkpoint path to pass to ``Trainer.fit`` (or ``None``) and notes to print.

    Raises ``ValueError`` (one line) for a path that is not a loadable checkpoint.
    """
    if resume is None:
        return None, []
    if resume == "auto":
        best, notes = find_resume_checkpoint(out)
        return (str(best.path) if best else None), notes
    if not Path(resume).is_file():
        raise ValueError(f"--resume '{resume}' is not a checkpoint file; pass a .ckpt path or 'auto'")
    try:
        inspect_checkpoint(resume)
    except UnreadableCheckpoint as error:
        raise ValueError(f"--resume: {error}; pass another .ckpt file or 'auto'") from None
    return resume, []
