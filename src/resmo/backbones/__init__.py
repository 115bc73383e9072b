"""Backbones: ``create_backbone(name, **options)`` -> module with ``feature_dim``."""

from resmo.backbones import resnet, small_resnet, vit  # noqa: F401  (registers backbones)
from resmo.backbones.registry import BACKBONES, backbone_names, create_backbone, has_feature_map

__all__ = ["BACKBONES", "backbone_names", "create_backbone", "has_feature_map"]
