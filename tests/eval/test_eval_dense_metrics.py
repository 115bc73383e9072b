"""The dense probe's parts: mIoU / pixel accuracy on hand-checked cases, VOC's palette and
mask reading, stage features, and a probe that must fit separable features exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from resmo.backbones import create_backbone
from resmo.eval.dense_metrics import confusion_matrix, iou_per_class, segmentation_scores
from resmo.eval.dense_probe import (
    check_stages,
    fit_dense_probe,
    probe_confusion,
    resnet_stages,
    stage_features,
)
from resmo.eval.dense_voc import SegmentationError, read_mask, voc_palette


def test_miou_and_pixel_accuracy_of_a_3x3_case_by_hand():
    target = torch.tensor([[0, 0, 1], [0, 1, 1], [2, 2, 255]])
    prediction = torch.tensor([[0, 1, 1], [0, 1, 0], [2, 1, 2]])
    confusion = confusion_matrix(prediction, target, 4)
    assert confusion.tolist() == [[2, 1, 0, 0], [1, 2, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]  # 255 left out
    # IoU = TP / (TP + FP + FN): class 0 2/(2+1+1), class 1 2/(2+2+1), class 2 1/(1+0+1), class 3 absent
    assert iou_per_class(confusion) == [50.0, 40.0, 50.0, None]
    scores = segmentation_scores(confusion)
    assert scores["mIoU"] == pytest.approx((50 + 40 + 50) / 3)
    assert scores["pixel_accuracy"] == pytest.approx(100 * 5 / 8)


def test_a_class_only_predicted_counts_with_iou_0():
    confusion = confusion_matrix(torch.tensor([[0, 3], [0, 0]]), torch.tensor([[0, 0], [0, 0]]), 4)
    scores = segmentation_scores(confusion)
    assert scores["iou"] == [75.0, None, None, 0.0]
    assert scores["mIoU"] == pytest.approx(37.5) and scores["pixel_accuracy"] == pytest.approx(75.0)


def test_a_label_outside_the_classes_is_an_error():
    with pytest.raises(ValueError, match="outside 0-2"):
        confusion_matrix(torch.tensor([0]), torch.tensor([3]), 3)


def test_voc_palette_is_the_devkits_colour_map():
    palette = voc_palette()
    assert palette[:4] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)]
    assert palette[15] == (192, 128, 128)  # person
    assert palette[255] == (224, 224, 192)  # the void border


def test_masks_read_as_palette_grey_or_rgb_and_bad_labels_name_file_and_value(tmp_path):
    labels = np.array([[0, 1], [2, 255]], dtype=np.uint8)
    palette_png = Image.frombytes("P", (2, 2), labels.tobytes())
    palette_png.putpalette([c for colour in voc_palette() for c in colour])
    palette_png.save(tmp_path / "p.png")
    Image.fromarray(labels).save(tmp_path / "l.png")
    palette_png.convert("RGB").save(tmp_path / "rgb.png")
    for name in ("p.png", "l.png", "rgb.png"):
        assert read_mask(tmp_path / name, 3).tolist() == labels.tolist()
    with pytest.raises(SegmentationError, match=r"p\.png: label 2 is outside the 2 classes"):
        read_mask(tmp_path / "p.png", 2)
    Image.new("RGB", (2, 2), (1, 2, 3)).save(tmp_path / "odd.png")
    with pytest.raises(SegmentationError, match=r"odd\.png: RGB colour \(1, 2, 3\) is not in VOC's palette"):
        read_mask(tmp_path / "odd.png", 3)


def test_stage_4_is_the_backbones_own_feature_map_and_stages_concatenate_at_the_finest_size():
    torch.manual_seed(0)
    backbone = create_backbone("resnet18").eval()
    images = torch.randn(2, 3, 64, 64)
    stem, layers = resnet_stages(backbone)
    assert torch.equal(stage_features(stem, layers, images, (4,)), backbone.feature_map(images))
    both = stage_features(stem, layers, images, (3, 4))
    assert both.shape == (2, 256 + 512, 4, 4)
    small = create_backbone("resnet_small", width=4, blocks=2).eval()
    stem, layers = resnet_stages(small)
    assert torch.equal(stage_features(stem, layers, images, (4,)), small.feature_map(images))
    with pytest.raises(ValueError, match="--stages 5 is not valid"):
        check_stages([5])


def test_the_probe_fits_features_that_name_the_class_and_is_the_same_for_the_same_seed():
    # 2x2 feature maps whose first channel is the class of a 4x4 mask's quadrant (bilinear upsampling
    # of the logits then blurs only the quadrant borders): the probe must label most pixels right.
    generator = torch.Generator().manual_seed(0)
    quadrants = torch.randint(0, 3, (16, 2, 2), generator=generator)
    features = torch.nn.functional.one_hot(quadrants, 3).permute(0, 3, 1, 2).float()
    features = features + 0.01 * torch.randn(features.shape, generator=generator)
    masks = quadrants.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2).to(torch.uint8)
    masks[:, 0, 0] = 255
    probe = fit_dense_probe(features, masks, num_classes=3, epochs=30, lr=0.1, batch_size=4, seed=1)
    scores = segmentation_scores(probe_confusion(probe, features, masks, num_classes=3))
    assert scores["pixel_accuracy"] > 90
    again = fit_dense_probe(features, masks, num_classes=3, epochs=30, lr=0.1, batch_size=4, seed=1)
    assert torch.equal(probe.classifier.weight, again.classifier.weight)
