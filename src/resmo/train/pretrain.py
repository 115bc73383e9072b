"""``resmo pretrain``: from a resolved recipe to a finished run folder.

:func:`prepare_run` does every check and builds Fabric, data, method, optimizer and the
loop (all bad input fails here, before any training, as ``ValueError`` with a one-line
message); :func:`execute_run` runs :meth:`~resmo.train.loop.TrainingLoop.fit`, checks that
every process ends with the same state, exports the backbones and writes ``summary.json``.

Reliability: docs/reliability.md; early stops raise :class:`~resmo.train.stopping.RunStopped`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.fabric import Fabric, seed_everything

from resmo.backbone_files import save_backbone
from resmo.builder import (
    apply_backbone_settings,
    build_method,
)
from resmo.config.schema import PretrainConfig
from resmo.data import DataSplits, build_datasets, build_view_spec
from resmo.data.bad_images import BadImages
from resmo.data.batched import BatchedViews, DeviceViews
from resmo.data.train_loader import build_train_loader
from resmo.distributed.process_group import end_process_group, lost_process
from resmo.distributed.rank_check import RankCheck, check_ranks
from resmo.eval.knn_monitor import knn_monitor_for
from resmo.launch import build_fabric
from resmo.methods.base import MomentumMethod
from resmo.optim.optimizers import build_lr_scheduler, optimizer_from
from resmo.train.gpu_settings import apply_tf32
from resmo.train.interrupt import worker_ignores_stop_signals
from resmo.train.loop import TrainingLoop
from resmo.train.loop_parts import LoopParts, LoopSettings
from resmo.train.metrics_log import MetricsLog
from resmo.train.non_finite import NonFiniteBudget
from resmo.train.plan import RunPlan, plan_run
from resmo.train.resume import CHECKPOINT_FOLDER, CheckpointInfo
from resmo.train.run_folder import write_config, write_summary
from resmo.train.stopping import RunStopped


@dataclass
class PreparedRun:
    """A launched run, built from its :class:`~resmo.train.plan.RunPlan`: Fabric, the data,
    the method and the loop (``ranks`` is set by :func:`execute_run`)."""

    plan: RunPlan
    fabric: Fabric
    splits: DataSplits
    method: MomentumMethod
    loop: TrainingLoop
    notes: list[str] = field(default_factory=list)
    ranks: RankCheck | None = None

    @property
    def config(self) -> PretrainConfig:
        return self.plan.config

    @property
    def out(self) -> Path:
        return self.plan.out

    @property
    def resume(self) -> CheckpointInfo | None:
        return self.plan.resume


def _set_bad_image_policy(splits: DataSplits, policy: str) -> None:
    for dataset in (splits.train, splits.eval_train, splits.val):
        if dataset is not None and hasattr(dataset, "on_bad_image"):
            dataset.on_bad_image = policy


def prepare_run(config: PretrainConfig, *, resume: str | None = None) -> PreparedRun:
    """Plan the run (:func:`~resmo.train.plan.plan_run`: every check, before any process
    starts), launch the processes, build data, method and loop. Raises ``ValueError``.

    A failure after the launch ends the process group (no barrier: the other processes
    may not get there) before it propagates."""
    plan = plan_run(config, resume=resume)
    fabric = build_fabric(plan.config)  # several processes: the others start here, running this command again
    try:
        return build_run(plan, fabric)
    except BaseException:
        end_process_group(barrier=False)
        raise


def build_run(plan: RunPlan, fabric: Fabric) -> PreparedRun:
    """The launched run of ``plan``: one run folder, data, method, optimizer and loop."""
    plan = plan.with_processes(fabric.world_size)
    if fabric.world_size > 1 and not plan.config.out:
        # a timestamped default folder could differ between processes started a second apart
        plan = plan.with_out(Path(fabric.broadcast(str(plan.out), src=0)))
    config, out, resume = plan.config, plan.out, plan.resume
    seed_everything(config.seed, workers=True, verbose=False)
    torch.backends.cudnn.benchmark = config.train.cudnn_benchmark
    apply_tf32(config.train.tf32)

    splits = build_datasets(
        config.data.name, image_size=plan.image_size, cache_dir=config.data.cache_dir,
        seed=config.seed, synthetic_options=config.data.synthetic, max_images=config.data.max_images,
        val_fraction=config.data.val_fraction,
    )
    _set_bad_image_policy(splits, config.data.on_bad_image)
    views = build_view_spec(config.method, plan.image_size, **{**splits.view_defaults, **config.data.views})
    if len(splits.train) < plan.global_batch:
        raise ValueError(
            f"train.batch_size={config.train.batch_size} (x {plan.processes} processes) is larger "
            f"than the {len(splits.train)} training images of '{config.data.name}'; use a smaller --batch-size"
        )
    steps_per_epoch = len(splits.train) // plan.global_batch
    schedule = config.resolve(steps_per_epoch)
    method = build_method(config, plan.backbone_options, steps_per_epoch)
    if method.num_teacher_views != views.num_global_views:
        raise ValueError(
            f"method_options.{config.method}.num_teacher_views={method.num_teacher_views} does not match "
            f"the {views.num_global_views} global views of data.views"
        )
    apply_backbone_settings(method, channels_last=config.train.channels_last, compile=config.train.compile)
    if config.train.sync_batchnorm:
        method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)
    train_loader = build_train_loader(
        splits.train, views, pipeline=config.data.pipeline, batch_size=config.train.batch_size,
        seed=config.seed, workers=config.data.num_workers, worker_init_fn=worker_ignores_stop_signals)
    optimizer = optimizer_from(config.optimizer, method.student_parameters(), lr=plan.effective_lr)
    notes = list(plan.notes)
    if resume and resume.steps_per_epoch and resume.steps_per_epoch != steps_per_epoch:
        notes.append(f"the checkpoint's run had {resume.steps_per_epoch} steps per epoch, this one has "
                     f"{steps_per_epoch} (another number of processes): it continues "
                     "from the same step with another data order and learning-rate schedule")
    batched = config.data.pipeline == "batched"  # views made on the device (DeviceViews)
    loop = TrainingLoop(fabric, LoopParts(
        method, optimizer, build_lr_scheduler(
            optimizer, total_steps=schedule.total_steps, warmup_steps=schedule.lr_warmup_steps,
            lr=plan.effective_lr, min_lr=config.optimizer.min_lr),
        train_loader,
        log=MetricsLog(out, keep_before_step=resume.global_step if resume else None,
                       enabled=fabric.is_global_zero),
        budget=NonFiniteBudget(max_bad_steps=config.train.max_bad_steps,
                               max_scaler_skips_in_a_row=config.train.max_scaler_skips_in_a_row),
        bad_images=BadImages([splits.train, splits.eval_train, splits.val]),
        knn=knn_monitor_for(config, splits, plan.image_size, worker_init_fn=worker_ignores_stop_signals),
        device_views=DeviceViews(BatchedViews(views),
                                 channels_last=config.train.channels_last) if batched else None,
    ), LoopSettings(
        schedule=schedule, epochs=config.train.epochs, checkpoint=out / CHECKPOINT_FOLDER / "last.ckpt",
        log_every_n_steps=config.train.log_every_n_steps,
        channels_last=config.train.channels_last, progress_bar=config.train.progress_bar,
    ))
    return PreparedRun(plan, fabric, splits, method, loop, notes=notes)


def execute_run(run: PreparedRun) -> dict[str, Any]:
    """Train, check the ranks, export student and teacher backbones, write the summary;
    then end the process group: after a final barrier when every process got there (done,
    or stopped on purpose, which all processes decide together), without one otherwise.
    A collective that fails because another process died or hung stops the run
    (``RunStopped``, exit code 1) with one line; the last checkpoint is kept."""
    try:
        summary = _train_and_write(run)
    except RunStopped:
        end_process_group(barrier=True)
        raise
    except RuntimeError as error:
        stop = _lost_process_stop(error, run)  # before the group ends: it asks the group
        end_process_group(barrier=False)
        if stop is not None:
            raise stop from error
        raise
    except BaseException:
        end_process_group(barrier=False)
        raise
    end_process_group(barrier=True)
    return summary


def _lost_process_stop(error: RuntimeError, run: PreparedRun) -> RunStopped | None:
    if not lost_process(error):
        return None
    first_line = " ".join(str(error).split())[:200]
    checkpoint = run.out / CHECKPOINT_FOLDER / "last.ckpt"
    checkpoint = checkpoint if checkpoint.exists() else None
    kept = f"last checkpoint: {checkpoint}" if checkpoint else "no checkpoint yet"
    return RunStopped(f"stopped: another of the {run.fabric.world_size} processes ended or stopped answering "
                      f"({first_line}); {kept}", exit_code=1, reason="lost process", checkpoint=checkpoint)


def _train_and_write(run: PreparedRun) -> dict[str, Any]:
    config, fabric = run.config, run.fabric
    if fabric.is_global_zero:
        write_config(run.out, config)
    start = time.perf_counter()
    run.loop.fit(run.resume)
    wall_seconds = time.perf_counter() - start
    run.ranks = check_ranks(run.method, fabric.device)
    summary = _summary(run, wall_seconds)
    skipped = run.splits.skipped_files()
    if fabric.is_global_zero:
        if skipped:
            warnings.warn(skipped.message(), stacklevel=2)
        save_backbone(run.out / "student_backbone.pt", run.method.backbone,
                        name=config.backbone, options=run.plan.backbone_options)
        save_backbone(run.out / "teacher_backbone.pt", run.method.teacher.module.backbone,
                        name=config.backbone, options=run.plan.backbone_options)
        write_summary(run.out, summary)
    return summary


def _summary(run: PreparedRun, wall_seconds: float) -> dict[str, Any]:
    """``summary.json``: the run's settings, last kNN and epoch means, speed, skips, ranks."""
    config, loop, knn = run.config, run.loop, run.loop.knn
    means, rates, skipped = loop.means.last_epoch, loop.throughput.per_epoch, run.splits.skipped_files()
    last_knn = knn.history[-1] if knn and knn.history else {}
    return {
        "method": config.method, "backbone": config.backbone, "data": str(config.data.name),
        "epochs": config.train.epochs, "batch_size": config.train.batch_size, "seed": config.seed,
        "train_images": len(run.splits.train),
        **run.splits.val_summary(),
        "resmo_weight": config.resmo.weight,
        "knn_top1_student": last_knn.get("knn_top1_student"),
        "knn_top1_teacher": last_knn.get("knn_top1_teacher"),
        "knn_top1_random_init": knn.random_init_top1 if knn else None,
        "knn_history": knn.history if knn else [],
        "intra_gap": {level: means[f"gap/{level}"] for level in ("features", "projection", "output")
                      if f"gap/{level}" in means},
        "final_loss": means.get("train/loss"),
        "images_per_second": sum(rates) / len(rates) if rates else None, "wall_seconds": wall_seconds,
        "skipped_files": skipped.count, "skipped_examples": list(skipped.examples),
        "skipped_steps": list(loop.budget.bad_steps), "scaler_skipped_steps": loop.budget.scaler_skipped_steps,
        "world_size": run.fabric.world_size, "global_batch": run.plan.global_batch,
        "effective_lr": run.plan.effective_lr,
        "ranks_consistent": run.ranks.consistent if run.ranks else None,
        "rank_fingerprints": run.ranks.fingerprints if run.ranks else {},
    }
