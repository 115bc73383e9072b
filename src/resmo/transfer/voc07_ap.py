"""Pascal VOC 2007's box AP with the 11-point interpolation, as detectron2 reports it on VOC.

What MoCo's VOC detection numbers are (detectron2's ``PascalVOCDetectionEvaluator`` for
``voc_2007_test``: its ``voc_eval`` / ``voc_ap(use_07_metric=True)``, a rewrite of
py-faster-rcnn's ``voc_eval.py`` after the devkit's ``VOCevaldet.m``). For one class and IoU
threshold ``thr``:

1. detections of every image, sorted by score, highest first (a stable sort: ties keep their
   order of arrival);
2. each detection takes the ground-truth box of its image it overlaps most (IoU, including
   boxes already taken); if that IoU is ``> thr``: a difficult box -> the detection is ignored
   (neither TP nor FP), a box not yet taken -> TP (the box is now taken), a taken box -> FP;
   else FP;
3. recall ``rec = cumsum(TP) / npos`` (``npos``: the non-difficult boxes of the class) and
   precision ``prec = cumsum(TP) / max(cumsum(TP) + cumsum(FP), eps)``;
4. **11-point AP**: ``AP = 1/11 sum_{t in 0, 0.1, ..., 1} max(prec[rec >= t])`` (0 where no
   recall reaches ``t``), with ``t = k * 0.1`` in floating point as the devkit and detectron2
   compute it (``3 * 0.1 = 0.30000000000000004``: a recall of exactly 0.3 does not reach it).

IoU: boxes here are continuous 0-based ``xyxy`` (``resmo.transfer.voc`` turns VOC's 1-based
inclusive pixels ``[xmin, xmax]`` into ``[xmin - 1, xmax]``), so ``(x2 - x1) * (y2 - y1)``
areas equal the devkit's ``+ 1`` areas on the original pixel coordinates: the IoUs are the same.
Scores and boxes are used as the detector gives them (detectron2 writes them to text with 3 and
1 decimals first, which can merge near-ties and move an IoU across a threshold by a hair).

Reported (percent): ``VOC07_AP50`` and ``VOC07_AP75`` (thresholds 0.5 and 0.75) and
``VOC07_AP``, the mean over ``thr`` = 0.50, 0.55, ..., 0.95 (detectron2's "AP" on VOC). Each
is the mean over the classes with at least one non-difficult box in the ground truth;
detectron2 averages over every class of the data set, counting 0 for a class without boxes
(on VOC2007 test every class has boxes, so the two agree).
"""

from __future__ import annotations

from collections import defaultdict

import torch

THRESHOLDS = tuple(t / 100 for t in range(50, 100, 5))


def box_iou(box: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """IoU of one ``xyxy`` box with each of ``boxes`` ``[N, 4]`` (float64)."""
    width = (torch.minimum(boxes[:, 2], box[2]) - torch.maximum(boxes[:, 0], box[0])).clamp_min(0)
    height = (torch.minimum(boxes[:, 3], box[3]) - torch.maximum(boxes[:, 1], box[1])).clamp_min(0)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def eleven_point_ap(recall: list[float], precision: list[float]) -> float:
    """``1/11 sum_t max(precision[recall >= t])`` over ``t = k * 0.1``, k = 0..10 (a fraction)."""
    total = 0.0
    for k in range(11):
        threshold = k * 0.1
        reached = [p for r, p in zip(recall, precision, strict=True) if r >= threshold]
        total += max(reached) if reached else 0.0
    return total / 11


class VOC07AP:
    """Accumulates detections and ground truth image by image; :meth:`compute` gives the APs."""

    def __init__(self) -> None:
        self.images: list[dict[str, torch.Tensor]] = []
        self.detections: dict[int, list[tuple[float, int, torch.Tensor]]] = defaultdict(list)

    def update(self, predictions: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]]) -> None:
        """torchvision's outputs (``boxes``, ``scores``, ``labels``) and targets (``boxes``,
        ``labels``, ``iscrowd`` = difficult) of a batch of images."""
        for prediction, target in zip(predictions, targets, strict=True):
            index = len(self.images)
            difficult = target.get("iscrowd", torch.zeros(len(target["labels"]), dtype=torch.int64))
            self.images.append({"boxes": target["boxes"].double().cpu(), "labels": target["labels"].cpu(),
                                "difficult": difficult.bool().cpu()})
            for box, score, label in zip(prediction["boxes"].double().cpu(), prediction["scores"].tolist(),
                                         prediction["labels"].tolist(), strict=True):
                self.detections[int(label)].append((float(score), index, box))

    def class_ap(self, label: int, threshold: float) -> float | None:
        """The 11-point AP (fraction) of class ``label`` at IoU ``> threshold``; ``None`` without boxes."""
        truth = [(image["boxes"][image["labels"] == label], image["difficult"][image["labels"] == label])
                 for image in self.images]
        positives = sum(int((~difficult).sum()) for _, difficult in truth)
        if positives == 0:
            return None
        taken = [torch.zeros(len(boxes), dtype=torch.bool) for boxes, _ in truth]
        tp = fp = 0
        recall, precision = [], []
        for _, image, box in sorted(self.detections.get(label, []), key=lambda d: -d[0]):
            boxes, difficult = truth[image]
            overlaps = box_iou(box, boxes) if len(boxes) else torch.zeros(0, dtype=torch.float64)
            best = int(overlaps.argmax()) if len(boxes) else -1
            if best >= 0 and float(overlaps[best]) > threshold:
                if bool(difficult[best]):
                    pass  # ignored: neither a true nor a false positive
                elif not bool(taken[image][best]):
                    tp, taken[image][best] = tp + 1, True
                else:
                    fp += 1
            else:
                fp += 1
            recall.append(tp / positives)
            precision.append(tp / max(tp + fp, torch.finfo(torch.float64).eps))
        return eleven_point_ap(recall, precision)

    def compute(self) -> dict[str, float]:
        """``{"VOC07_AP", "VOC07_AP50", "VOC07_AP75"}`` in percent (-100 without any box, as COCO's -1)."""
        labels = sorted({int(label) for image in self.images for label in image["labels"].tolist()})
        per_threshold = {}
        for threshold in THRESHOLDS:
            aps = [ap for label in labels if (ap := self.class_ap(label, threshold)) is not None]
            per_threshold[threshold] = 100 * sum(aps) / len(aps) if aps else -100.0
        return {"VOC07_AP": round(sum(per_threshold.values()) / len(THRESHOLDS), 4),
                "VOC07_AP50": round(per_threshold[0.5], 4), "VOC07_AP75": round(per_threshold[0.75], 4)}
