"""Backbone registry: ``create_backbone(name, **options)``.

Every backbone maps images ``[B, 3, H, W]`` to pooled features ``[B, D]`` and exposes
``feature_dim`` (``D``). Backbones with a spatial last stage (the ResNets) also have
``feature_map(images) -> [B, D, h, w]`` and ``pool(feature_map) -> [B, D]``, which dense
methods (DenseCL) need; :func:`has_feature_map` tells them apart.
"""

from __future__ import annotations

from torch import nn

from resmo.registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")


def create_backbone(name: str, **options: object) -> nn.Module:
    """Build the backbone registered as ``name`` with its ``options``.

    Unknown names raise ``ValueError`` listing the valid ones.
    """
    return BACKBONES.get(name)(**options)


def has_feature_map(backbone: nn.Module) -> bool:
    """Whether ``backbone`` exposes ``feature_map`` and ``pool`` (see the module docstring)."""
    return callable(getattr(backbone, "feature_map", None)) and callable(getattr(backbone, "pool", None))


def backbone_names() -> list[str]:
    return BACKBONES.names()
