"""``resmo export``: a run's student or teacher backbone as weights of the plain model.

Formats (chosen by the run's backbone):

- ``resnet18`` / ``resnet50`` -> **torchvision**: resmo's ``TorchvisionResNet`` keeps
  torchvision's module names under ``net.``; the export strips that prefix (and has no
  ``fc``: resmo replaces it by ``nn.Identity``), so it loads with ``strict=True`` into
  ``torchvision.models.resnet18()`` after ``model.fc = nn.Identity()``. CIFAR-stem runs
  (images <= 64 px) also need ``model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)`` and
  ``model.maxpool = nn.Identity()``;
- ``vit_tiny`` / ``vit_small`` -> **timm**: the state dict of
  ``timm.create_model(name, num_classes=0, img_size=..., patch_size=...)``;
- ``resnet_small`` -> **resmo**: it has no torchvision or timm twin; the file holds the
  resmo state dict for ``resmo.create_backbone("resnet_small", **options)``.

Next to ``<name>.pt`` (a plain state dict: ``torch.load(path, weights_only=True)``) a
``<name>.json`` records the format, how to build the model, the normalisation and the
source checkpoint.

A run folder's ``student_backbone.pt`` / ``teacher_backbone.pt`` (written when training
ends, :func:`save_backbone`) hold resmo's own backbone with what rebuilds it
(:func:`load_backbone`); ``resmo export`` turns them into the formats above.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resmo.backbones import create_backbone
from resmo.data import IMAGENET_MEAN, IMAGENET_STD
from resmo.detectron2_export import (
    detectron2_config,
    detectron2_opts,
    detectron2_weights,
    write_detectron2_config,
    write_detectron2_pickle,
)
from resmo.eval.runs import load_run
from resmo.files import atomic_torch_save
from resmo.validation import check_choice

TORCHVISION = ("resnet18", "resnet50")
TIMM = {"vit_tiny": "vit_tiny_patch16_224", "vit_small": "vit_small_patch16_224"}


def cpu_state_dict(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``backbone``'s state dict on the CPU (shares nothing with the module)."""
    return {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}


def save_backbone(path: Path, backbone: nn.Module, *, name: str, options: dict[str, Any]) -> None:
    """Save ``backbone``'s weights with what is needed to rebuild it."""
    state = cpu_state_dict(backbone)
    atomic_torch_save({"backbone": name, "options": dict(options), "state_dict": state}, path,
                      keep_previous_version=False)


def load_backbone(path: str | Path) -> nn.Module:
    """Rebuild a backbone exported by :func:`save_backbone` (``strict=True``)."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    backbone = create_backbone(saved["backbone"], **saved["options"])
    backbone.load_state_dict(saved["state_dict"], strict=True)
    return backbone


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


EXPORT_FORMATS = ("plain", "detectron2")


def export_encoder(run_path: str | Path, encoder: str, *, out: str | Path | None = None,
                   config: str | Path | None = None, format: str = "plain") -> tuple[Path, dict[str, Any]]:
    """Export ``encoder`` (student / teacher) of a run folder or checkpoint.

    ``format`` ``plain`` writes ``out`` (default ``<run>/export/<encoder>-<backbone>.pt``),
    ``detectron2`` a detectron2 ``.pkl`` (default ``<run>/export/<encoder>-<backbone>-detectron2.pkl``)
    and the config fragment detectron2 needs to read it right, ``<out>.yaml`` (see
    resmo.detectron2_export); both with ``<out>.json``. Returns the weights path and the
    metadata. Raises ``ValueError`` for bad input.
    """
    check_choice("--format", format, EXPORT_FORMATS)
    run = load_run(run_path, config=config)
    name = run.config.backbone
    state, build = plain_state_dict(run.encoder(encoder), name, run.backbone_options)
    if format == "detectron2":
        weights = detectron2_weights(state, backbone=name, cifar_stem=bool(build.get("cifar_stem")))
        target = Path(out) if out else run.folder / "export" / f"{encoder}-{name}-detectron2.pkl"
        if target.suffix in (".yaml", ".json"):
            raise ValueError(f"--out {target}: the detectron2 weights need another suffix (e.g. .pkl); "
                             f"the {target.suffix} beside them is written by resmo export")
        write_detectron2_pickle(weights, target)
        settings = detectron2_config(target, backbone=name, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        fragment = write_detectron2_config(settings, target.with_suffix(".yaml"))
        build = {"format": "detectron2", "model": f"detectron2 ResNet-{name.removeprefix('resnet')}",
                 "config": str(fragment), "opts": detectron2_opts(settings),
                 "note": f"detectron2 needs the settings of {fragment} (STRIDE_IN_1X1 False, RGB, resmo's "
                         f"pixel mean / std x 255): tools/train_net.py --config-file BASE.yaml "
                         f"{' '.join(detectron2_opts(settings))}"}
    else:
        target = Path(out) if out else run.folder / "export" / f"{encoder}-{name}.pt"
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, target)
    metadata = {
        "encoder": encoder, "backbone": name, "backbone_options": run.backbone_options, "build": build,
        "image_size": run.image_size, "normalize": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "feature_dim": int(run.encoder(encoder).feature_dim), "checkpoint": str(run.checkpoint),
        "checkpoint_sha256": run.checkpoint_sha256, "global_step": run.global_step,
    }
    target.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n")
    return target, metadata
