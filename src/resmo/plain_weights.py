"""A resmo backbone as the state dict of its plain model, chosen by the backbone's name:

- ``resnet18`` / ``resnet50`` -> **torchvision**: resmo's ``TorchvisionResNet`` keeps
  torchvision's module names under ``net.``; the state dict strips that prefix (and has no
  ``fc``: resmo replaces it by ``nn.Identity``), so it loads with ``strict=True`` into
  ``torchvision.models.resnet18()`` after ``model.fc = nn.Identity()``. CIFAR-stem runs
  (images <= 64 px) also need ``model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)`` and
  ``model.maxpool = nn.Identity()``;
- ``vit_tiny`` / ``vit_small`` -> **timm**: the state dict of
  ``timm.create_model(name, num_classes=0, img_size=..., patch_size=...)``;
- ``resnet_small`` -> **resmo**: it has no torchvision or timm twin; the resmo state dict
  for ``resmo.create_backbone("resnet_small", **options)``.

With the state dict comes its ``build`` record (how to build the plain model), which
:func:`build_plain_model` reads back. ``resmo export`` (resmo.export) writes both to files.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from resmo.backbone_files import cpu_state_dict
from resmo.backbones import create_backbone

TORCHVISION = ("resnet18", "resnet50")
TIMM = {"vit_tiny": "vit_tiny_patch16_224", "vit_small": "vit_small_patch16_224"}


def plain_state_dict(backbone: nn.Module, name: str, options: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state dict of the plain model, how to build it)`` for a resmo backbone."""
    state = cpu_state_dict(backbone)
    if name in TORCHVISION or name in TIMM:
        if not all(key.startswith("net.") for key in state):
            raise ValueError(f"backbone {name!r} does not keep its model under 'net.'; cannot export")
        state = {key[len("net."):]: value for key, value in state.items()}
    if name in TORCHVISION:
        if any(key.startswith("fc.") for key in state):
            raise ValueError(f"backbone {name!r} has a classifier 'fc'; resmo exports have none")
        cifar = bool(options.get("cifar_stem", False))
        build = {"format": "torchvision", "model": f"torchvision.models.{name}", "cifar_stem": cifar,
                 "changes": ["fc = nn.Identity()"] + (
                     ["conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)", "maxpool = nn.Identity()"] if cifar else [])}
    elif name in TIMM:
        build = {"format": "timm", "model": TIMM[name], "kwargs": {
            "num_classes": 0, "img_size": options.get("img_size", 224), "patch_size": options.get("patch_size", 16)}}
    else:
        build = {"format": "resmo", "model": name, "kwargs": dict(options),
                 "note": f"{name!r} has no torchvision/timm twin: build it with "
                         f"resmo.create_backbone({name!r}, **kwargs) and load this state dict"}
    return state, build


def build_plain_model(build: dict[str, Any]) -> nn.Module:
    """The plain (torchvision / timm / resmo) model an export's ``build`` record describes."""
    if build["format"] == "torchvision":
        import torchvision

        model = getattr(torchvision.models, build["model"].rsplit(".", 1)[1])()
        model.fc = nn.Identity()
        if build["cifar_stem"]:
            model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            model.maxpool = nn.Identity()
        return model
    if build["format"] == "timm":
        import timm

        return timm.create_model(build["model"], pretrained=False, **build["kwargs"])
    return create_backbone(build["model"], **build["kwargs"])
