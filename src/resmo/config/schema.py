"""The pretraining recipe: typed sections with documented defaults.

The defaults are the built-in quickstart (``resmo pretrain`` with no arguments): a small
ResNet on the generated offline dataset, sized to finish in minutes on two CPU cores.
The shipped recipes (``src/resmo/recipes/<dataset>/<method>.yaml``, ``resmo recipes``)
override them per dataset and method.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# Small heads per method for the quickstart; paper-size heads are the method defaults
# (see resmo.nn.heads) and the shipped recipes (resmo.recipes) set their own.
SMALL_HEADS: dict[str, dict[str, Any]] = {
    "mocov3": {"hidden_dim": 512, "out_dim": 128, "predictor_hidden_dim": 512},
    "byol": {"hidden_dim": 512, "out_dim": 128, "predictor_hidden_dim": 512},
    "mocov2": {"hidden_dim": 512, "out_dim": 128, "queue_size": 4096},
    "dino": {"hidden_dim": 512, "bottleneck_dim": 128, "num_prototypes": 1024},
}


@dataclass
class ResMoSection:
    """The ResMo term (see resmo.losses.resmo): ``weight`` 0 gives the plain method."""

    weight: float = 1.0
    level: str = "output"
    distance: str = "cosine"
    temperature: float = 0.1
    warmup_epochs: float = 0.0


@dataclass
class DataSection:
    """Where images come from and how views are made.

    ``name``: ``synthetic`` (built-in, offline), ``cifar10``, ``cifar100``, ``stl10`` or a
    folder path. ``image_size`` null means the dataset's own size (32, 96; for a folder, chosen
    from its images: see resmo.data.sizing).
    ``views``: options of :func:`resmo.data.build_view_recipe`; ``synthetic``: options of
    :class:`resmo.data.textures.SyntheticTextures`.
    ``on_bad_image``: what an image file that cannot be read does (zero bytes, truncated,
    not an image, deleted during the run): ``skip`` (default: the next readable image takes
    its place, the file is counted in warnings and ``summary.json``) or ``error`` (stop
    with a one-line error naming the file).
    ``pipeline``: how training views are made: ``torchvision`` (the reference: per-image
    transforms in DataLoader workers), ``batched`` (uint8 batches, views made on the
    training device for the whole batch at once; see resmo.train.fast_path) or ``auto``
    (default): ``batched`` for the in-memory ``synthetic`` dataset (no files to decode, so
    worker processes would only compete with training for the cores), ``torchvision`` for
    everything else. The run's ``config.yaml`` records the pipeline chosen.
    """

    name: str = "synthetic"
    image_size: int | None = None
    cache_dir: str | None = None
    num_workers: int = 2
    views: dict[str, Any] = field(default_factory=dict)
    synthetic: dict[str, Any] = field(default_factory=dict)
    on_bad_image: str = "skip"
    pipeline: str = "auto"


@dataclass
class OptimizerSection:
    """Optimizer and learning-rate schedule (linear warm-up, then cosine to ``min_lr``).

    ``lr`` is used as given: it is never rescaled by the batch size.
    Norm and bias parameters get no weight decay (and no LARS adaptation).
    ``weight_decay_norm_and_bias``: ``sgd`` / ``adamw`` decay norm and bias parameters too
    (off: only weights are decayed). ``lars_eta``, ``lars_clip``, ``lars_exclude_bias_and_norm``: solo-learn's LARS ``eta``,
    ``clip_lr`` and ``exclude_bias_n_norm`` (``resmo.train.lars`` has the update); the
    defaults are the cited BYOL / MoCo v3 / DINO recipes' (0.02, true, true).
    ``lars_clip``: the layer-wise lr ``r`` becomes ``min(r / lr, 1)`` (so the step of a layer
    never exceeds ``lr``). ``lars_exclude_bias_and_norm``: 1-D parameters (biases, norms)
    take plain SGD with momentum and no weight decay; when false, LARS adapts and decays
    them like the weights (as solo-learn does).
    """

    name: str = "adamw"
    lr: float = 0.02
    weight_decay: float = 1e-4
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_epochs: float = 1.0
    min_lr: float = 0.0
    lars_eta: float = 0.02
    lars_clip: bool = True
    lars_exclude_bias_and_norm: bool = True
    weight_decay_norm_and_bias: bool = False


@dataclass
class TrainSection:
    """Loop, hardware and precision: everything Lightning's Trainer is told.

    ``max_bad_steps``: how many steps with a non-finite (NaN / infinite) loss term or
    gradient may be skipped before the run stops; 0 (default) stops at the first one,
    with a checkpoint of the last good step and a message naming the step and the term.
    A skipped step changes nothing (weights, teacher, queue, BatchNorm statistics).
    ``max_scaler_skips_in_a_row``: under ``16-mixed``, how many steps in a row the gradient
    scaler may skip (overflowing gradients) before the run stops: a collapsed loss scale.
    ``channels_last`` / ``compile``: channels-last memory format / ``torch.compile`` for
    the student and teacher backbones (off by default; for GPUs).
    ``cudnn_benchmark``: cuDNN autotuning of convolution algorithms (CUDA only; on).
    """

    epochs: int = 4
    batch_size: int = 64
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    sync_batchnorm: bool = False
    log_every_n_steps: int = 10
    progress_bar: bool = True
    max_bad_steps: int = 0
    max_scaler_skips_in_a_row: int = 24
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = True


@dataclass
class MonitorSection:
    """kNN of student and teacher backbones on the validation split (when labelled).

    ``knn_every_epochs``: 0 (default) measures at initialisation and after the last epoch
    only; N also measures every N epochs.
    """

    knn_every_epochs: int = 0
    knn_k: int = 20
    knn_temperature: float = 0.07
    knn_max_train: int = 10000
    knn_max_val: int = 10000


@dataclass
class PretrainConfig:
    """A whole recipe. ``method_options`` / ``backbone_options`` are keyed by name; only
    the section of the chosen method / backbone is used."""

    method: str = "mocov3"
    backbone: str = "resnet_small"
    seed: int = 0
    out: str | None = None
    method_options: dict[str, dict[str, Any]] = field(default_factory=lambda: copy.deepcopy(SMALL_HEADS))
    backbone_options: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"resnet_small": {"width": 8}}
    )
    resmo: ResMoSection = field(default_factory=ResMoSection)
    data: DataSection = field(default_factory=DataSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    train: TrainSection = field(default_factory=TrainSection)
    monitor: MonitorSection = field(default_factory=MonitorSection)
