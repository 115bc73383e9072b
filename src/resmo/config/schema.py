"""The pretraining recipe: typed sections with documented defaults and constraints.

The defaults are the built-in quickstart (``resmo pretrain`` with no arguments): a small
ResNet on the generated offline dataset, sized to finish in minutes on two CPU cores.
The shipped recipes (``src/resmo/recipes/<dataset>/<method>.yaml``, ``resmo recipes``)
override them per dataset and method.

Sections are frozen pydantic models (:class:`resmo.settings.Section`): every field's type
and allowed values live on the field (:func:`~resmo.settings.setting`), an unknown key or a
bad value fails when the recipe is read, and a read recipe is never changed (what a run
decides is a new config: :mod:`resmo.train.plan`). The ``resmo`` section is the loss's own
settings type, :class:`resmo.losses.resmo.ResMoSettings`.
:mod:`resmo.config.loader` turns pydantic's errors into one line naming the source, the
key, the value and what is allowed. :meth:`PretrainConfig.resolve` converts every
epoch-based setting into steps, once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from resmo.losses.resmo import ResMoSettings
from resmo.settings import FiniteNumber, Flag, Integer, Number, Section, Text, one_of, setting

OPTIMIZER_NAMES = ("sgd", "lars", "adamw")
PIPELINES = ("auto", "torchvision", "batched")
#: ``train.strategy`` values resmo supports and tests (Fabric's other strategies are refused).
STRATEGIES = ("auto", "ddp")
LR_SCALINGS = ("none", "linear", "sqrt")
PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "64-true")
#: Precisions that would hold the teacher in 16 bits (refused with the reason).
HALF_WEIGHTS = ("bf16-true", "16-true")
MAX_SEED = 2**32 - 1
"""NumPy's seed range, which ``seed_everything`` uses for every generator."""


def _precision(value: str) -> str:
    if value in HALF_WEIGHTS:  # the EMA needs 32-bit weights
        raise ValueError(
            f"train.precision={value!r} is not supported: it holds the teacher in 16 bits, "
            "where the EMA update m*teacher + (1-m)*student with m >= 0.99 mostly rounds to no change "
            "(the teacher stops following the student); use bf16-mixed (32-bit weights, 16-bit compute)"
        )
    if value not in PRECISIONS:
        raise ValueError(f"is not valid; allowed values: {', '.join(sorted(PRECISIONS))}")
    return value


def _devices(value: Any) -> Any:
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    raise ValueError("is not valid; allowed values: auto or an integer >= 1")


# Small heads per method for the quickstart; paper-size heads are the method defaults
# (see resmo.nn.heads) and the shipped recipes (resmo.recipes) set their own.
SMALL_HEADS: dict[str, dict[str, Any]] = {
    "mocov3": {"hidden_dim": 512, "out_dim": 128, "predictor_hidden_dim": 512},
    "byol": {"hidden_dim": 512, "out_dim": 128, "predictor_hidden_dim": 512},
    "mocov2": {"hidden_dim": 512, "out_dim": 128, "queue_size": 4096},
    "dino": {"hidden_dim": 512, "bottleneck_dim": 128, "num_prototypes": 1024},
    "densecl": {"hidden_dim": 512, "out_dim": 128, "queue_size": 4096},
}


class DataSection(Section):
    """Where images come from and how views are made.

    ``name``: ``synthetic`` (built-in, offline), ``cifar10``, ``cifar100``, ``stl10`` or a
    folder path. ``image_size`` null means the dataset's own size (32, 96; for a folder, chosen
    from its images: see resmo.data.sizing).
    ``max_images``: null (default) trains on every training image; N keeps N of them, a
    class-balanced pick (as equal a count per class as possible; uniform without labels)
    seeded by ``seed`` (see resmo.data.subset); more than the data has keeps all, with a note.
    ``val_fraction``: null (default) gives the kNN monitor the dataset's own evaluation split
    (test, or a folder's ``val/`` / ``test/``); a number in (0, 1) holds out that fraction of
    each class of the training images (rounded, at least 1 of a class of 2 or more), seeded by
    ``seed`` (see resmo.data.holdout): they leave pretraining and the monitor's memory bank
    and are its validation set, so training reads no test image. It is carved before
    ``max_images`` caps the rest, so it does not depend on ``max_images``.
    ``views``: options of :func:`resmo.data.build_view_spec`; ``synthetic``: options of
    :class:`resmo.data.textures.SyntheticTextures`.
    ``on_bad_image``: what an image file that cannot be read does (zero bytes, truncated,
    not an image, deleted during the run): ``skip`` (default: the next readable image takes
    its place, the file is counted in warnings and ``summary.json``) or ``error`` (stop
    with a one-line error naming the file).
    ``pipeline``: how training views are made: ``torchvision`` (the reference: per-image
    transforms in DataLoader workers), ``batched`` (uint8 batches, views made on the
    training device for the whole batch at once; see resmo.data.train_loader) or ``auto``
    (default): ``batched`` when training on CUDA (per-image views in workers cannot keep a
    large GPU busy) and for the in-memory ``synthetic`` dataset (no files to decode, so
    worker processes would only compete with training for the cores), ``torchvision`` for
    everything else on the CPU. The run's ``config.yaml`` records the pipeline chosen.
    """

    name: Text = "synthetic"
    image_size: Integer | None = setting(None, "null or an integer >= 1", ge=1)
    max_images: Integer | None = setting(None, "null or an integer >= 1", ge=1)
    val_fraction: FiniteNumber | None = setting(None, "null or a number in (0, 1)", gt=0, lt=1)
    cache_dir: Text | None = None
    num_workers: Integer = setting(2, "an integer >= 0", ge=0)
    views: dict[str, Any] = Field(default_factory=dict)
    synthetic: dict[str, Any] = Field(default_factory=dict)
    on_bad_image: one_of(("skip", "error")) = "skip"
    pipeline: one_of(PIPELINES) = "auto"


