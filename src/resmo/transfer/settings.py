"""The fine-tuning settings of ``resmo transfer detect``: as asked, and as resolved once.

:class:`TrainingRequest` holds the options as given (the command line's, with its defaults),
``None`` where a value is derived later; :func:`resolve_settings` turns it, once the training
split's size is known, into the frozen :class:`DetectSettings` that
:mod:`resmo.transfer.train_detect` runs with and the result file records. The rules:

- ``iterations`` = ceil(epochs x train images / batch size), 12 epochs (:data:`DEFAULT_EPOCHS`)
  when neither ``iterations`` nor ``epochs`` is given;
- ``lr`` = 0.02 x batch size / 16 (detectron2's linear scaling rule) when not given;
- ``device`` ``auto`` takes CUDA when available, else the CPU; a device the machine lacks is a
  ``ValueError`` (:func:`usable_device`);
- ``workers`` at most the machine's CPU cores (:func:`resmo.data.workers.capped_workers`);
- a loss line every ``max(1, iterations // 10)`` iterations.

Importing this module loads no torch: ``resmo transfer detect``'s parser takes its defaults from
:class:`TrainingRequest`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEFAULT_EPOCHS = 12
BASE_LR, BASE_BATCH = 0.02, 16  # detectron2's BASE_LR at its IMS_PER_BATCH, scaled linearly


@dataclass(frozen=True)
class TrainingRequest:
    """The fine-tuning options as asked; ``None`` (and ``device`` ``auto``) where
    :func:`resolve_settings` derives the value (see the module doc)."""

    iterations: int | None = None
    epochs: float | None = None  # passes over the training split; only one of iterations / epochs
    batch_size: int = 8
    lr: float | None = None
    min_size: int = 800  # the detector's resize: shorter side, training (one scale) and testing
    max_size: int = 1333  # longer side at most
    train_sizes: tuple[int, ...] | None = None  # shorter sides drawn per training image (None: min_size)
    rois_per_image: int = 512  # box-head samples per training image
    proposals: int | None = None  # RPN proposals kept after NMS (None: torchvision's 2000 / 1000)
    norm: str = "batch"  # batch: BatchNorm fine-tuned; frozen: FrozenBatchNorm, stem and layer1 frozen
    head: str = "c4"  # c4: MoCo's R-C4 (RPN and RoIs on res4, res5 box head); fpn: torchvision's FPN
    workers: int = 0  # data-loading processes
    device: str = "auto"


@dataclass(frozen=True)
class DetectSettings:
    """What one fine-tuning runs with, every value resolved (made by :func:`resolve_settings`;
    each field means what :class:`TrainingRequest`'s field of the same name asks for)."""

    iterations: int
    batch_size: int
    lr: float
    min_size: int
    max_size: int
    train_sizes: tuple[int, ...] | None
    rois_per_image: int
    proposals: int | None
    norm: str
    head: str
    workers: int
    device: str  # a torch device string: cpu, cuda, cuda:N
    log_every: int  # a loss line every this many iterations

    def to_dict(self) -> dict:
        return asdict(self)


def usable_device(choice: str) -> torch.device:
    """``--device`` resolved (``auto``: CUDA when available), or ``ValueError`` when this
    machine has no such device."""
    import torch

    from resmo.eval.features import resolve_device

    device = resolve_device(choice)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ValueError(f"--device {choice}: this machine has {count or 'no'} CUDA device"
                             f"{'s' * (count != 1)}; use --device auto or cpu")
    elif device.type != "cpu":
        raise ValueError(f"--device {choice}: only cpu and cuda[:N] are supported")
    return device


def resolve_settings(request: TrainingRequest, num_train: int,
                     log: Callable[[str], None] = print) -> DetectSettings:
    """``request`` resolved for a training split of ``num_train`` images (the rules of the
    module doc); a worker count above the machine's cores is capped with a ``# note:`` line to
    ``log``. Raises ``ValueError`` for a device the machine lacks."""
    from resmo.data.workers import capped_workers

    device = usable_device(request.device)
    workers, note = capped_workers(request.workers, name="--workers")
    if note:
        log(f"# note: {note}")
    if request.iterations is not None:
        iterations = request.iterations
    else:
        epochs = DEFAULT_EPOCHS if request.epochs is None else request.epochs
        iterations = max(1, math.ceil(epochs * num_train / request.batch_size))
    return DetectSettings(
        iterations=iterations, batch_size=request.batch_size,
        lr=request.lr if request.lr is not None else BASE_LR * request.batch_size / BASE_BATCH,
        min_size=request.min_size, max_size=request.max_size, train_sizes=request.train_sizes,
        rois_per_image=request.rois_per_image, proposals=request.proposals, norm=request.norm,
        head=request.head, workers=workers, device=str(device), log_every=max(1, iterations // 10))
