"""Backbone registry: ``create_backbone(name, **options)``.

Every backbone maps images ``[B, 3, H, W]`` to pooled features ``[B, D]`` and exposes
``feature_dim`` (``D``).
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


def backbone_names() -> list[str]:
    return BACKBONES.names()
