"""Faster R-CNN on a run's exported ResNet backbone, with MoCo's C4 head or torchvision's FPN.

``--head`` (:data:`HEADS`):

- ``c4`` (default; MoCo's and DenseCL's VOC protocol, detectron2's ``R50-C4``): the trunk is the
  ResNet up to ``layer3`` (res4, stride 16); the RPN (one 3x3 conv, anchors of 32-512 px x 3
  ratios) and RoIAlign (14x14, ``aligned=True``: detectron2's ``ROIAlignV2``, sampling ratio 0)
  read res4; the box head is ``layer4`` (res5, its first block strides 2: 7x7), then the extra
  norm layer of MoCo's ``Res5ROIHeadsExtraNorm``, average pooling and the class-specific box
  predictor. Built from torchvision's parts (:class:`C4Trunk`, :class:`C4RoIAlign`,
  :class:`Res5Head`, ``FasterRCNN``).
- ``fpn``: torchvision's ``resnet_fpn_backbone`` (every stage feeds a feature pyramid) and its
  two-layer MLP box head on 7x7 RoIs.

Both hold the whole torchvision ResNet but ``fc``, so ``resmo export``'s torchvision state dict
loads with no missing or unexpected key. Only ResNets with the ImageNet stem (7x7 stride-2
``conv1`` and a max-pool) fit; a CIFAR-stem run or another backbone is refused with the reason
(:func:`check_detection_backbone`).

Normalisation (``--norm``):

- ``batch`` (default): ``nn.BatchNorm2d`` trained with the detector and all five stages
  fine-tuned, as MoCo's detection transfer does (BN synchronised over its 8 GPUs, nothing frozen): self-supervised
  features have other statistics than supervised ones, so their BN is not frozen;
- ``frozen``: torchvision's detection default, ``FrozenBatchNorm2d`` with the stem and
  ``layer1`` frozen (``trainable_layers=3``; detectron2's ``FREEZE_AT: 2``); for very small
  batches.

The transform (``GeneralizedRCNNTransform``) resizes to ``min_size`` / ``max_size`` and
normalises with the ImageNet mean and std, as resmo normalises when pretraining.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.ops import MultiScaleRoIAlign

DETECTION_BACKBONES = ("resnet18", "resnet50")
NORMS = ("batch", "frozen")
HEADS = ("c4", "fpn")
#: detectron2's C4 RPN: anchor sizes (one feature map) and aspect ratios; boxes kept before NMS
#: (training, testing), as ``Base-RCNN-C4.yaml`` leaves detectron2's defaults
C4_ANCHOR_SIZES, C4_ASPECT_RATIOS = (32, 64, 128, 256, 512), (0.5, 1.0, 2.0)
C4_PRE_NMS = (12000, 6000)
C4_POOL, C4_STRIDE = 14, 16


def check_detection_backbone(name: str, build: dict[str, Any]) -> None:
    """Raise ``ValueError`` (one line, with the reason) unless a detector can hold the backbone."""
    if name not in DETECTION_BACKBONES:
        raise ValueError(f"resmo transfer detect needs a ResNet backbone ({', '.join(DETECTION_BACKBONES)}) "
                         f"for Faster R-CNN; this run's backbone is {name!r}")
    if build.get("cifar_stem"):
        raise ValueError("resmo transfer detect: this run's ResNet has the CIFAR stem (3x3 conv1, no max-pool), "
                         "a detection backbone needs the ImageNet stem (7x7 stride-2 conv1 and a max-pool); "
                         "pretrain at 96 px or more (or backbone_options.<name>.cifar_stem=false)")


def build_detector(name: str, num_classes: int, *, state: dict[str, torch.Tensor] | None,
                   min_size: int, max_size: int, norm: str = "batch", rois_per_image: int = 512,
                   proposals: int | None = None, head: str = "c4") -> nn.Module:
    """Faster R-CNN with ``num_classes`` object classes (plus background) and ``head`` (the
    module doc).

    ``rois_per_image``: proposals sampled per training image for the box head (torchvision's and
    detectron2's 512 by default; the box head's cost grows with it, and small images with a few
    objects need far fewer). ``proposals``: region proposals kept after the RPN's NMS, in training
    and evaluation alike (``None``: 2000 in training, 1000 in evaluation, detectron2's and
    torchvision's default).

    ``state`` (a torchvision ResNet state dict, no ``fc``) is loaded into the backbone;
    ``None`` keeps torchvision's random initialisation (the ``--random-init`` baseline).
    Seed torch before calling: the heads (and a random backbone) are drawn from its RNG.
    """
    from torchvision.models.detection import FasterRCNN
    from torchvision.ops.misc import FrozenBatchNorm2d

    from resmo.data import IMAGENET_MEAN, IMAGENET_STD

    if norm not in NORMS:
        raise ValueError(f"--norm={norm!r} is not valid; allowed values: {', '.join(NORMS)}")
    if head not in HEADS:
        raise ValueError(f"--head={head!r} is not valid; allowed values: {', '.join(HEADS)}")
    norm_layer = nn.BatchNorm2d if norm == "batch" else FrozenBatchNorm2d
    kept = {} if proposals is None else {"rpn_post_nms_top_n_train": proposals, "rpn_post_nms_top_n_test": proposals}
    common = {"min_size": min_size, "max_size": max_size, "image_mean": list(IMAGENET_MEAN),
              "image_std": list(IMAGENET_STD), "box_batch_size_per_image": rois_per_image, **kept}
    if head == "fpn":
        from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

        backbone = resnet_fpn_backbone(backbone_name=name, weights=None, norm_layer=norm_layer,
                                       trainable_layers=5 if norm == "batch" else 3)
        if state is not None:
            load_body(backbone.body, state)
        return FasterRCNN(backbone, num_classes=num_classes + 1, **common)
    return build_c4_detector(name, num_classes, state=state, norm_layer=norm_layer, frozen=norm == "frozen", **common)


def build_c4_detector(name: str, num_classes: int, *, state: dict[str, torch.Tensor] | None,
                      norm_layer: type[nn.Module], frozen: bool, **options) -> nn.Module:
    """Faster R-CNN R-C4 (the module doc) from torchvision's parts; ``options`` go to ``FasterRCNN``."""
    import torchvision
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    resnet = getattr(torchvision.models, name)(weights=None, norm_layer=norm_layer)
    resnet.fc = nn.Identity()  # the exported state has no fc: every other key must load
    if state is not None:
        load_body(resnet, state)
    trunk, box_head = C4Trunk(resnet), Res5Head(resnet.layer4, norm_layer)
    if frozen:  # detectron2's FREEZE_AT 2 (torchvision's trainable_layers=3): stem and res2 fixed
        for module in (resnet.conv1, resnet.layer1):
            module.requires_grad_(False)
    anchors = AnchorGenerator(sizes=(C4_ANCHOR_SIZES,), aspect_ratios=(C4_ASPECT_RATIOS,))
    return FasterRCNN(trunk, num_classes=None, rpn_anchor_generator=anchors, box_roi_pool=C4RoIAlign(),
                      box_head=box_head, box_predictor=FastRCNNPredictor(box_head.out_channels, num_classes + 1),
                      rpn_pre_nms_top_n_train=C4_PRE_NMS[0], rpn_pre_nms_top_n_test=C4_PRE_NMS[1], **options)


def output_channels(stage: nn.Sequential) -> int:
    """The channels a torchvision ResNet stage puts out: its last block's last convolution's."""
    last = stage[-1]
    return (last.conv3 if hasattr(last, "conv3") else last.conv2).out_channels


class C4Trunk(nn.Module):
    """A torchvision ResNet's stem and ``layer1``-``layer3`` under their own names: res4
    features at stride 16."""

    def __init__(self, resnet: nn.Module):
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3 = resnet.layer1, resnet.layer2, resnet.layer3
        self.out_channels = output_channels(resnet.layer3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        return self.layer3(self.layer2(self.layer1(x)))


class C4RoIAlign(MultiScaleRoIAlign):
    """RoIAlign of each proposal on res4 (stride 16) to 14x14, half-pixel aligned and with an
    adaptive sampling ratio: detectron2's ``ROIAlignV2`` as its C4 configs use it. A
    ``MultiScaleRoIAlign`` (what ``FasterRCNN`` accepts) whose ``forward`` does not guess the scale
    from the sizes and aligns (torchvision's does neither)."""

    aligned = True

    def __init__(self):
        super().__init__(featmap_names=["0"], output_size=C4_POOL, sampling_ratio=0)

    def forward(self, features: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                image_shapes: list[tuple[int, int]]) -> torch.Tensor:
        from torchvision.ops import roi_align

        return roi_align(features["0"], proposals, output_size=self.output_size, spatial_scale=1.0 / C4_STRIDE,
                         sampling_ratio=0, aligned=self.aligned)


class Res5Head(nn.Module):
    """The C4 box head: res5 (``layer4``) on the pooled RoIs, MoCo's extra norm layer on its
    output (``Res5ROIHeadsExtraNorm``), then the spatial mean, one vector per RoI."""

    def __init__(self, layer4: nn.Module, norm_layer: type[nn.Module]):
        super().__init__()
        self.out_channels = output_channels(layer4)
        self.res5 = layer4
        self.norm = norm_layer(self.out_channels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.norm(self.res5(pooled)).mean(dim=(2, 3))


def backbone_state(detector: nn.Module) -> dict[str, torch.Tensor]:
    """The detector's ResNet weights under torchvision's key names (what ``resmo export``
    writes): FPN's body, or the C4 trunk with the box head's res5 as ``layer4``."""
    if isinstance(detector.backbone, C4Trunk):
        res5 = detector.roi_heads.box_head.res5.state_dict()
        return {**detector.backbone.state_dict(), **{f"layer4.{key}": value for key, value in res5.items()}}
    return detector.backbone.body.state_dict()


def load_body(body: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load an exported torchvision ResNet state dict into ``body`` (a ResNet without ``fc``, or
    FPN's body) with no key left over.

    (``FrozenBatchNorm2d`` drops ``num_batches_tracked`` itself, so it is not a leftover.)"""
    try:
        result = body.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of another shape
        raise ValueError(f"the exported backbone does not fit torchvision's ResNet body: "
                         f"{str(error).strip().splitlines()[-1].strip()}") from None
    leftover = [*result.missing_keys, *result.unexpected_keys]
    if leftover:
        raise ValueError(f"the exported backbone does not fit torchvision's ResNet body: "
                         f"{len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected keys "
                         f"(first: {leftover[0]!r})")
