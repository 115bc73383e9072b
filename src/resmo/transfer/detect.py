"""``resmo transfer detect``: a run's backbone in torchvision's Faster R-CNN + FPN on a VOC folder, per seed.

For each seed: seed torch, build the detector on the run's exported ``student`` (default: the
query encoder, which MoCo's and DenseCL's detection converters take) or ``teacher`` backbone
(the state dict ``resmo export`` writes, see :func:`export_state`) or, with ``random_init``,
on a randomly initialised ResNet of the same architecture (the baseline at the same budget),
fine-tune it on the training split and measure COCO-style AP / AP50 / AP75 and VOC07's
11-point AP / AP50 / AP75 on the evaluation split. The results (settings, per seed, mean and
std) go to ``<run>/transfer/detect-<init>-<data>.json`` (resmo.transfer.results).

This is not MoCo's VOC protocol (detectron2, R50-C4, synchronised BN, 24k iterations at batch
16; multi-scale training only with ``train_sizes``): :mod:`resmo.transfer.protocol` lists every difference, and
``resmo export --format detectron2`` writes what MoCo's own detection code needs.

Defaults: train on ``train``; evaluate on ``test`` when ``ImageSets/Main/test.txt`` exists,
else on ``val``; 12 epochs (``iterations`` = ceil(epochs x train images / batch size)) when
neither ``iterations`` nor ``epochs`` is given; one scale (``min_size``) unless
``train_sizes`` lists the training scales; ``lr`` = 0.02 x batch size / 16 (detectron2's
linear scaling rule); ``device`` ``auto`` takes CUDA when available, else the CPU (a device
the machine lacks is refused before any work).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from resmo.transfer import metrics
from resmo.transfer.detector import build_detector, check_detection_backbone
from resmo.transfer.results import aggregate, format_scores, result_path, write_result
from resmo.transfer.train_detect import DetectSettings, evaluate, train
from resmo.transfer.voc import VOCDetection, available_splits, read_classes

DEFAULT_EPOCHS = 12


@dataclass
class DetectJob:
    """What ``resmo transfer detect`` was asked to do (its command-line options)."""

    run: str
    data: str
    encoder: str = "student"
    random_init: bool = False
    seeds: tuple[int, ...] = (0,)
    train_split: str = "train"
    eval_split: str | None = None
    classes: str | None = None
    iterations: int | None = None
    epochs: float | None = None
    batch_size: int = 8
    lr: float | None = None
    min_size: int = 800
    max_size: int = 1333
    train_sizes: tuple[int, ...] | None = None
    rois_per_image: int = 512
    proposals: int | None = None
    norm: str = "batch"
    workers: int = 0
    device: str = "auto"
    out: str | None = None
    config: str | None = None


def export_state(run, encoder: str) -> tuple[str, dict[str, torch.Tensor]]:
    """``(backbone name, torchvision state dict)`` of ``encoder``: what ``resmo export`` writes;
    raises ``ValueError`` for a backbone a detector cannot hold."""
    from resmo.export import plain_state_dict

    name = run.config.backbone
    state, build = plain_state_dict(run.encoder(encoder), name, run.backbone_options)
    check_detection_backbone(name, build if build["format"] == "torchvision" else {})
    return name, state


def default_eval_split(root: Path) -> str:
    """``test`` when the folder has that split, else ``val``."""
    return "test" if "test" in available_splits(root) else "val"


def iterations_of(job: DetectJob, num_train: int) -> int:
    if job.iterations is not None:
        return job.iterations
    epochs = DEFAULT_EPOCHS if job.epochs is None else job.epochs
    return max(1, math.ceil(epochs * num_train / job.batch_size))


def usable_device(choice: str) -> torch.device:
    """``--device`` resolved (``auto``: CUDA when available), or ``ValueError`` when this
    machine has no such device."""
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


def transfer_detect(job: DetectJob, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``job`` (see the module doc); return the payload written to the JSON file.

    Raises ``ValueError`` for bad input, :class:`resmo.transfer.metrics.MissingPackage`
    without torchmetrics / pycocotools, and ``NonFiniteLoss`` when training diverges."""
    from resmo.data.workers import capped_workers
    from resmo.eval.runs import load_run

    backend = metrics.check_map_available()
    device = usable_device(job.device)
    run = load_run(job.run, config=job.config)
    name, state = export_state(run, job.encoder)
    root = Path(job.data)
    classes = read_classes(root, job.classes)
    eval_split = job.eval_split or default_eval_split(root)
    train_data = VOCDetection(root, job.train_split, classes)
    eval_data = VOCDetection(root, eval_split, classes)
    workers, note = capped_workers(job.workers, name="--workers")
    if note:
        log(f"# note: {note}")
    if eval_split == job.train_split:
        log(f"# note: evaluating on the training split {eval_split!r}: the AP is not a held-out measure")
    settings = DetectSettings(
        iterations=iterations_of(job, len(train_data)), batch_size=job.batch_size,
        lr=job.lr if job.lr is not None else 0.02 * job.batch_size / 16, min_size=job.min_size,
        max_size=job.max_size, train_sizes=job.train_sizes, rois_per_image=job.rois_per_image,
        proposals=job.proposals, norm=job.norm,
        workers=workers, device=str(device))
    settings.log_every = max(1, settings.iterations // 10)
    init = "random_init" if job.random_init else job.encoder
    log(f"# detect: Faster R-CNN + FPN on {'a randomly initialised' if job.random_init else 'the ' + job.encoder} "
        f"{name} of {run.folder} (step {run.global_step}); {root}: {len(train_data)} {job.train_split} / "
        f"{len(eval_data)} {eval_split} images, {len(classes)} classes; {settings.iterations} iterations of "
        f"{settings.batch_size} images, lr {settings.lr:g}, on {device}")
    per_seed = []
    for seed in job.seeds:
        started = time.perf_counter()
        torch.manual_seed(seed)
        detector = build_detector(name, len(classes), state=None if job.random_init else state,
                                  min_size=settings.min_size, max_size=settings.max_size, norm=settings.norm,
                                  rois_per_image=settings.rois_per_image, proposals=settings.proposals)
        losses = train(detector, train_data, settings, seed, log=log)
        scores = evaluate(detector, eval_data, settings)
        per_seed.append({"seed": seed, **scores, "loss_first": losses[0], "loss_last": losses[-1],
                         "loss_mean": sum(losses) / len(losses), "seconds": round(time.perf_counter() - started, 2)})
        log(f"seed {seed}: {format_scores(scores)} on {eval_split} ({len(eval_data)} images)")
    mean, std = aggregate(per_seed)
    payload = {
        "kind": "detect", "init": init, "encoder": None if job.random_init else job.encoder,
        "backbone": name, "method": run.config.method, "resmo_weight": run.config.resmo.weight,
        "checkpoint": str(run.checkpoint), "checkpoint_sha256": run.checkpoint_sha256,
        "global_step": run.global_step, "detector": "torchvision FasterRCNN + resnet_fpn_backbone",
        "data": str(root.resolve()), "classes": list(classes), "train_split": job.train_split,
        "eval_split": eval_split, "num_train": len(train_data), "num_eval": len(eval_data),
        "num_eval_objects": eval_data.num_objects(), "ap_backend": backend,
        "settings": {**settings.to_dict(), "seeds": list(job.seeds), "job": asdict(job)},
        "seeds": per_seed, "mean": mean, "std": std,
    }
    path = Path(job.out) if job.out else result_path(run.folder, init, root)
    payload["path"] = str(write_result(path, payload))
    return payload
