"""``resmo pretrain``: from a resolved recipe to a finished run folder.

:func:`prepare_run` does every check and builds data, method and trainer (all bad input
fails here, before any training, as ``ValueError`` with a one-line message);
:func:`execute_run` trains, exports the backbones and writes ``summary.json``.

Reliability (see docs/reliability.md): checkpoints are written atomically with the
previous one kept (:mod:`resmo.train.checkpoint_io`); SIGTERM / SIGINT save the exact
position and stop (:mod:`resmo.train.interrupt`), non-finite steps are skipped or stop
the run (:mod:`resmo.train.non_finite`), and the data order and augmentations are pure
functions of the seed, so a run resumed mid-epoch matches an uninterrupted one
(:mod:`resmo.train.sampling`). Early stops raise :class:`~resmo.train.stopping.RunStopped`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader, Dataset, Subset

from resmo.backbones import backbone_names
from resmo.builder import build_method, resolve_backbone_options
from resmo.config.schema import PretrainConfig
from resmo.data import (
    DataSplits,
    MultiViewDataset,
    build_datasets,
    build_view_recipe,
)
from resmo.data.batched import BatchedViewRecipe
from resmo.data.eval_batches import eval_loader
from resmo.data.workers import capped_workers
from resmo.methods import method_names
from resmo.train.bad_images import BadImageMonitor
from resmo.train.checkpoint_io import AtomicCheckpointIO
from resmo.train.consistency import RankConsistencyCheck
from resmo.train.epoch_means import EpochMeans
from resmo.train.fast_path import (
    DeviceViews,
    apply_backbone_settings,
    batched_train_loader,
    chosen_pipeline,
)
from resmo.train.interrupt import GracefulInterrupt, worker_ignores_stop_signals
from resmo.train.metrics_log import ResumableCSVLogger
from resmo.train.module import PretrainModule
from resmo.train.monitors import KnnMonitor, RngStateCallback, ThroughputMonitor
from resmo.train.non_finite import NonFiniteGuard
from resmo.train.progress import EpochProgressBar
from resmo.train.resume import CHECKPOINT_FOLDER, inspect_checkpoint, resolve_resume
from resmo.train.run_folder import default_out_dir, export_backbone, write_config, write_summary
from resmo.train.sampling import EpochShuffleSampler, LoaderPosition, ResumableLoader, SeededSamples
from resmo.validation import check_choice


@dataclass
class PreparedRun:
    config: PretrainConfig
    out: Path
    splits: DataSplits
    image_size: int
    train_loader: DataLoader
    trainer: pl.Trainer
    module: PretrainModule
    knn: KnnMonitor | None
    throughput: ThroughputMonitor
    consistency: RankConsistencyCheck
    backbone_options: dict[str, Any]
    resume: str | None
    epoch_means: EpochMeans | None = None
    non_finite: NonFiniteGuard | None = None
    notes: list[str] = field(default_factory=list)


def _train_loader(dataset: Dataset, config: PretrainConfig) -> ResumableLoader:
    """Shuffled by (seed, epoch), augmented by (seed, epoch, index): see resmo.train.sampling."""
    sampler = EpochShuffleSampler(len(dataset), seed=config.seed)
    return ResumableLoader(
        SeededSamples(dataset, seed=config.seed), sampler=sampler,
        batch_size=config.train.batch_size, num_workers=config.data.num_workers,
        pin_memory=torch.cuda.is_available(), persistent_workers=False,
        worker_init_fn=worker_ignores_stop_signals,
        generator=torch.Generator().manual_seed(config.seed),  # worker seeds: not the global RNG
    )


def _set_bad_image_policy(splits: DataSplits, policy: str) -> None:
    for dataset in (splits.train, splits.eval_train, splits.val):
        if dataset is not None and hasattr(dataset, "on_bad_image"):
            dataset.on_bad_image = policy


def _first(dataset, limit: int, seed: int):
    if len(dataset) <= limit:
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[:limit].tolist())


def prepare_run(config: PretrainConfig, *, resume: str | None = None) -> PreparedRun:
    """Check ``config``, build data, method, callbacks and trainer. Raises ``ValueError``."""
    check_choice("method", config.method, method_names())
    check_choice("backbone", config.backbone, backbone_names())
    out = Path(config.out) if config.out else default_out_dir(config)
    auto_without_out = resume == "auto" and not config.out
    resume, notes = resolve_resume(resume, out)
    config.data.num_workers, workers_note = capped_workers(config.data.num_workers)
    if workers_note:
        notes.append(workers_note)
    if expected_world_size(config) > 1 and config.train.sync_batchnorm and not uses_gpus(config):
        raise ValueError(
            "train.sync_batchnorm=true cannot be used with several CPU processes: torch's "
            "SyncBatchNorm runs on GPUs only; set train.sync_batchnorm=false for a CPU run"
        )
    if expected_world_size(config) > 1 and not config.train.sync_batchnorm:
        notes.append(f"{expected_world_size(config)} processes without train.sync_batchnorm: each "
                     "normalises its BatchNorm layers over its own share of the batch (the cited "
                     "recipes synchronise them); set train.sync_batchnorm=true to follow them")
    if auto_without_out:
        notes.append("--resume auto without --out looks in a new, timestamped run folder; "
                     "pass --out RUN to continue an earlier run")
    pl.seed_everything(config.seed, workers=True, verbose=False)

    splits = build_datasets(
        config.data.name, image_size=config.data.image_size, cache_dir=config.data.cache_dir,
        seed=config.seed, synthetic_options=config.data.synthetic,
    )
    _set_bad_image_policy(splits, config.data.on_bad_image)
    image_size = config.data.image_size or splits.image_size
    # config.yaml records the side the run trains on (a folder's is chosen from its images),
    # so `resmo eval` / `gap` / `export` rebuild the same backbone without looking at the data
    config.data.image_size = image_size
    config.data.pipeline = chosen_pipeline(config.data.pipeline, str(config.data.name))  # "auto" decided
    recipe = build_view_recipe(config.method, image_size, **{**splits.view_defaults, **config.data.views})
    processes = expected_world_size(config)
    global_batch = config.train.batch_size * processes
    if len(splits.train) < global_batch:
        raise ValueError(
            f"train.batch_size={config.train.batch_size} (x {processes} processes) is larger "
            f"than the {len(splits.train)} training images of '{config.data.name}'; use a smaller --batch-size"
        )
    steps_per_epoch = len(splits.train) // global_batch
    backbone_options = resolve_backbone_options(config, image_size)
    method = build_method(config, backbone_options, steps_per_epoch)
    recipe_views = getattr(recipe, "num_global_views", 2)
    if method.num_teacher_views != recipe_views:
        raise ValueError(
            f"method_options.{config.method}.num_teacher_views={method.num_teacher_views} does not match "
            f"the {recipe_views} global views of the view recipe"
        )
    apply_backbone_settings(method, channels_last=config.train.channels_last, compile=config.train.compile)
    batched = config.data.pipeline == "batched"  # views made on the device: resmo.train.fast_path
    device_views = DeviceViews(BatchedViewRecipe.from_view_recipe(recipe),
                               channels_last=config.train.channels_last) if batched else None
    resume_step = inspect_checkpoint(resume).global_step if resume else None
    trainer = _build_trainer(config, out, resume_step)  # last: Lightning starts printing here
    module = PretrainModule(method, config.optimizer, config.resolve(steps_per_epoch), device_views=device_views,
                            channels_last=config.train.channels_last)
    if batched:
        train_loader = batched_train_loader(
            splits.train, image_size=image_size, batch_size=config.train.batch_size,
            seed=config.seed, workers=config.data.num_workers,
        )
    else:
        train_loader = _train_loader(MultiViewDataset(splits.train, recipe), config)
    checkpoint = out / CHECKPOINT_FOLDER / "last.ckpt"
    epoch_means = EpochMeans()
    non_finite = NonFiniteGuard(checkpoint, max_bad_steps=config.train.max_bad_steps,
                                max_scaler_skips_in_a_row=config.train.max_scaler_skips_in_a_row)
    # order matters at a batch end: bookkeeping first, then the callbacks that save and stop
    trainer.callbacks[0:0] = [
        epoch_means, LoaderPosition(train_loader),
        BadImageMonitor([splits.train, splits.eval_train, splits.val]),
    ]
    trainer.callbacks += [non_finite, GracefulInterrupt(checkpoint)]
    knn = _build_knn(config, splits, image_size)
    if knn is not None:  # after GracefulInterrupt: every kNN measurement runs under its handlers
        trainer.callbacks.append(knn)
    throughput = ThroughputMonitor()
    trainer.callbacks.insert(0, throughput)
    consistency = RankConsistencyCheck()
    trainer.callbacks.append(consistency)
    return PreparedRun(config, out, splits, image_size, train_loader, trainer, module, knn,
                       throughput, consistency, backbone_options, resume,
                       epoch_means=epoch_means, non_finite=non_finite, notes=notes)


def uses_gpus(config: PretrainConfig) -> bool:
    """Whether the run trains on CUDA GPUs (``train.accelerator`` auto, gpu or cuda, and a GPU)."""
    return config.train.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def expected_world_size(config: PretrainConfig) -> int:
    """Processes the trainer will start: devices per node x nodes (``auto``: all GPUs, or 1)."""
    devices = config.train.devices
    if devices == "auto":
        devices = torch.cuda.device_count() if uses_gpus(config) else 1
    return int(devices) * config.train.num_nodes


def _build_knn(config: PretrainConfig, splits: DataSplits, image_size: int) -> KnnMonitor | None:
    if not splits.has_labels or splits.val is None or splits.eval_train is None:
        warnings.warn(
            f"data '{config.data.name}' has no labelled validation split: kNN monitors are off",
            stacklevel=2,
        )
        return None
    monitor = config.monitor
    batch = max(256, config.train.batch_size)
    bank = _first(splits.eval_train, monitor.knn_max_train, config.seed)
    val = _first(splits.val, monitor.knn_max_val, config.seed)
    workers = config.data.num_workers
    return KnnMonitor(
        eval_loader(bank, image_size, batch_size=batch, num_workers=workers,
                    worker_init_fn=worker_ignores_stop_signals),
        eval_loader(val, image_size, batch_size=batch, num_workers=workers,
                    worker_init_fn=worker_ignores_stop_signals),
        every_n_epochs=monitor.knn_every_epochs, k=monitor.knn_k,
        temperature=monitor.knn_temperature, num_classes=splits.num_classes,
    )


def _build_trainer(config: PretrainConfig, out: Path, resume_step: int | None = None) -> pl.Trainer:
    """The Trainer; ``resume_step`` (when resuming) keeps metrics.csv rows of earlier steps."""
    train = config.train
    # Every epoch end: checkpoints/last.ckpt. (save_top_k=0 + save_last=True writes it only
    # when training ends in Lightning 2.6: a crash hours in would lose everything.) The
    # "top 1" file without a monitor is simply the newest, named last.ckpt, overwritten
    # atomically with the previous one kept as last-prev.ckpt (AtomicCheckpointIO).
    checkpoint = ModelCheckpoint(
        dirpath=out / CHECKPOINT_FOLDER, filename="last", save_top_k=1, monitor=None,
        save_last=False, every_n_epochs=1, save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    try:
        return _trainer(config, out, checkpoint, resume_step)
    except (MisconfigurationException, ImportError, RuntimeError, TypeError, ValueError) as error:
        message = " ".join(str(error).split())[:300]
        raise ValueError(
            f"train.accelerator={train.accelerator!r}, train.devices={train.devices!r}, "
            f"train.strategy={train.strategy!r}, train.precision={train.precision!r} cannot be used "
            f"here: {message}"
        ) from None


def _strategy(config: PretrainConfig):
    """``train.strategy``; DDP (chosen, or Lightning's choice for several processes) without
    re-broadcasting buffers before every forward pass: the queue and the DINO centre are kept
    equal by their gathered updates, rank 0's BatchNorm statistics are the same either way
    (DDP would copy rank 0's to the others), and the end-of-run check broadcasts them once
    (resmo.train.consistency). Other strategy names pass through to Lightning."""
    strategy = config.train.strategy
    if strategy == "ddp" or (strategy == "auto" and expected_world_size(config) > 1):
        return DDPStrategy(broadcast_buffers=False)
    return strategy


def _trainer(config: PretrainConfig, out: Path, checkpoint: ModelCheckpoint,
             resume_step: int | None) -> pl.Trainer:
    train = config.train
    return pl.Trainer(
        max_epochs=train.epochs,
        accelerator=train.accelerator,
        devices=train.devices,
        num_nodes=train.num_nodes,
        strategy=_strategy(config),
        precision=train.precision,
        benchmark=train.cudnn_benchmark,
        sync_batchnorm=train.sync_batchnorm,
        logger=[
            ResumableCSVLogger(save_dir=out, name="", version="", keep_before_step=resume_step),
            TensorBoardLogger(save_dir=out, name="tensorboard", version=""),
        ],
        callbacks=[checkpoint, RngStateCallback(), *([EpochProgressBar()] if train.progress_bar else [])],
        log_every_n_steps=train.log_every_n_steps,
        enable_progress_bar=False,  # resmo.train.progress.EpochProgressBar instead (train.progress_bar)
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=out,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # EpochShuffleSampler splits the data by rank itself
    )


def execute_run(run: PreparedRun) -> dict[str, Any]:
    """Train, export student and teacher backbones, write and return the summary."""
    config, trainer = run.config, run.trainer
    if trainer.is_global_zero:
        write_config(run.out, config)
    start = time.perf_counter()
    trainer.fit(run.module, train_dataloaders=run.train_loader, ckpt_path=run.resume)
    wall_seconds = time.perf_counter() - start
    summary = _summary(run, wall_seconds)
    skipped = run.splits.skipped_files()
    if skipped and trainer.is_global_zero:
        warnings.warn(skipped.message(), stacklevel=2)
    if trainer.is_global_zero:
        method = run.module.method
        export_backbone(run.out / "student_backbone.pt", method.backbone,
                        name=config.backbone, options=run.backbone_options)
        export_backbone(run.out / "teacher_backbone.pt", method.teacher.module.backbone,
                        name=config.backbone, options=run.backbone_options)
        write_summary(run.out, summary)
    return summary


def _summary(run: PreparedRun, wall_seconds: float) -> dict[str, Any]:
    config, metrics = run.config, run.trainer.callback_metrics
    means = run.epoch_means.last_epoch if run.epoch_means is not None else {}
    last_knn = run.knn.history[-1] if run.knn and run.knn.history else {}
    rates = run.throughput.per_epoch
    skipped = run.splits.skipped_files()
    return {
        "method": config.method,
        "backbone": config.backbone,
        "data": str(config.data.name),
        "epochs": config.train.epochs,
        "batch_size": config.train.batch_size,
        "seed": config.seed,
        "resmo_weight": config.resmo.weight,
        "knn_top1_student": last_knn.get("knn_top1_student"),
        "knn_top1_teacher": last_knn.get("knn_top1_teacher"),
        "knn_top1_random_init": run.knn.random_init_top1 if run.knn else None,
        "knn_history": run.knn.history if run.knn else [],
        "intra_gap": _intra_gap(means, metrics),
        "final_loss": _final(means, metrics, "train/loss"),
        "images_per_second": sum(rates) / len(rates) if rates else None,
        "wall_seconds": wall_seconds,
        "skipped_files": skipped.count,
        "skipped_examples": list(skipped.examples),
        "skipped_steps": list(run.non_finite.bad_steps) if run.non_finite is not None else [],
        "scaler_skipped_steps": run.non_finite.scaler_skipped_steps if run.non_finite is not None else 0,
        "world_size": run.trainer.world_size,
        "ranks_consistent": run.consistency.consistent,
        "rank_fingerprints": run.consistency.fingerprints,
    }


def _final(means: dict[str, float], metrics: dict, name: str) -> float | None:
    """Mean of ``name`` over the last epoch: from EpochMeans (exact across resumes), else
    from Lightning's epoch metric."""
    if name in means:
        return means[name]
    return float(metrics[f"{name}_epoch"]) if f"{name}_epoch" in metrics else None


def _intra_gap(means: dict[str, float], metrics: dict) -> dict[str, float]:
    levels = ("features", "projection", "output")
    values = {level: _final(means, metrics, f"gap/{level}") for level in levels}
    return {level: value for level, value in values.items() if value is not None}
