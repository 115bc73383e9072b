"""``resmo transfer detect``: a run's backbone in Faster R-CNN (R-C4 or FPN) on a VOC folder, per seed.

For each seed: seed torch, build the detector on the run's exported ``student`` (default: the
query encoder, which MoCo's and DenseCL's detection converters take) or ``teacher`` backbone
(the state dict ``resmo export`` writes, see :func:`export_state`) or, with ``random_init``,
on a randomly initialised ResNet of the same architecture (the baseline at the same budget),
fine-tune it on the training split and measure COCO-style AP / AP50 / AP75 and VOC07's
11-point AP / AP50 / AP75 on the evaluation split. The results (settings, per seed, mean and
std) go to ``<run>/transfer/detect-<init>-<data>.json`` (resmo.transfer.results).

This is MoCo's VOC protocol's detector (R-C4 by default, :mod:`resmo.transfer.detector`) but
not its whole protocol (detectron2, synchronised BN over 8 GPUs, 24k iterations at batch 16;
multi-scale training only with ``train_sizes``): :mod:`resmo.transfer.protocol` lists every difference, and
``resmo export --format detectron2`` writes what MoCo's own detection code needs.

Defaults: train on ``train``; evaluate on ``test`` when ``ImageSets/Main/test.txt`` exists,
else on ``val``; the training options (:class:`resmo.transfer.settings.TrainingRequest`: 12
epochs, one scale, lr 0.02 x batch size / 16, device ``auto``, ...) are resolved once into the
:class:`resmo.transfer.settings.DetectSettings` every seed trains with (a device the machine
lacks is refused before any work).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from resmo.transfer import metrics
from resmo.transfer.detector import build_detector, check_detection_backbone
from resmo.transfer.results import aggregate, format_scores, result_path, write_result
from resmo.transfer.settings import TrainingRequest, resolve_settings, usable_device
from resmo.transfer.train_detect import evaluate, train
from resmo.transfer.voc import VOCDetection, available_splits, read_classes

#: how the result file and the log name the detector of each ``--head``
DETECTORS = {"c4": "R-C4 (torchvision FasterRCNN, res4 RPN and RoIAlign, res5 box head)",
             "fpn": "torchvision FasterRCNN + resnet_fpn_backbone"}


@dataclass(frozen=True)
class DetectJob:
    """What ``resmo transfer detect`` was asked to do: which backbone of which run, on which VOC
    folder, splits, classes and seeds, where to write, and the fine-tuning options as asked
    (``training``, resolved by :func:`resmo.transfer.settings.resolve_settings`)."""

    run: str
    data: str
    encoder: str = "student"
    random_init: bool = False
    seeds: tuple[int, ...] = (0,)
    train_split: str = "train"
    eval_split: str | None = None  # None: test if the folder has it, else val
    classes: str | None = None  # None: <data>/classes.txt, else VOC's 20
    training: TrainingRequest = field(default_factory=TrainingRequest)
    out: str | None = None  # None: <run>/transfer/detect-<init>-<data>.json
    config: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Flat, the training options in the place of ``training`` (the result file's ``settings.job``)."""
        flat: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            flat.update(asdict(value) if item.name == "training" else {item.name: value})
        return flat


def export_state(run, encoder: str) -> tuple[str, dict[str, torch.Tensor]]:
    """``(backbone name, torchvision state dict)`` of ``encoder``: what ``resmo export`` writes;
    raises ``ValueError`` for a backbone a detector cannot hold."""
    from resmo.plain_weights import plain_state_dict

    name = run.config.backbone
    state, build = plain_state_dict(run.encoder(encoder), name, run.backbone_options)
    check_detection_backbone(name, build if build["format"] == "torchvision" else {})
    return name, state


def default_eval_split(root: Path) -> str:
    """``test`` when the folder has that split, else ``val``."""
    return "test" if "test" in available_splits(root) else "val"


def transfer_detect(job: DetectJob, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run ``job`` (see the module doc); return the payload written to the JSON file.

    Raises ``ValueError`` for bad input, :class:`resmo.transfer.metrics.MissingPackage`
    without torchmetrics / pycocotools, and ``NonFiniteLoss`` when training diverges."""
    from resmo.eval.runs import load_run

    backend = metrics.check_map_available()
    usable_device(job.training.device)  # a device the machine lacks: refused before any work
    run = load_run(job.run, config=job.config)
    name, state = export_state(run, job.encoder)
    root = Path(job.data)
    classes = read_classes(root, job.classes)
    eval_split = job.eval_split or default_eval_split(root)
    train_data = VOCDetection(root, job.train_split, classes)
    eval_data = VOCDetection(root, eval_split, classes)
    settings = resolve_settings(job.training, len(train_data), log=log)
    if eval_split == job.train_split:
        log(f"# note: evaluating on the training split {eval_split!r}: the AP is not a held-out measure")
    init = "random_init" if job.random_init else job.encoder
    log(f"# detect: Faster R-CNN {DETECTORS[settings.head]} on {'a randomly initialised' if job.random_init else 'the ' + job.encoder} "
        f"{name} of {run.folder} (step {run.global_step}); {root}: {len(train_data)} {job.train_split} / "
        f"{len(eval_data)} {eval_split} images, {len(classes)} classes; {settings.iterations} iterations of "
        f"{settings.batch_size} images, lr {settings.lr:g}, on {settings.device}")
    per_seed = []
    for seed in job.seeds:
        started = time.perf_counter()
        torch.manual_seed(seed)
        detector = build_detector(name, len(classes), state=None if job.random_init else state,
                                  min_size=settings.min_size, max_size=settings.max_size, norm=settings.norm,
                                  rois_per_image=settings.rois_per_image, proposals=settings.proposals,
                                  head=settings.head)
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
        "global_step": run.global_step, "detector": DETECTORS[settings.head],
        "data": str(root.resolve()), "classes": list(classes), "train_split": job.train_split,
        "eval_split": eval_split, "num_train": len(train_data), "num_eval": len(eval_data),
        "num_eval_objects": eval_data.num_objects(), "ap_backend": backend,
        "settings": {**settings.to_dict(), "seeds": list(job.seeds), "job": job.to_dict()},
        "seeds": per_seed, "mean": mean, "std": std,
    }
    path = Path(job.out) if job.out else result_path(run.folder, init, root)
    payload["path"] = str(write_result(path, payload))
    return payload
