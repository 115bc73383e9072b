"""From a recipe to modules, without Lightning: backbone options, method (student, heads,
teacher, ResMo) and its speed settings. Shared by training (resmo.train.pretrain), evaluation (resmo.eval.runs)
and the recipe tables (resmo.fidelity.resolved), so a checkpoint is always reloaded into
the model the run trained.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from resmo.backbones import BACKBONES, backbone_names, create_backbone
from resmo.config.schema import PretrainConfig
from resmo.methods import MomentumMethod, create_method, method_names
from resmo.methods.registry import check_method_options
from resmo.settings import signature_model
from resmo.validation import check_choice


def check_chosen_options(config: PretrainConfig) -> None:
    """``ValueError`` (one line) for a ``method_options.<method>`` or
    ``backbone_options.<backbone>`` key that the chosen method or backbone does not take (a
    typo such as ``hiden_dim``) or a value of the wrong type, checked against their typed
    options (:func:`resmo.settings.signature_model`), so that it stops the run before any
    process is launched rather than in every process after."""
    check_method_options(config.method, config.chosen_method_options())
    factory = BACKBONES.get(config.backbone)
    model = signature_model(f"backbone_options.{config.backbone}", factory)
    model(**config.backbone_options.get(config.backbone, {}))


def resolve_backbone_options(config: PretrainConfig, image_size: int) -> dict[str, Any]:
    """The chosen backbone's options, with size-dependent defaults filled in:
    ``cifar_stem`` for images <= 64 px, ViT ``img_size`` and ``patch_size`` (4 below 64 px)."""
    options = dict(config.backbone_options.get(config.backbone, {}))
    accepted = inspect.signature(BACKBONES.get(config.backbone)).parameters
    if "cifar_stem" in accepted:
        options.setdefault("cifar_stem", image_size <= 64)
    if "img_size" in accepted:
        options.setdefault("img_size", image_size)
    if "patch_size" in accepted:
        options.setdefault("patch_size", 4 if image_size <= 64 else 16)
    return options


def build_method(config: PretrainConfig, backbone_options: dict, steps_per_epoch: int) -> MomentumMethod:
    """The untrained method of ``config`` around a backbone built with ``backbone_options``;
    ``steps_per_epoch`` turns its epoch-based warm-ups (ResMo's, DINO's) into steps."""
    backbone = create_backbone(config.backbone, **backbone_options)
    return create_method(config.method, backbone, resmo=config.resmo, steps_per_epoch=steps_per_epoch,
                         **config.chosen_method_options())


def rebuild_method(
    config: PretrainConfig, image_size: int, *, steps_per_epoch: int = 1
) -> tuple[MomentumMethod, dict[str, Any]]:
    """The untrained method of ``config`` and its resolved backbone options, built by the
    same code as training (resmo.train.pretrain, for loading a checkpoint's ``method.*`` weights).

    ``steps_per_epoch`` only sets step-based schedules (ResMo and DINO temperature
    warm-up), never a parameter shape. Raises ``ValueError`` for unknown names.
    """
    check_choice("method", config.method, method_names())
    check_choice("backbone", config.backbone, backbone_names())
    backbone_options = resolve_backbone_options(config, image_size)
    return build_method(config, backbone_options, steps_per_epoch), backbone_options


def apply_backbone_settings(method: MomentumMethod, *, channels_last: bool = False,
                            compile: bool = False) -> None:
    """``channels_last`` memory format and / or ``torch.compile`` for the student and teacher
    backbones of ``method``, in place (``Module.compile`` keeps parameter names, so
    checkpoints and exported weights are unchanged)."""
    backbones = [method.student.backbone, method.teacher.module.backbone]
    for backbone in backbones:
        if channels_last:
            backbone.to(memory_format=torch.channels_last)
        if compile:
            backbone.compile()