class OptimizerSection(Section):
    """Optimizer and learning-rate schedule (linear warm-up, then cosine to ``min_lr``).

    ``lr_scaling``: how ``lr`` follows the global batch ``B`` (``train.batch_size`` x
    processes) against ``lr_reference_batch`` ``R``: ``none`` (default: ``lr`` as given),
    ``linear`` (``lr x B / R``, Goyal et al. 2017; solo-learn's ``main_pretrain`` scales
    ``lr * batch_size * devices * num_nodes / 256``) or ``sqrt`` (``lr x sqrt(B / R)``).
    The optimizer and its schedule use the result (``min_lr`` stays as given, as in
    solo-learn); start-up prints it in a ``# note:`` line and ``summary.json`` records
    it (``effective_lr``, ``global_batch``).
    Norm and bias parameters get no weight decay (and no LARS adaptation).
    ``weight_decay_norm_and_bias``: ``sgd`` / ``adamw`` decay norm and bias parameters too
    (off: only weights are decayed). ``lars_eta``, ``lars_clip``, ``lars_exclude_bias_and_norm``: solo-learn's LARS ``eta``,
    ``clip_lr`` and ``exclude_bias_n_norm`` (``resmo.optim.lars`` has the update); the
    defaults are the cited BYOL / MoCo v3 / DINO recipes' (0.02, true, true).
    ``lars_clip``: the layer-wise lr ``r`` becomes ``min(r / lr, 1)`` (so the step of a layer
    never exceeds ``lr``). ``lars_exclude_bias_and_norm``: 1-D parameters (biases, norms)
    take plain SGD with momentum and no weight decay; when false, LARS adapts and decays
    them like the weights (as solo-learn does).
    """

    name: one_of(OPTIMIZER_NAMES) = "adamw"
    lr: FiniteNumber = setting(0.02, "a number >= 0", ge=0)
    weight_decay: FiniteNumber = setting(1e-4, "a number >= 0", ge=0)
    momentum: Number = setting(0.9, "a number in [0, 1]", ge=0, le=1)
    betas: tuple[Annotated[Number, Field(ge=0, lt=1)], Annotated[Number, Field(ge=0, lt=1)]] = setting(
        (0.9, 0.999), "two numbers in [0, 1)")
    warmup_epochs: FiniteNumber = setting(1.0, "a number >= 0", ge=0)
    min_lr: FiniteNumber = setting(0.0, "a number >= 0", ge=0)
    lars_eta: FiniteNumber = setting(0.02, "a number >= 0", ge=0)
    lars_clip: Flag = True
    lars_exclude_bias_and_norm: Flag = True
    weight_decay_norm_and_bias: Flag = False
    lr_scaling: one_of(LR_SCALINGS) = "none"
    lr_reference_batch: Integer = setting(256, "an integer >= 1", ge=1)


