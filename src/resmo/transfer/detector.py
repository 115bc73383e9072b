"""torchvision's Faster R-CNN with FPN on a run's exported ResNet backbone.

The backbone is torchvision's ``resnet_fpn_backbone``: its ``body`` is torchvision's ResNet
up to ``layer4``, which takes ``resmo export``'s torchvision state dict with no missing or
unexpected key (loaded ``strict``). Only ResNets with the ImageNet stem (7x7 stride-2
``conv1`` and a max-pool) fit; a CIFAR-stem run or another backbone is refused with the
reason (:func:`check_detection_backbone`).

Normalisation (``--norm``):

- ``batch`` (default): ``nn.BatchNorm2d`` trained with the detector and all five stages
  fine-tuned, as MoCo's detection transfer does (BN synchronised over its 8 GPUs, nothing frozen): self-supervised
  features have other statistics than supervised ones, so their BN is not frozen;
- ``frozen``: torchvision's detection default, ``FrozenBatchNorm2d`` with the stem and
  ``layer1`` frozen (``trainable_layers=3``); for very small batches.

The transform (``GeneralizedRCNNTransform``) resizes to ``min_size`` / ``max_size`` and
normalises with the ImageNet mean and std, as resmo normalises when pretraining.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

DETECTION_BACKBONES = ("resnet18", "resnet50")
NORMS = ("batch", "frozen")


def check_detection_backbone(name: str, build: dict[str, Any]) -> None:
    """Raise ``ValueError`` (one line, with the reason) unless a detector can hold the backbone."""
    if name not in DETECTION_BACKBONES:
        raise ValueError(f"resmo transfer detect needs a ResNet backbone ({', '.join(DETECTION_BACKBONES)}) "
                         f"for torchvision's Faster R-CNN with FPN; this run's backbone is {name!r}")
    if build.get("cifar_stem"):
        raise ValueError("resmo transfer detect: this run's ResNet has the CIFAR stem (3x3 conv1, no max-pool), "
                         "a detection backbone needs the ImageNet stem (7x7 stride-2 conv1 and a max-pool); "
                         "pretrain at 96 px or more (or backbone_options.<name>.cifar_stem=false)")


def build_detector(name: str, num_classes: int, *, state: dict[str, torch.Tensor] | None,
                   min_size: int, max_size: int, norm: str = "batch", rois_per_image: int = 512,
                   proposals: int | None = None) -> nn.Module:
    """Faster R-CNN + FPN with ``num_classes`` object classes (plus background).

    ``rois_per_image``: proposals sampled per training image for the box head (torchvision's and
    detectron2's 512 by default; the box head's cost grows with it, and small images with a few
    objects need far fewer). ``proposals``: region proposals kept after the RPN's NMS, in training
    and evaluation alike (``None``: torchvision's 2000 in training, 1000 in evaluation).

    ``state`` (a torchvision ResNet state dict, no ``fc``) is loaded into the backbone's body;
    ``None`` keeps torchvision's random initialisation (the ``--random-init`` baseline).
    Seed torch before calling: the heads (and a random backbone) are drawn from its RNG.
    """
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.misc import FrozenBatchNorm2d

    from resmo.data import IMAGENET_MEAN, IMAGENET_STD

    if norm not in NORMS:
        raise ValueError(f"--norm={norm!r} is not valid; allowed values: {', '.join(NORMS)}")
    norm_layer = nn.BatchNorm2d if norm == "batch" else FrozenBatchNorm2d
    backbone = resnet_fpn_backbone(backbone_name=name, weights=None, norm_layer=norm_layer,
                                   trainable_layers=5 if norm == "batch" else 3)
    if state is not None:
        load_body(backbone.body, state)
    kept = {} if proposals is None else {"rpn_post_nms_top_n_train": proposals, "rpn_post_nms_top_n_test": proposals}
    return FasterRCNN(backbone, num_classes=num_classes + 1, min_size=min_size, max_size=max_size,
                      image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD),
                      box_batch_size_per_image=rois_per_image, **kept)


def load_body(body: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load an exported torchvision ResNet state dict into ``body`` with no key left over.

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
