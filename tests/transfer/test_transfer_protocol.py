"""The detection protocol table (resmo.transfer.protocol): its resmo column is what the code does,
and docs/detection.md shows the table as rendered."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from resmo.data import IMAGENET_MEAN, IMAGENET_STD
from resmo.transfer import protocol, train_detect
from resmo.transfer.detect import DetectJob
from resmo.transfer.detector import DETECTION_BACKBONES, C4Trunk, build_detector
from resmo.transfer.results import KEYS
from resmo.transfer.settings import resolve_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "detection.md"


def number(value: float) -> str:
    return f"{value:g}"


def measured() -> dict[str, dict[str, str]]:
    """What ``resmo transfer detect`` does by default, read off the code (not off the table)."""
    job = DetectJob(run="RUN", data="DATA")
    num_train = 16 * job.training.batch_size  # 16 iterations per epoch
    settings = resolve_settings(job.training, num_train, log=print)  # transfer_detect's resolution
    torch.manual_seed(0)
    detector = build_detector("resnet18", 20, state=None, min_size=settings.min_size, max_size=settings.max_size,
                              norm=settings.norm, rois_per_image=settings.rois_per_image, proposals=settings.proposals,
                              head=settings.head)
    rpn, heads, transform = detector.rpn, detector.roi_heads, detector.transform
    sizes = [size for level in rpn.anchor_generator.sizes for size in level]
    ratios = {len(level) for level in rpn.anchor_generator.aspect_ratios}
    c4 = isinstance(detector.backbone, C4Trunk)
    resnet = [detector.backbone, heads.box_head] if c4 else [detector.backbone.body]
    norms = {type(m).__name__ for part in resnet for m in part.modules() if "Norm" in type(m).__name__}
    frozen = [name for part in resnet for name, p in part.named_parameters() if not p.requires_grad]
    pre, post = rpn._pre_nms_top_n, rpn._post_nms_top_n
    return {
        "Detector": {"head": settings.head, "detector": type(detector).__name__,
                     "backbone": type(detector.backbone).__name__, "box_head": type(heads.box_head).__name__,
                     "pool": "x".join(str(s) for s in heads.box_roi_pool.output_size),
                     "aligned": "yes" if getattr(heads.box_roi_pool, "aligned", False) else "no"},
        "Backbone": {"backbones": " or ".join(DETECTION_BACKBONES)},
        "Encoder": {"encoder": job.encoder},
        "Normalisation layers": {"norm": settings.norm, "norm_layer": "/".join(sorted(norms)),
                                 "precise_bn": "yes" if hasattr(settings, "precise_bn") else "no"},
        "Frozen stages": {"frozen": ", ".join(frozen) or "none"},
        "Input": {"mean": str(list(transform.image_mean)), "std": str(list(transform.image_std))},
        "Training scale": {"min_size": ",".join(map(str, transform.min_size)), "max_size": str(transform.max_size),
                           "scales": "one scale" if settings.train_sizes is None else "several"},
        "Test scale": {"min_size": str(transform.min_size[-1]), "max_size": str(transform.max_size)},
        "Augmentation": {"p": number(train_detect.FLIP_PROBABILITY)},
        "Batch, learning rate": {"batch": str(settings.batch_size), "lr": number(settings.lr)},
        "Schedule": {"epochs": number(settings.iterations * settings.batch_size / num_train), "steps": ", ".join(f"{100 * s:g} %" for s in train_detect.LR_STEPS),
                     "warmup": str(train_detect.WARMUP_ITERATIONS), "warmup_factor": number(train_detect.WARMUP_FACTOR)},
        "Optimizer": {"momentum": number(train_detect.MOMENTUM), "weight_decay": f"{train_detect.WEIGHT_DECAY:.4f}"},
        "RPN": {"feature": "res4" if c4 else "each FPN level", "anchors": f"{min(sizes)}-{max(sizes)}", "ratios": "/".join(map(str, sorted(ratios))),
                "pre_nms": f"{pre['training']:,} / {pre['testing']:,}", "post_nms": f"{post['training']:,} / {post['testing']:,}",
                "nms": number(rpn.nms_thresh), "batch": str(rpn.fg_bg_sampler.batch_size_per_image),
                "positive": number(rpn.fg_bg_sampler.positive_fraction)},
        "RoI sampling": {"rois": str(heads.fg_bg_sampler.batch_size_per_image),
                         "positive": number(heads.fg_bg_sampler.positive_fraction)},
        "Test output": {"score": number(heads.score_thresh), "nms": number(heads.nms_thresh),
                        "detections": str(heads.detections_per_img)},
        "Data": {"train_split": job.train_split},
        "Metric": {"coco": ", ".join(k for k in KEYS if not k.startswith("VOC07")),
                   "voc": ", ".join(k for k in KEYS if k.startswith("VOC07"))},
        "Trials": {"seeds": ",".join(map(str, job.seeds))},
    }


def test_the_resmo_column_is_what_transfer_detect_does_by_default():
    table = {setting.name: setting.values for setting in protocol.SETTINGS}
    actual = measured()
    assert set(table) == set(actual), "a setting is measured but not in the table, or the other way round"
    for name, values in actual.items():
        assert table[name] == values, f"row {name!r}: the table says {table[name]}, the code does {values}"


def test_the_input_row_is_resmos_pretraining_normalisation():
    values = next(s.values for s in protocol.SETTINGS if s.name == "Input")
    assert values == {"mean": str(list(IMAGENET_MEAN)), "std": str(list(IMAGENET_STD))}


def test_every_row_renders_and_docs_detection_md_shows_the_current_table():
    for setting in protocol.SETTINGS:
        assert "{" not in setting.resmo_text() and setting.moco
    table = protocol.render_table()
    assert len(table.splitlines()) == 2 + len(protocol.SETTINGS)
    assert protocol.with_table(DOC.read_text()) == DOC.read_text(), (
        "docs/detection.md is stale: python -m resmo.transfer.protocol docs/detection.md")
    with pytest.raises(ValueError, match="no protocol table markers"):
        protocol.with_table("no markers")
