"""VOC07's 11-point AP (resmo.transfer.voc07_ap) on hand-checked cases."""

from __future__ import annotations

import pytest
import torch

from resmo.transfer.voc07_ap import VOC07AP, eleven_point_ap


def test_eleven_point_interpolation_by_hand():
    # recall 1/3 at precision 1, then 2/3 at 1/2: t = 0, .1, .2, .3 see 1; t = .4, .5, .6 see 1/2; t >= .7 nothing
    assert eleven_point_ap([1 / 3, 1 / 3, 2 / 3], [1.0, 0.5, 0.5]) == pytest.approx((4 * 1 + 3 * 0.5) / 11)
    # the interpolated precision is the best at any recall >= t, not the one at t
    assert eleven_point_ap([0.5, 1.0], [0.5, 1.0]) == pytest.approx(1.0)
    # t = 3 * 0.1 = 0.30000000000000004 in floating point (the devkit's and detectron2's): 0.3 does not reach it
    assert eleven_point_ap([0.3], [1.0]) == pytest.approx(3 / 11)
    assert eleven_point_ap([], []) == 0.0


def image(boxes, labels, difficult=None):
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return {"boxes": boxes, "labels": torch.tensor(labels, dtype=torch.int64),
            "iscrowd": torch.tensor(difficult or [0] * len(labels), dtype=torch.int64)}


def detections(rows):
    return {"boxes": torch.tensor([r[1] for r in rows], dtype=torch.float32).reshape(-1, 4),
            "scores": torch.tensor([r[0] for r in rows]), "labels": torch.tensor([r[2] for r in rows])}


def test_matching_difficult_boxes_duplicates_and_thresholds_by_hand():
    metric = VOC07AP()
    truth = [image([[0, 0, 10, 10], [20, 20, 30, 30]], [1, 1]),
             image([[0, 0, 10, 10], [50, 50, 60, 60]], [1, 1], difficult=[0, 1])]
    predicted = [
        detections([(0.9, [0, 0, 10, 10], 1),       # TP: box A                     rec 1/3 prec 1
                    (0.7, [0, 0, 10, 10], 1),       # FP: A is taken                rec 1/3 prec 1/2
                    (0.4, [0, 0, 5, 5], 2)]),       # class 2 has no box: not averaged in
        detections([(0.8, [50, 50, 60, 60], 1),     # the difficult box: ignored
                    (0.6, [80, 80, 90, 90], 1),     # FP: overlaps nothing          rec 1/3 prec 1/3
                    (0.5, [0, 0, 10, 12], 1)]),     # TP at IoU 100/120 = 0.833     rec 2/3 prec 2/4
    ]
    metric.update(predicted, truth)
    assert metric.class_ap(1, 0.5) == pytest.approx((4 * 1 + 3 * 0.5) / 11)  # = 0.5
    assert metric.class_ap(1, 0.85) == pytest.approx(4 / 11)  # 0.833 is no longer a match
    assert metric.class_ap(2, 0.5) is None
    scores = metric.compute()
    assert scores["VOC07_AP50"] == pytest.approx(50.0) and scores["VOC07_AP75"] == pytest.approx(50.0)
    # thresholds .50 ... .80 (7 of them) give 50, .85 .90 .95 give 400/11
    assert scores["VOC07_AP"] == pytest.approx((7 * 50 + 3 * 400 / 11) / 10, abs=1e-4)


def test_a_detection_takes_its_best_box_even_when_taken_and_no_box_means_minus_100():
    metric = VOC07AP()
    # the second detection overlaps the taken first box best (IoU 80/120) and the second less (30/170): an FP, as in the devkit
    metric.update([detections([(0.9, [0, 0, 10, 10], 1), (0.8, [2, 0, 12, 10], 1)])],
                  [image([[0, 0, 10, 10], [9, 0, 19, 10]], [1, 1])])
    assert metric.class_ap(1, 0.5) == pytest.approx((6 * 1.0) / 11)  # recall 1/2 at precision 1, never more
    assert VOC07AP().compute()["VOC07_AP50"] == -100.0
