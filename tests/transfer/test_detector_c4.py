"""The R-C4 detector (``--head c4``): res4 trunk, aligned 14x14 RoIAlign, res5 box head with the
extra norm layer; gradients reach what is trained and not what is frozen."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import roi_align

from resmo.transfer.detector import C4_PRE_NMS, C4RoIAlign, C4Trunk, Res5Head, build_detector


def test_roi_align_is_half_pixel_aligned_at_stride_16_by_hand():
    # a 14x14 res4 map (a 224-px image) whose value is the column index: the box (0, 0, 224, 224)
    # covers feature coordinates -0.5 .. 13.5 when aligned, so bin j's centre (one sample per bin)
    # reads exactly j; unaligned, it would read j + 0.5 (0 .. 13 shifted)
    ramp = torch.arange(14.0).repeat(14, 1)[None, None]  # (1, 1, 14, 14), ramp[..., y, x] = x
    box = [torch.tensor([[0.0, 0.0, 224.0, 224.0]])]
    pooled = C4RoIAlign()({"0": ramp}, box, [(224, 224)])
    assert pooled.shape == (1, 1, 14, 14)
    assert torch.allclose(pooled[0, 0], torch.arange(14.0).repeat(14, 1))
    unaligned = roi_align(ramp, box, output_size=14, spatial_scale=1 / 16, sampling_ratio=0, aligned=False)
    assert not torch.allclose(unaligned[0, 0], pooled[0, 0])


@pytest.mark.parametrize(("name", "res4", "res5"), [("resnet18", 256, 512), ("resnet50", 1024, 2048)])
def test_the_trunk_ends_at_res4_and_the_box_head_is_res5_plus_a_norm(name, res4, res5):
    torch.manual_seed(0)
    detector = build_detector(name, 3, state=None, min_size=64, max_size=64, rois_per_image=8, proposals=16)
    trunk, head = detector.backbone, detector.roi_heads.box_head
    assert isinstance(trunk, C4Trunk) and isinstance(head, Res5Head)
    assert not hasattr(trunk, "layer4") and trunk.out_channels == res4
    assert trunk(torch.zeros(1, 3, 64, 64)).shape == (1, res4, 4, 4)  # stride 16
    assert head.out_channels == res5 and isinstance(head.norm, torch.nn.BatchNorm2d)
    assert head(torch.zeros(2, res4, 14, 14)).shape == (2, res5)  # res5 strides 14 -> 7, then the mean
    predictor = detector.roi_heads.box_predictor
    assert predictor.cls_score.out_features == 4 and predictor.bbox_pred.out_features == 16  # class-specific boxes
    assert detector.rpn.head.cls_logits.out_channels == 15  # 5 sizes x 3 ratios on one map
    assert (detector.rpn._pre_nms_top_n["training"], detector.rpn._pre_nms_top_n["testing"]) == C4_PRE_NMS


@pytest.mark.parametrize("norm", ["batch", "frozen"])
def test_one_training_step_sends_gradients_where_they_belong(norm):
    torch.manual_seed(0)
    detector = build_detector("resnet18", 2, state=None, min_size=96, max_size=96, rois_per_image=16, proposals=32,
                              norm=norm)
    detector.train()
    images = [torch.rand(3, 96, 96), torch.rand(3, 96, 96)]
    targets = [{"boxes": torch.tensor([[10.0, 12.0, 60.0, 70.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[30.0, 20.0, 90.0, 80.0]]), "labels": torch.tensor([2])}]
    losses = detector(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    sum(losses.values()).backward()
    trunk, head = detector.backbone, detector.roi_heads.box_head

    def has_gradient(module: torch.nn.Module) -> bool:
        return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())

    assert has_gradient(trunk.layer2) and has_gradient(trunk.layer3) and has_gradient(head.res5)
    assert has_gradient(detector.rpn.head) and has_gradient(detector.roi_heads.box_predictor)
    if norm == "batch":  # MoCo's transfer: every stage and the extra norm trained
        assert has_gradient(trunk.conv1) and has_gradient(trunk.layer1) and has_gradient(head.norm)
    else:  # detectron2's FREEZE_AT 2: stem and res2 fixed; frozen BN has no parameters
        assert all(p.grad is None for p in (*trunk.conv1.parameters(), *trunk.layer1.parameters()))
        assert not list(head.norm.parameters())
    detector.eval()
    with torch.no_grad():
        detections = detector([torch.rand(3, 96, 96)])
    assert set(detections[0]) == {"boxes", "labels", "scores"}


def test_an_unknown_head_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^--head='c5' is not valid; allowed values: c4, fpn$"):
        build_detector("resnet18", 2, state=None, min_size=64, max_size=64, head="c5")
