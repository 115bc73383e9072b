"""Files that are never half-written: the training loop's checkpoints, the run folder's
backbones.

:func:`write_checkpoint` writes each checkpoint as

1. ``torch.save`` into a hidden temporary file in the same folder, ``flush`` + ``fsync``;
2. when the target exists, its current version becomes ``<name>-prev.ckpt`` (a hard link,
   so no copy; a rename where the file system has no hard links);
3. ``os.replace(temporary, target)``, an atomic rename on POSIX and Windows, then an
   ``fsync`` of the folder so the rename itself survives a power cut.

A process killed at any moment (SIGKILL, out of memory, node failure) therefore leaves
the target either at its old or at its new content, never truncated, and the previous
good version stays next to it (see resmo.train.resume).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import torch

TEMP_SUFFIX = ".tmp"


def previous_path(path: str | os.PathLike) -> Path:
    """Where the version replaced by a save is kept: ``last.ckpt`` -> ``last-prev.ckpt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}-prev{path.suffix}")


def temporary_path(path: str | os.PathLike) -> Path:
    """The hidden file a save of ``path`` writes first (unique per process)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def fsync_folder(folder: str | os.PathLike) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def keep_previous(path: Path) -> None:
    """Point ``<stem>-prev<suffix>`` at the current content of ``path`` (if any)."""
    if not path.is_file():
        return
    previous = previous_path(path)
    with contextlib.suppress(OSError):
        if os.path.samefile(path, previous):  # already kept (a killed save got this far)
            return
    staged = previous.with_name(f".{previous.name}.{os.getpid()}{TEMP_SUFFIX}")
    with contextlib.suppress(FileNotFoundError):
        staged.unlink()
    try:
        os.link(path, staged)  # the target keeps existing at every moment
        os.replace(staged, previous)
    except OSError:  # no hard links here: the target is briefly absent, -prev is complete
        os.replace(path, previous)
    finally:  # rename() between two links to one file does nothing: drop the staged name
        with contextlib.suppress(FileNotFoundError):
            staged.unlink()


def atomic_torch_save(obj: Any, path: str | os.PathLike, *, keep_previous_version: bool = True) -> None:
    """``torch.save(obj, path)`` through a temporary file, fsync and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        if keep_previous_version:
            keep_previous(path)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    fsync_folder(path.parent)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files left in ``folder`` by writers that were killed; returns them.

    Only files whose writer process is gone are removed (the pid is in the name).
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for candidate in folder.glob(f".*{TEMP_SUFFIX}"):
        pid = candidate.name.removesuffix(TEMP_SUFFIX).rsplit(".", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_checkpoint(state: dict[str, Any], path: str | os.PathLike, *, keep_previous_version: bool = True) -> None:
    """:func:`atomic_torch_save` after removing temporaries that killed writers left in the folder."""
    remove_stale_temporaries(Path(path).parent)
    atomic_torch_save(state, path, keep_previous_version=keep_previous_version)
