"""``resmo export --format detectron2``: a ResNet backbone as the ``.pkl`` detectron2 loads.

detectron2's ResNet (``detectron2.modeling.backbone.resnet``) names its modules
``stem.conv1`` (with ``.norm``) and ``res2`` ... ``res5`` (torchvision's ``layer1`` ...
``layer4``), each block ``conv1`` ... ``conv3`` with their norms at ``convN.norm`` and the
projection at ``shortcut`` / ``shortcut.norm``. The renaming from torchvision's keys is
the one of MoCo's ``detection/convert-pretrain-to-detectron2.py``:

    no "layer" in the key -> "stem." + key;  layerT -> res(T+1);  bnT -> convT.norm;
    downsample.0 -> shortcut;  downsample.1 -> shortcut.norm

and the file is ``pickle.dump({"model": {key: numpy array}, "__author__": ...,
"matching_heuristics": True})``, as that script writes it. ``num_batches_tracked`` counters
are left out (detectron2's frozen BatchNorm has none). Use it with detectron2's
``MODEL.WEIGHTS <file>.pkl`` and, as MoCo's detection configs do, ``MODEL.PIXEL_MEAN`` /
``PIXEL_STD`` of ImageNet in RGB with ``INPUT.FORMAT RGB`` (resmo normalises that way).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

DETECTRON2_BACKBONES = ("resnet18", "resnet50")


def detectron2_key(key: str) -> str:
    """detectron2's name for torchvision ResNet key ``key`` (the renaming above)."""
    if "layer" not in key:
        key = "stem." + key
    for stage in (1, 2, 3, 4):
        key = key.replace(f"layer{stage}", f"res{stage + 1}")
    for index in (1, 2, 3):
        key = key.replace(f"bn{index}", f"conv{index}.norm")
    return key.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")


def detectron2_weights(state: dict[str, torch.Tensor], *, backbone: str, cifar_stem: bool) -> dict[str, np.ndarray]:
    """``{detectron2 key: float array}`` from a torchvision-format ResNet state dict.

    Raises ``ValueError`` for a backbone detectron2's ResNet cannot hold.
    """
    if backbone not in DETECTRON2_BACKBONES:
        raise ValueError(f"--format detectron2 needs a ResNet backbone ({', '.join(DETECTRON2_BACKBONES)}); "
                         f"this run's backbone is {backbone!r}")
    if cifar_stem:
        raise ValueError("--format detectron2: this run's ResNet has the CIFAR stem (3x3 conv1, no max-pool), "
                         "detectron2's has a 7x7 stride-2 conv1 and a max-pool; pretrain at 96 px or more "
                         "(backbone_options.<name>.cifar_stem=false) for a detection backbone")
    return {detectron2_key(key): value.detach().cpu().numpy()
            for key, value in state.items() if not key.endswith("num_batches_tracked")}


def write_detectron2_pickle(weights: dict[str, np.ndarray], path: Path) -> Path:
    """Write ``weights`` as detectron2 checkpoint ``path`` (a ``.pkl``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        pickle.dump({"model": weights, "__author__": "resmo", "matching_heuristics": True}, file)
    return path
