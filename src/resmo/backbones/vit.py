"""Vision Transformers (Dosovitskiy et al., 2021) through timm.

``img_size`` and ``patch_size`` adapt the model to small images (e.g. 32 px with patch 4).
The output is timm's pooled class-token feature (``num_classes=0``).

The model is built with ``dynamic_img_size=True``: images of another size than
``img_size`` (DINO's local crops; any multiple of ``patch_size``) get the position
embedding resampled (bicubic) to their patch grid. At ``img_size`` nothing is resampled and
the parameters (``pos_embed`` of shape ``[1, 1 + (img_size / patch_size)^2, D]``) are those
of the plain ``timm.create_model(name, num_classes=0, img_size=..., patch_size=...)``, so
exports load into it with ``strict=True`` and give the same features at ``img_size``.
"""

from __future__ import annotations

import torch
from torch import nn

from resmo.backbones.registry import BACKBONES


class TimmViT(nn.Module):
    """A timm ViT without classifier: ``[B,3,H,W] -> [B, embed_dim]``."""

    def __init__(self, model_name: str, *, img_size: int = 224, patch_size: int = 16) -> None:
        super().__init__()
        try:
            import timm
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"backbone {model_name!r} needs timm: pip install 'resmo[vit]'"
            ) from error
        self.net = timm.create_model(
            model_name, pretrained=False, num_classes=0, img_size=img_size, patch_size=patch_size,
            dynamic_img_size=True,
        )
        self.feature_dim: int = self.net.num_features
        self.model_name = model_name

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


@BACKBONES.register("vit_tiny")
def vit_tiny(*, img_size: int = 224, patch_size: int = 16) -> nn.Module:
    return TimmViT("vit_tiny_patch16_224", img_size=img_size, patch_size=patch_size)


@BACKBONES.register("vit_small")
def vit_small(*, img_size: int = 224, patch_size: int = 16) -> nn.Module:
    return TimmViT("vit_small_patch16_224", img_size=img_size, patch_size=patch_size)
