"""Semantic segmentation scores from a confusion matrix: mIoU and pixel accuracy.

The confusion matrix ``M[t, p]`` counts the pixels of ground-truth class ``t`` predicted as
``p``, summed over every image of the evaluation split (as the Pascal VOC devkit's
``VOCevalseg.m`` accumulates it); pixels labelled ``ignore_index`` (VOC's 255 border) are
left out. For class ``c``

    TP_c = M[c, c],  FP_c = sum_t M[t, c] - TP_c,  FN_c = sum_p M[c, p] - TP_c
    IoU_c = TP_c / (TP_c + FP_c + FN_c)                  (VOC's "Jaccard index")

and **mIoU** is the mean of ``IoU_c`` over the classes *present*, i.e. in the ground truth
or in the prediction (``TP_c + FP_c + FN_c > 0``); a class absent from both has no IoU and
does not count (as in mmsegmentation's and torchmetrics' ``nan``-skipping mean). The
background class is a class like the others, as in VOC. **Pixel accuracy** is
``sum_c TP_c / sum M``: the share of labelled pixels predicted right. Both in percent.
"""

from __future__ import annotations

import torch


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int,
                     *, ignore_index: int = 255) -> torch.Tensor:
    """``[C, C]`` int64 counts ``M[target, prediction]`` over the pixels not ``ignore_index``."""
    keep = targets != ignore_index
    truth, guess = targets[keep].long(), predictions[keep].long()
    if truth.numel() and (int(truth.min()) < 0 or int(truth.max()) >= num_classes):
        raise ValueError(f"a target label lies outside 0-{num_classes - 1} (and is not {ignore_index})")
    if guess.numel() and (int(guess.min()) < 0 or int(guess.max()) >= num_classes):
        raise ValueError(f"a predicted label lies outside 0-{num_classes - 1}")
    flat = torch.bincount(truth * num_classes + guess, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def iou_per_class(confusion: torch.Tensor) -> list[float | None]:
    """``IoU_c`` in percent for each class (``None`` for a class absent from truth and prediction)."""
    confusion = confusion.double()
    tp = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - tp  # TP + FP + FN
    return [None if float(u) == 0 else 100.0 * float(t) / float(u) for t, u in zip(tp, union, strict=True)]


def segmentation_scores(confusion: torch.Tensor) -> dict[str, float | list[float | None]]:
    """``{"mIoU", "pixel_accuracy", "iou"}`` of the module doc (percent; ``iou`` per class)."""
    ious = iou_per_class(confusion)
    present = [value for value in ious if value is not None]
    total = float(confusion.sum())
    return {
        "mIoU": sum(present) / len(present) if present else 0.0,
        "pixel_accuracy": 100.0 * float(confusion.diag().sum()) / total if total else 0.0,
        "iou": ious,
    }
