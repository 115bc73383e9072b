"""``resmo eval dense``: the dense linear probe (:mod:`resmo.eval.dense_probe`) of a run's
student and/or teacher and of a random-init encoder, on a VOC segmentation folder.

For each encoder: features of the training and evaluation splits (:mod:`resmo.eval.dense_voc`,
images and masks at ``image_size`` px, default the run's), a probe trained on the training
split with ``seed``, and mIoU / pixel accuracy on the evaluation split
(:mod:`resmo.eval.dense_metrics`). The baseline ``random_init`` is a backbone of the run's
architecture and options drawn from torch's initialisation with ``seed`` (the same backbone
for every run of that architecture), probed with the same seed and settings. The results go
to ``<run>/eval/dense-<data tag>-<train split>-<eval split>.json`` with the header every eval
file has (:func:`resmo.eval.results.header`), the settings, per encoder the scores and
per-class IoU, ``teacher_minus_student`` and each encoder's ``minus_random_init``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from resmo.eval.dense_metrics import segmentation_scores
from resmo.eval.dense_probe import check_stages, extract_dense, fit_dense_probe, probe_confusion
from resmo.eval.dense_voc import VOCSegmentation, segmentation_classes
from resmo.eval.features import EvalData, data_tag, resolve_device
from resmo.eval.results import header, teacher_minus_student, write_result
from resmo.eval.runs import LoadedRun
from resmo.validation import check_positive_int

RANDOM_INIT = "random_init"
SCORES = ("mIoU", "pixel_accuracy")


def _first(dataset: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` images of a split (all without a limit)."""
    if limit is None or len(dataset) <= limit:  # type: ignore[arg-type]
        return dataset
    return Subset(dataset, range(check_positive_int("max_images", limit)))


def dense_data(run: LoadedRun, root: str | Path, *, train_split: str = "train", val_split: str = "val",
               image_size: int | None = None, max_train: int | None = None, max_val: int | None = None) -> EvalData:
    """The two splits of a VOC segmentation folder as :class:`EvalData` (``num_classes``
    counts the background)."""
    size = check_positive_int("image_size", image_size or run.image_size)
    classes = segmentation_classes(root)
    train = _first(VOCSegmentation(root, train_split, size, classes), max_train)
    val = _first(VOCSegmentation(root, val_split, size, classes), max_val)
    tag = f"{data_tag(str(root), size, (len(train), len(val)))}-{train_split}-{val_split}"  # type: ignore[arg-type]
    return EvalData(str(Path(root).resolve()), tag, train, val, len(classes), size)


def random_init_backbone(run: LoadedRun, seed: int) -> torch.nn.Module:
    """The run's architecture (backbone and options) at torch's initialisation drawn with ``seed``;
    torch's global random state is left as it was."""
    from resmo.backbones import create_backbone

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_backbone(run.config.backbone, **run.backbone_options).eval()


def evaluate_dense(
    run: LoadedRun, data: EvalData, encoders: Sequence[str], *, stages: Sequence[int] = (4,), epochs: int = 20,
    lr: float = 0.01, batch_size: int = 32, seed: int = 0, random_init: bool = True, device: str = "auto",
    out: str | Path | None = None, log=print,
) -> dict[str, Any]:
    """Probe each encoder (and ``random_init``), write the JSON (see the module doc) and return it."""
    stages = check_stages(stages)
    target = resolve_device(device)
    classes = segmentation_classes(data.name)
    names = [*encoders, *([RANDOM_INIT] * random_init)]
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        backbone = random_init_backbone(run, seed) if name == RANDOM_INIT else run.encoder(name)
        extract = {"stages": stages, "batch_size": batch_size, "device": target, "name": run.config.backbone}
        train_x, train_y = extract_dense(backbone, data.train, **extract)
        val_x, val_y = extract_dense(backbone, data.val, **extract)
        probe = fit_dense_probe(train_x, train_y, num_classes=data.num_classes, epochs=epochs, lr=lr,
                                batch_size=batch_size, seed=seed, device=target)
        scores = segmentation_scores(probe_confusion(probe, val_x, val_y, num_classes=data.num_classes,
                                                     batch_size=batch_size, device=target))
        train_scores = segmentation_scores(probe_confusion(probe, train_x, train_y, num_classes=data.num_classes,
                                                           batch_size=batch_size, device=target))
        results[name] = {"mIoU": scores["mIoU"], "pixel_accuracy": scores["pixel_accuracy"],
                         "train_mIoU": train_scores["mIoU"],
                         "iou": dict(zip(classes, scores["iou"], strict=True)),
                         "feature_map": list(train_x.shape[1:])}
        log(f"# {name}: mIoU {scores['mIoU']:.2f}, pixel accuracy {scores['pixel_accuracy']:.2f}")
    settings = {"stages": list(stages), "upsampling": "bilinear logits to the mask size", "epochs": epochs,
                "lr": lr, "optimizer": "adam", "batch_size": batch_size, "seed": seed, "image_size": data.image_size,
                "ignore_index": 255}
    payload = header(run, data, "dense") | {"classes": list(classes), "settings": settings, "results": results}
    payload["teacher_minus_student"] = teacher_minus_student(
        {e: {m: r[m] for m in SCORES} for e, r in results.items()})
    if RANDOM_INIT in results:
        payload["minus_random_init"] = {e: {m: results[e][m] - results[RANDOM_INIT][m] for m in SCORES}
                                        for e in results if e != RANDOM_INIT}
    path = Path(out) if out else run.results_dir / f"dense-{data.tag}.json"
    payload["path"] = str(write_result(path, payload))
    return payload
