"""The process group's timeout for collectives, its clean end, and a lost process named.

**Timeout.** ``torch.distributed`` waits ``timeout`` in every collective (the step's
all-reduces, the barrier while rank 0 writes a checkpoint, the kNN monitor's gathers)
before it gives up; torch's default is 30 minutes for gloo (10 for NCCL), and Lightning
Fabric passes no other. :func:`collective_timeout` derives it from
``train.rendezvous_timeout``: ``max(10 x rendezvous_timeout, 600 s)``. The floor of 10
minutes keeps legitimate long waits inside a collective alive: rank 0 writing a
checkpoint of a large model to a slow shared file system while the others wait at the
barrier, or one rank's slower kNN pass; the factor lets a cluster that needs a long
rendezvous (nodes that start minutes apart) have proportionally patient collectives.
A process that dies or hangs then ends the others after that time at most (with gloo, a
dead peer is reported at once: ``Connection closed by peer``).

**End.** :func:`end_process_group` meets every process at a final barrier and destroys
the group (Lightning destroys it at exit for NCCL only; a gloo group left to the
interpreter's exit aborted 1 of 7 torchrun runs with exit code 1).
"""

from __future__ import annotations

from datetime import timedelta

import torch.distributed as dist

#: The shortest timeout of a collective, whatever ``train.rendezvous_timeout`` is.
COLLECTIVE_TIMEOUT_FLOOR = 600.0
#: Collectives wait this many times ``train.rendezvous_timeout`` (at least the floor).
COLLECTIVE_TIMEOUT_FACTOR = 10.0


def collective_timeout(rendezvous_timeout: float) -> timedelta:
    """``max(10 x rendezvous_timeout, 600 s)`` (see the module docstring)."""
    return timedelta(seconds=max(COLLECTIVE_TIMEOUT_FACTOR * rendezvous_timeout, COLLECTIVE_TIMEOUT_FLOOR))


def has_process_group() -> bool:
    return dist.is_available() and dist.is_initialized()


def end_process_group(*, barrier: bool) -> None:
    """A final barrier (``barrier``: every process got here, so none is left waiting)
    and ``destroy_process_group``; nothing without a process group."""
    if not has_process_group():
        return
    try:
        if barrier:
            dist.barrier()
    finally:
        dist.destroy_process_group()


#: Fragments of the errors torch's backends raise when another process is gone or silent
#: (gloo raises a plain ``RuntimeError``: ``[.../gloo/transport/tcp/pair.cc:561] Connection
#: closed by peer``), and the names that say the error comes from a backend.
LOST_PROCESS_SIGNS = ("Connection closed by peer", "Connection reset by peer", "timed out", "Timed out",
                      "communicator was aborted", "Broken pipe")
BACKEND_NAMES = ("gloo", "NCCL", "c10d")


def lost_process(error: BaseException) -> bool:
    """Whether ``error``, raised in a collective of a group of several processes, means
    another process died or hung (a ``torch.distributed.DistError``, or a backend's error
    with one of :data:`LOST_PROCESS_SIGNS`)."""
    if not has_process_group() or dist.get_world_size() < 2:
        return False
    text = str(error)
    return isinstance(error, dist.DistError) or (
        any(name in text for name in BACKEND_NAMES) and any(sign in text for sign in LOST_PROCESS_SIGNS))
