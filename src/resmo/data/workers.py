"""DataLoader worker counts that fit the machine.

Recipes ask for the workers of a large machine (``data.num_workers: 8``); on fewer cores the
extra processes only compete for the same CPUs (and torch's DataLoader warns about it), so
a count above the CPU cores this process may run on is lowered to that number, with a note.
"""

from __future__ import annotations

import os


def available_cpus() -> int:
    """The CPU cores this process may run on: its affinity mask where the platform has one
    (containers and ``taskset`` narrow it), else ``os.cpu_count()``, at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def capped_workers(requested: int, *, name: str = "data.num_workers",
                   cpus: int | None = None) -> tuple[int, str | None]:
    """``(workers, note)``: ``requested`` when the machine has that many CPU cores (or it is
    0, no workers), otherwise the core count and a one-line note naming ``name``, e.g.
    ``data.num_workers=8 capped to the 2 CPU cores of this machine``.

    ``cpus`` (default :func:`available_cpus`) is for tests. A negative ``requested`` is
    returned unchanged, for the caller's own check to reject."""
    cores = available_cpus() if cpus is None else max(1, int(cpus))
    if requested <= cores:
        return requested, None
    unit = "core" if cores == 1 else "cores"
    return cores, f"{name}={requested} capped to the {cores} CPU {unit} of this machine"
