"""What a training checkpoint holds, and how a loop is set back to it.

``checkpoints/last.ckpt`` (written atomically by resmo.files at each epoch end and before
an early stop; found again by resmo.train.resume) is one dict of format
:data:`CHECKPOINT_FORMAT`::

    format, global_step, epoch, batches_done, steps_per_epoch   # the position
    state_dict   {"method.<name>": tensor}                      # student, teacher, queue / centre
    optimizer, scheduler, precision                             # precision: the fp16 gradient scaler
    loop         {non_finite, epoch_means, throughput, bad_images, knn, rng}

``(epoch, batches_done)`` is the batch boundary it was written at; with the RNG states
(resmo.train.rng) and the seeded data order, :func:`restore_training_state` continues
exactly where an uninterrupted run would be.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from resmo.train.rng import restore_rng_states, rng_states

if TYPE_CHECKING:
    from resmo.train.loop import TrainingLoop

#: The ``format`` key of the checkpoints that resmo.train.loop writes and resumes.
CHECKPOINT_FORMAT = "resmo-training/2"


def training_state(loop: TrainingLoop) -> dict[str, Any]:
    """The full training state of ``loop`` at its current batch boundary."""
    return {
        "format": CHECKPOINT_FORMAT, "global_step": loop.step, "epoch": loop.epoch,
        "batches_done": loop.batches_done, "steps_per_epoch": loop.steps_per_epoch,
        "state_dict": {f"method.{k}": v for k, v in loop.method.state_dict().items()},
        "optimizer": loop.raw_optimizer.state_dict(), "scheduler": loop.scheduler.state_dict(),
        "precision": loop.fabric.strategy.precision.state_dict(),
        "loop": {"non_finite": loop.budget.state_dict(), "epoch_means": loop.means.state_dict(),
                 "throughput": loop.throughput.state_dict(), "bad_images": loop.bad_images.state_dict(),
                 "knn": loop.knn.state_dict() if loop.knn is not None else None, "rng": rng_states()},
    }


def restore_training_state(loop: TrainingLoop, state: dict[str, Any]) -> None:
    """Set ``loop`` (its parts, position, statistics and the RNGs) back to ``state``, a
    :func:`training_state`; the RNG states last, so nothing here draws after them."""
    loop.method.load_state_dict({k.removeprefix("method."): v for k, v in state["state_dict"].items()})
    # the optimizer would keep same-device tensors as they are: copy them off the file's mapping
    loop.raw_optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
    loop.scheduler.load_state_dict(state["scheduler"])
    loop.fabric.strategy.precision.load_state_dict(state["precision"])
    loop.step, loop.epoch, loop.batches_done = state["global_step"], state["epoch"], state["batches_done"]
    saved = state["loop"]
    loop.budget.load_state_dict(saved["non_finite"])
    loop.means.load_state_dict(saved["epoch_means"])
    loop.throughput.load_state_dict(saved["throughput"])
    loop.bad_images.load_state_dict(saved["bad_images"])
    if loop.knn is not None and saved["knn"] is not None:
        loop.knn.load_state_dict(saved["knn"])
    restore_rng_states(saved["rng"])