class TrainSection(Section):
    """Loop, hardware and precision: what the training loop and Lightning Fabric are told.

    ``max_bad_steps``: how many steps with a non-finite (NaN / infinite) loss term or
    gradient may be skipped before the run stops; 0 (default) stops at the first one,
    with a checkpoint of the last good step and a message naming the step and the term.
    A skipped step changes nothing (weights, teacher, queue, BatchNorm statistics).
    ``max_scaler_skips_in_a_row``: under ``16-mixed``, how many steps in a row the gradient
    scaler may skip (overflowing gradients) before the run stops: a collapsed loss scale.
    ``channels_last`` / ``compile``: channels-last memory format / ``torch.compile`` for
    the student and teacher backbones (off by default; for GPUs).
    ``cudnn_benchmark``: cuDNN autotuning of convolution algorithms (CUDA only; on).
    ``tf32``: TensorFloat-32 for float32 matmuls and convolutions on CUDA (on; false: strict
    float32 for both; resmo.train.gpu_settings).
    ``strategy``: ``auto`` (one process: no strategy; several: DDP) or ``ddp``; Fabric's
    other strategies (FSDP, DeepSpeed, ...) are refused when the recipe is read.
    ``devices`` x ``num_nodes``: under torchrun or SLURM they must match the processes the
    launcher started; resmo adopts the launcher's and says so (resmo.distributed.launcher_env).
    ``rendezvous_timeout``: seconds every process waits for the others to join (default 60,
    for processes started on one machine; raise it for nodes that start minutes apart):
    after 5 s one line says what it waits for, at the timeout the run ends with a one-line
    error and exit code 2; SIGINT / SIGTERM end the wait at once. Collectives time out after
    ``max(10 x rendezvous_timeout, 600 s)`` (resmo.distributed.process_group).
    """

    epochs: Integer = setting(4, "an integer >= 1", ge=1)
    batch_size: Integer = setting(64, "an integer >= 1", ge=1)
    accelerator: Text = "auto"
    devices: Annotated[Integer | Text, AfterValidator(_devices)] = 1
    num_nodes: Integer = setting(1, "an integer >= 1", ge=1)
    strategy: one_of(STRATEGIES) = "auto"
    precision: Annotated[Text, AfterValidator(_precision)] = "32-true"
    sync_batchnorm: Flag = False
    log_every_n_steps: Integer = setting(10, "an integer >= 1", ge=1)
    progress_bar: Flag = True
    max_bad_steps: Integer = setting(0, "an integer >= 0", ge=0)
    max_scaler_skips_in_a_row: Integer = setting(24, "an integer >= 0", ge=0)
    channels_last: Flag = False
    compile: Flag = False
    cudnn_benchmark: Flag = True
    tf32: Flag = True
    rendezvous_timeout: FiniteNumber = setting(60.0, "a number > 0 (seconds)", gt=0)


class MonitorSection(Section):
    """kNN of student and teacher backbones on the validation split (when labelled).

    ``knn_every_epochs``: 0 (default) measures at initialisation and after the last epoch
    only; N also measures every N epochs.
    """

    knn_every_epochs: Integer = setting(0, "an integer >= 0", ge=0)
    knn_k: Integer = setting(20, "an integer >= 1", ge=1)
    knn_temperature: FiniteNumber = setting(0.07, "a number > 0", gt=0)
    knn_max_train: Integer = setting(10000, "an integer >= 1", ge=1)
    knn_max_val: Integer = setting(10000, "an integer >= 1", ge=1)


class PretrainConfig(Section):
    """A whole recipe. ``method_options`` / ``backbone_options`` are keyed by name; only
    the section of the chosen method / backbone is used."""

    method: Text = "mocov3"
    backbone: Text = "resnet_small"
    seed: Integer = setting(0, f"an integer in [0, {MAX_SEED}]", ge=0, le=MAX_SEED)
    out: Text | None = None
    method_options: dict[str, dict[str, Any]] = Field(default_factory=lambda: copy.deepcopy(SMALL_HEADS))
    backbone_options: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"resnet_small": {"width": 8}})
    resmo: ResMoSettings = Field(default_factory=ResMoSettings)
    data: DataSection = Field(default_factory=DataSection)
    optimizer: OptimizerSection = Field(default_factory=OptimizerSection)
    train: TrainSection = Field(default_factory=TrainSection)
    monitor: MonitorSection = Field(default_factory=MonitorSection)

    def resolve(self, steps_per_epoch: int) -> StepSchedule:
        """The optimizer's schedule in steps, with ``steps_per_epoch`` steps per epoch (the
        methods turn their own epoch-based settings into steps: ResMo's and DINO's warm-ups)."""
        total = max(1, self.train.epochs * steps_per_epoch)
        lr_warmup = max(0, min(total - 1, round(self.optimizer.warmup_epochs * steps_per_epoch)))
        return StepSchedule(steps_per_epoch, total, lr_warmup)

    def chosen_method_options(self) -> dict[str, Any]:
        """``method_options`` of the chosen method (``{}`` when the recipe sets none)."""
        return dict(self.method_options.get(self.method, {}))


@dataclass(frozen=True)
class StepSchedule:
    """The optimizer's schedule in steps (:meth:`PretrainConfig.resolve`): steps per epoch,
    total steps and the learning-rate warm-up."""

    steps_per_epoch: int
    total_steps: int
    lr_warmup_steps: int
