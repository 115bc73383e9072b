"""COCO-style box AP (AP, AP50, AP75) with torchmetrics' ``MeanAveragePrecision``.

``MeanAveragePrecision`` needs a COCO evaluation backend: ``pycocotools`` (used when it is
installed) or ``faster-coco-eval``. Both come with the optional ``detect`` extra
(``pip install 'resmo[detect]'``: torchmetrics and pycocotools); without them
:func:`check_map_available` raises :class:`MissingPackage` with that command.

AP is averaged over IoU 0.50:0.05:0.95 and the classes present (COCO's ``mAP``), AP50 and
AP75 at one IoU; all in percent, up to 100 detections per image. Ground-truth boxes with
``iscrowd = 1`` (VOC's difficult objects) are ignore regions: matching them neither helps
nor hurts.
"""

from __future__ import annotations

import importlib.util
from typing import Any

INSTALL = "pip install 'resmo[detect]'"
BACKENDS = ("pycocotools", "faster_coco_eval")


class MissingPackage(RuntimeError):
    """An optional package is not installed; the message names the pip command."""


def backend() -> str:
    """The COCO backend torchmetrics will use (the first one installed)."""
    for name in BACKENDS:
        if importlib.util.find_spec(name) is not None:
            return name
    raise MissingPackage(f"resmo transfer detect computes AP with pycocotools (or faster-coco-eval), "
                         f"which is not installed: {INSTALL}")


def check_map_available() -> str:
    """Fail before any training when AP cannot be computed; return the backend's name."""
    mean_average_precision_class()
    return backend()


def mean_average_precision_class():
    try:
        from torchmetrics.detection import MeanAveragePrecision
    except ImportError:
        raise MissingPackage("resmo transfer detect computes AP with torchmetrics, which is not "
                             "installed: pip install 'resmo[detect]'") from None
    return MeanAveragePrecision


def new_metric() -> Any:
    """A fresh ``MeanAveragePrecision`` for boxes in ``xyxy``."""
    return mean_average_precision_class()(box_format="xyxy", iou_type="bbox", backend=backend())


def summary(metric: Any) -> dict[str, float]:
    """``{"AP", "AP50", "AP75"}`` in percent (-100 where there is no ground truth, as COCO's -1)."""
    values = metric.compute()
    return {key: round(float(values[name]) * 100, 4)
            for key, name in (("AP", "map"), ("AP50", "map_50"), ("AP75", "map_75"))}
