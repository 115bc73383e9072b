"""A run folder's backbone files: ``student_backbone.pt`` / ``teacher_backbone.pt``.

Written when training ends (:func:`save_backbone`), each holds resmo's own backbone as
``{"backbone": name, "options": create_backbone options, "state_dict": CPU tensors}``, all
that :func:`load_backbone` needs to rebuild it with ``strict=True``. ``resmo export``
(resmo.export) turns a run's backbones into the weights of plain torchvision / timm models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from resmo.backbones import create_backbone
from resmo.files import atomic_torch_save


def cpu_state_dict(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``backbone``'s state dict on the CPU (shares nothing with the module)."""
    return {k: v.detach().cpu().clone() for k, v in backbone.state_dict().items()}


def save_backbone(path: Path, backbone: nn.Module, *, name: str, options: dict[str, Any]) -> None:
    """Save ``backbone``'s weights with what is needed to rebuild it."""
    state = cpu_state_dict(backbone)
    atomic_torch_save({"backbone": name, "options": dict(options), "state_dict": state}, path,
                      keep_previous_version=False)


def load_backbone(path: str | Path) -> nn.Module:
    """Rebuild a backbone saved by :func:`save_backbone` (``strict=True``)."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    backbone = create_backbone(saved["backbone"], **saved["options"])
    backbone.load_state_dict(saved["state_dict"], strict=True)
    return backbone
