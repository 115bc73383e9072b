"""Vision Transformers (Dosovitskiy et al., 2021) through timm.

``img_size`` and ``patch_size`` adapt the model to small images (e.g. 32 px with patch 4).
The output is timm's pooled class-token feature (``num_classes=0``).

The model is built with ``dynamic_img_size=True``: images of another size than
``img_size`` (DINO's local crops; any multiple of ``patch_size``) get the position
embedding resampled (bicubic) to their patch grid. At ``img_size`` nothing is resampled and
the parameters (``pos_embed`` of shape ``[1, 1 + (img_size / patch_size)^2, D]``) are those
of the plain ``timm.create_model(name, num_classes=0, img_size=..., patch_size=...)``, so
exports load into it with ``strict=True`` and give the same features at ``img_size``.

MoCo v3 trains ViTs with a frozen random patch embedding (``stop_grad_conv1``):
:meth:`TimmViT.freeze_patch_embedding`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from resmo.backbones.registry import BACKBONES


class MissingDependencyError(ImportError, ValueError):
    """A package of resmo's base install cannot be imported (a broken environment). Also a
    ``ValueError``, so the ``resmo`` commands report it in one line with exit code 2, before
    any training or measurement starts (the backbone is built first)."""


class TimmViT(nn.Module):
    """A timm ViT without classifier: ``[B,3,H,W] -> [B, embed_dim]``."""

    def __init__(self, model_name: str, *, img_size: int = 224, patch_size: int = 16) -> None:
        super().__init__()
        try:
            import timm
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise MissingDependencyError(
                f"backbone {model_name!r} needs timm, which resmo installs with it, but it cannot "
                f"be imported here ({type(error).__name__}: {error}); reinstall it with "
                f"pip install 'timm>=0.9' (or pip install -e . in the checkout)",
                name="timm",
            ) from error
        self.net = timm.create_model(
            model_name, pretrained=False, num_classes=0, img_size=img_size, patch_size=patch_size,
            dynamic_img_size=True,
        )
        self.feature_dim: int = self.net.num_features
        self.model_name = model_name

    @property
    def patch_embedding(self) -> nn.Conv2d:
        """The patch projection (timm ``patch_embed.proj``, MoCo v3's ``conv1``)."""
        return self.net.patch_embed.proj

    @property
    def patch_embedding_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.patch_embedding.parameters())

    @torch.no_grad()
    def freeze_patch_embedding(self, *, reinitialize: bool = True) -> None:
        """Fix the patch projection at a random initialisation, as MoCo v3's
        ``stop_grad_conv1`` (facebookresearch/moco-v3 ``vits.py``,
        ``VisionTransformerMoCo.__init__``)::

            val = sqrt(6 / (3 * patch_h * patch_w + embed_dim))
            uniform_(patch_embed.proj.weight, -val, val);  zeros_(patch_embed.proj.bias)
            patch_embed.proj.weight.requires_grad = False  (and the bias)

        ``reinitialize=False`` keeps the current weights and only freezes them. A frozen
        parameter gets no gradient, is left out of the optimizer and stays in the state
        dict (exports are unchanged).
        """
        proj = self.patch_embedding
        if reinitialize:
            in_channels, (patch_h, patch_w) = proj.weight.shape[1], proj.weight.shape[2:]
            val = math.sqrt(6.0 / float(in_channels * patch_h * patch_w + proj.weight.shape[0]))
            proj.weight.uniform_(-val, val)
            if proj.bias is not None:
                proj.bias.zero_()
        for parameter in proj.parameters():
            parameter.requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


@BACKBONES.register("vit_tiny")
def vit_tiny(*, img_size: int = 224, patch_size: int = 16) -> nn.Module:
    return TimmViT("vit_tiny_patch16_224", img_size=img_size, patch_size=patch_size)


@BACKBONES.register("vit_small")
def vit_small(*, img_size: int = 224, patch_size: int = 16) -> nn.Module:
    return TimmViT("vit_small_patch16_224", img_size=img_size, patch_size=patch_size)
