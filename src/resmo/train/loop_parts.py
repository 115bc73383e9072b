"""What :class:`~resmo.train.loop.TrainingLoop` is given: the built parts and the settings.

``TrainingLoop(fabric, parts, settings)``: :class:`LoopParts` holds the objects that
``resmo pretrain``'s set-up built (resmo.train.pretrain), :class:`LoopSettings` the plain
values, checked where the recipe was read (resmo.config), that the loop reads and never
checks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: this module imports nothing of resmo at run time
    import torch

    from resmo.config.schema import StepSchedule
    from resmo.data.bad_images import BadImages
    from resmo.data.batched.views import DeviceViews
    from resmo.data.sampling import ResumableLoader
    from resmo.eval.knn_monitor import KnnMonitor
    from resmo.methods.base import MomentumMethod
    from resmo.train.metrics_log import MetricsLog
    from resmo.train.non_finite import NonFiniteBudget


@dataclass
class LoopParts:
    """The objects one run trains with; each keeps its own state (saved in checkpoints)."""

    method: MomentumMethod  # student, EMA teacher, loss (resmo.methods.base)
    optimizer: torch.optim.Optimizer  # the plain optimizer; the loop has Fabric wrap it
    scheduler: torch.optim.lr_scheduler.LRScheduler  # the learning rate of every step
    loader: ResumableLoader  # the seeded train batches, resumable mid-epoch
    log: MetricsLog  # metrics.csv and TensorBoard
    budget: NonFiniteBudget  # how many non-finite steps are skipped before a stop
    bad_images: BadImages  # unreadable images skipped, counted per epoch
    knn: KnnMonitor | None = None  # the kNN accuracy at epoch ends (rank 0), or none
    device_views: DeviceViews | None = None  # views made on the device (data.pipeline: batched)


@dataclass(frozen=True)
class LoopSettings:
    """The plain values the loop reads: the run's step schedule (``total_steps``), its
    epochs, the checkpoint file it keeps, how often a step is logged, the memory layout of
    the views and whether the progress is shown."""

    schedule: StepSchedule
    epochs: int
    checkpoint: Path  # <out>/checkpoints/last.ckpt
    log_every_n_steps: int
    channels_last: bool = False
    progress_bar: bool = False
