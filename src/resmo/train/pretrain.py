"""``resmo pretrain``: from a resolved recipe to a finished run folder.

:func:`prepare_run` does every check and builds data, method and trainer (all bad input
fails here, before any training, as ``ValueError`` with a one-line message);
:func:`execute_run` trains, exports the backbones and writes ``summary.json``.
"""

from __future__ import annotations

import inspect
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader, Subset

from resmo.backbones import BACKBONES, backbone_names, create_backbone
from resmo.config.schema import PretrainConfig
from resmo.data import (
    DataSplits,
    EvalDataset,
    MultiViewDataset,
    build_datasets,
    build_view_recipe,
    eval_transform,
)
from resmo.losses.resmo import ResMoSettings
from resmo.methods import MomentumMethod, create_method, method_names, method_options
from resmo.train.consistency import RankConsistencyCheck
from resmo.train.module import PretrainModule
from resmo.train.monitors import KnnMonitor, RngStateCallback, ThroughputMonitor
from resmo.train.run_folder import default_out_dir, export_backbone, write_config, write_summary
from resmo.validation import check_choice, check_non_negative_int, check_positive_int

PRECISIONS = ("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "64-true")


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


def resolve_backbone_options(config: PretrainConfig, image_size: int) -> dict[str, Any]:
    """The chosen backbone's options, with size-dependent defaults filled in:
    ``cifar_stem`` for images <= 64 px, ViT ``img_size`` and ``patch_size`` (4 below 64 px)."""
    options = dict(config.backbone_options.get(config.backbone, {}))
    accepted = inspect.signature(BACKBONES.get(config.backbone)).parameters
    if "cifar_stem" in accepted:
        options.setdefault("cifar_stem", image_size <= 64)
    if "img_size" in accepted:
        options.setdefault("img_size", image_size)
    if "patch_size" in accepted:
        options.setdefault("patch_size", 4 if image_size <= 64 else 16)
    return options


def _check_settings(config: PretrainConfig) -> None:
    train = config.train
    check_positive_int("train.epochs", train.epochs)
    check_positive_int("train.batch_size", train.batch_size)
    check_positive_int("train.num_nodes", train.num_nodes)
    check_non_negative_int("data.num_workers", config.data.num_workers)
    check_choice("train.precision", train.precision, PRECISIONS)
    if train.devices != "auto":
        check_positive_int("train.devices", train.devices)
    check_non_negative_int("monitor.knn_every_epochs", config.monitor.knn_every_epochs)
    if config.resmo.warmup_epochs < 0:
        raise ValueError(f"resmo.warmup_epochs={config.resmo.warmup_epochs!r} is not valid; allowed values: a number >= 0")


def _build_method(config: PretrainConfig, backbone_options: dict, steps_per_epoch: int) -> MomentumMethod:
    section = config.resmo
    resmo = ResMoSettings(
        weight=section.weight, level=section.level, distance=section.distance,
        temperature=section.temperature, warmup_steps=round(section.warmup_epochs * steps_per_epoch),
    )
    options = dict(config.method_options.get(config.method, {}))
    if "teacher_temperature_warmup_steps" in method_options(config.method):
        fraction = options.pop("teacher_temperature_warmup_epochs", None)
        if fraction is not None:
            options["teacher_temperature_warmup_steps"] = round(float(fraction) * steps_per_epoch)
    backbone = create_backbone(config.backbone, **backbone_options)
    return create_method(config.method, backbone, resmo=resmo, **options)


def rebuild_method(
    config: PretrainConfig, image_size: int, *, steps_per_epoch: int = 1
) -> tuple[MomentumMethod, dict[str, Any]]:
    """The untrained method of ``config`` and its resolved backbone options, built by the
    same code as :func:`prepare_run` (for loading a checkpoint's ``method.*`` weights).

    ``steps_per_epoch`` only sets step-based schedules (ResMo and DINO temperature
    warm-up), never a parameter shape. Raises ``ValueError`` for unknown names.
    """
    check_choice("method", config.method, method_names())
    check_choice("backbone", config.backbone, backbone_names())
    backbone_options = resolve_backbone_options(config, image_size)
    return _build_method(config, backbone_options, steps_per_epoch), backbone_options


def _loader(dataset, *, batch_size: int, shuffle: bool, drop_last: bool, workers: int) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, num_workers=workers,
        pin_memory=torch.cuda.is_available(), persistent_workers=False,
    )


def _first(dataset, limit: int, seed: int):
    if len(dataset) <= limit:
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    return Subset(dataset, order[:limit].tolist())


