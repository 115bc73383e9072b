"""A recipe resolved into the flat settings that decide its results.

:func:`resolved_settings` turns a :class:`~resmo.config.schema.PretrainConfig` into one
flat mapping ``"section.key" -> value`` with every default filled in: the recipe's own
values, the method factory's defaults (``method.<option>``), the backbone's size-dependent
defaults and, per view, what the declarative view spec both pipelines are built from says
(``views.<i>.<option>``). The reference table (``references.yaml``, rendered into
``docs/recipes.md``) is checked against it.

Colour-jitter strengths are given as the recipes and papers write them (0.4 for
``ColorJitter(brightness=0.4)``, whose factor range is (0.6, 1.4)).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from resmo.backbones import BACKBONES
from resmo.builder import rebuild_method, resolve_backbone_options
from resmo.config.schema import PretrainConfig
from resmo.data.build import NATIVE_IMAGE_SIZES
from resmo.data.view_spec import build_view_spec
from resmo.methods.base import MomentumMethod
from resmo.methods.registry import METHODS

#: Method attributes that decide results without being factory options everywhere.
METHOD_ATTRIBUTES = ("gradient_clip_norm", "freeze_last_layer_epochs")


def resolved_image_size(config: PretrainConfig) -> int | None:
    """``data.image_size``, else the dataset's native size (None for image folders)."""
    return config.data.image_size or NATIVE_IMAGE_SIZES.get(str(config.data.name))


def method_settings(config: PretrainConfig) -> dict[str, Any]:
    """``method.<option>``: the factory's and the base class's defaults, then the recipe's."""
    values: dict[str, Any] = {}
    for function in (MomentumMethod.__init__, METHODS.get(config.method)):
        for name, parameter in inspect.signature(function).parameters.items():
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is not inspect.Parameter.empty:
                values[name] = parameter.default
    values.update(config.method_options.get(config.method, {}))
    values.pop("resmo", None)
    return {f"method.{name}": value for name, value in values.items()}


def built_method_settings(config: PretrainConfig, image_size: int) -> dict[str, Any]:
    """What the built method does (built on the ``meta`` device: no memory, no time):
    :data:`METHOD_ATTRIBUTES`, and the projector's number of linear layers where the
    method takes ``projector_layers`` (its default depends on the backbone)."""
    with torch.device("meta"):
        method, _ = rebuild_method(config, image_size)
    values = {f"method.{name}": getattr(method, name, 0) for name in METHOD_ATTRIBUTES}  # 0: no such step
    if "projector_layers" in inspect.signature(METHODS.get(config.method)).parameters:
        linears = [m for m in method.student.projector.modules() if isinstance(m, nn.Linear)]
        values["method.projector_layers"] = len(linears)
    return values


def view_settings(config: PretrainConfig, image_size: int) -> dict[str, Any]:
    """``views.count``, ``views.global`` and, per view ``i``, its crop and every probability
    (an op that never runs, such as jitter of strength 0, counts as probability 0)."""
    spec = build_view_spec(config.method, image_size, **config.data.views)
    values: dict[str, Any] = {"views.count": spec.num_views, "views.global": spec.num_global_views}
    for index, view in enumerate(spec.views):
        jitter = view.jitters
        for name, value in {
            "size": view.size,
            "min_scale": view.scale[0], "max_scale": view.scale[1],
            "flip_prob": view.flip_prob,
            "brightness": view.brightness if jitter else 0.0,
            "contrast": view.contrast if jitter else 0.0,
            "saturation": view.saturation if jitter else 0.0,
            "hue": view.hue if jitter else 0.0,
            "jitter_prob": view.jitter_prob if jitter else 0.0,
            "grayscale_prob": view.grayscale_prob,
            "blur_prob": view.blur_prob,
            "solarize_prob": view.solarize_prob,
            "interpolation": view.interpolation,
        }.items():
            values[f"views.{index}.{name}"] = value
    return values


def resolved_settings(config: PretrainConfig) -> dict[str, Any]:
    """Every result-deciding setting of ``config`` (see the module docstring)."""
    image_size = resolved_image_size(config) or 224
    values: dict[str, Any] = {
        "method": config.method,
        "backbone": config.backbone,
        "data.name": str(config.data.name),
        "data.image_size": image_size,
    }
    defaults = {name: p.default for name, p in inspect.signature(BACKBONES.get(config.backbone)).parameters.items()
                if p.default is not inspect.Parameter.empty}
    backbone = {**defaults, **resolve_backbone_options(config, image_size)}
    values.update({f"backbone.{name}": value for name, value in backbone.items()})
    for section in ("train", "optimizer", "resmo"):
        for name, value in getattr(config, section).model_dump().items():
            values[f"{section}.{name}"] = list(value) if isinstance(value, tuple) else value
    values.update(method_settings(config))
    values.update(built_method_settings(config, image_size))
    values.update(view_settings(config, image_size))
    return values
