"""kNN and linear probes of backbones that are not resmo runs (random init, LightlySSL).

The same functions and settings as ``resmo eval knn`` / ``resmo eval linear``: images
through ``resmo.data.eval_transform`` (fixed order, eval mode), the whole labelled train
split as kNN bank and probe training set, the whole test split as queries; weighted kNN
(``T = 0.07``) and the L-BFGS linear probe on standardised features.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from resmo.data import DataSplits, build_datasets
from resmo.eval.features import eval_loader
from resmo.eval.knn import extract_features, weighted_knn
from resmo.eval.linear import linear_probe

KNN_TEMPERATURE = 0.07


def folder_splits(folder: str | Path, image_size: int = 32) -> DataSplits:
    """The labelled splits of an image folder (built once per run: listing it costs seconds)."""
    splits = build_datasets(str(folder), image_size=image_size)
    if splits.eval_train is None or splits.val is None:
        raise ValueError(f"folder '{folder}' has no labelled train and test splits")
    return splits


def probe_backbones(encoders: dict[str, nn.Module], splits: DataSplits, *, ks: tuple[int, ...],
                    linear_steps: int, image_size: int = 32, batch_size: int = 256) -> dict:
    """``{"knn": {name: {"k20": top1, ...}}, "linear": {name: top1}}`` for each backbone."""
    knn: dict[str, dict[str, float]] = {}
    linear: dict[str, float] = {}
    for name, backbone in encoders.items():
        bank, bank_labels = extract_features(backbone, eval_loader(splits.eval_train, image_size,
                                                                   batch_size=batch_size, num_workers=0))
        queries, labels = extract_features(backbone, eval_loader(splits.val, image_size,
                                                                 batch_size=batch_size, num_workers=0))
        knn[name] = {
            f"k{k}": weighted_knn(bank, bank_labels, queries, labels, k=k, temperature=KNN_TEMPERATURE,
                                  num_classes=splits.num_classes).top1
            for k in ks
        }
        linear[name] = linear_probe(bank, bank_labels, queries, labels, num_classes=splits.num_classes,
                                    steps=linear_steps).top1
    return {"knn": knn, "linear": linear}


@torch.no_grad()
def same_view_gap(student, teacher, splits: DataSplits, *, image_size: int = 32,
                  batch_size: int = 256) -> dict[str, float]:
    """Intra gap ``1 - mean cos(student_l(x), teacher_l(x))`` over the test images, per level.

    ``student(x)`` / ``teacher(x)`` return ``(features, output)``; modules in eval mode.
    """
    sums = {"features": 0.0, "output": 0.0}
    count = 0
    for images, _ in eval_loader(splits.val, image_size, batch_size=batch_size, num_workers=0):
        for level, s, t in zip(sums, student(images), teacher(images), strict=True):
            sums[level] += torch.nn.functional.cosine_similarity(s.float(), t.float(), dim=-1).sum().item()
        count += images.shape[0]
    return {level: 1.0 - total / count for level, total in sums.items()}