def prepare_run(config: PretrainConfig, *, resume: str | None = None) -> PreparedRun:
    """Check ``config``, build data, method, callbacks and trainer. Raises ``ValueError``."""
    _check_settings(config)
    check_choice("method", config.method, method_names())
    check_choice("backbone", config.backbone, backbone_names())
    out = Path(config.out) if config.out else default_out_dir(config)
    resume = _resolve_resume(resume, out)
    pl.seed_everything(config.seed, workers=True, verbose=False)

    splits = build_datasets(
        config.data.name, image_size=config.data.image_size, cache_dir=config.data.cache_dir,
        seed=config.seed, synthetic_options=config.data.synthetic,
    )
    image_size = config.data.image_size or splits.image_size
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
    method = _build_method(config, backbone_options, steps_per_epoch)
    recipe_views = getattr(recipe, "num_global_views", 2)
    if method.num_teacher_views != recipe_views:
        raise ValueError(
            f"method_options.{config.method}.num_teacher_views={method.num_teacher_views} does not match "
            f"the {recipe_views} global views of the view recipe"
        )
    trainer = _build_trainer(config, out)  # last: Lightning starts printing here
    module = PretrainModule(method, config.optimizer)
    train_loader = _loader(
        MultiViewDataset(splits.train, recipe), batch_size=config.train.batch_size, shuffle=True,
        drop_last=True, workers=config.data.num_workers,
    )
    knn = _build_knn(config, splits, image_size)
    if knn is not None:
        trainer.callbacks.insert(0, knn)
    throughput = ThroughputMonitor()
    trainer.callbacks.insert(0, throughput)
    consistency = RankConsistencyCheck()
    trainer.callbacks.append(consistency)
    return PreparedRun(config, out, splits, image_size, train_loader, trainer, module, knn,
                       throughput, consistency, backbone_options, resume)


def expected_world_size(config: PretrainConfig) -> int:
    """Processes the trainer will start: devices per node x nodes (``auto``: all GPUs, or 1)."""
    devices = config.train.devices
    if devices == "auto":
        accelerator = config.train.accelerator
        use_gpus = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        devices = torch.cuda.device_count() if use_gpus else 1
    return int(devices) * config.train.num_nodes


def _resolve_resume(resume: str | None, out: Path) -> str | None:
    if resume is None:
        return None
    if resume == "auto":
        last = out / "checkpoints" / "last.ckpt"
        return str(last) if last.is_file() else None
    if not Path(resume).is_file():
        raise ValueError(f"--resume '{resume}' is not a checkpoint file; pass a .ckpt path or 'auto'")
    return resume


def _build_knn(config: PretrainConfig, splits: DataSplits, image_size: int) -> KnnMonitor | None:
    if not splits.has_labels or splits.val is None or splits.eval_train is None:
        warnings.warn(
            f"data '{config.data.name}' has no labelled validation split: kNN monitors are off",
            stacklevel=2,
        )
        return None
    monitor = config.monitor
    transform = eval_transform(image_size)
    batch = max(256, config.train.batch_size)
    bank = _first(EvalDataset(splits.eval_train, transform), monitor.knn_max_train, config.seed)
    val = _first(EvalDataset(splits.val, transform), monitor.knn_max_val, config.seed)
    workers = config.data.num_workers
    return KnnMonitor(
        _loader(bank, batch_size=batch, shuffle=False, drop_last=False, workers=workers),
        _loader(val, batch_size=batch, shuffle=False, drop_last=False, workers=workers),
        every_n_epochs=monitor.knn_every_epochs, k=monitor.knn_k,
        temperature=monitor.knn_temperature, num_classes=splits.num_classes,
    )


def _build_trainer(config: PretrainConfig, out: Path) -> pl.Trainer:
    train = config.train
    checkpoint = ModelCheckpoint(
        dirpath=out / "checkpoints", save_last=True, save_top_k=0, every_n_epochs=1,
        save_on_train_epoch_end=True,
    )
    return pl.Trainer(
        max_epochs=train.epochs,
        accelerator=train.accelerator,
        devices=train.devices,
        num_nodes=train.num_nodes,
        strategy=train.strategy,
        precision=train.precision,
        sync_batchnorm=train.sync_batchnorm,
        logger=[
            CSVLogger(save_dir=out, name="", version=""),
            TensorBoardLogger(save_dir=out, name="tensorboard", version=""),
        ],
        callbacks=[checkpoint, RngStateCallback()],
        log_every_n_steps=train.log_every_n_steps,
        enable_progress_bar=train.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=out,
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
        "intra_gap": {
            level: float(metrics[f"gap/{level}_epoch"]) for level in ("features", "projection", "output")
            if f"gap/{level}_epoch" in metrics
        },
        "final_loss": float(metrics["train/loss_epoch"]) if "train/loss_epoch" in metrics else None,
        "images_per_second": sum(rates) / len(rates) if rates else None,
        "wall_seconds": wall_seconds,
        "skipped_files": skipped.count,
        "skipped_examples": list(skipped.examples),
        "world_size": run.trainer.world_size,
        "ranks_consistent": run.consistency.consistent,
        "rank_fingerprints": run.consistency.fingerprints,
    }
