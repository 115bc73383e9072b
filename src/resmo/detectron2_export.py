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
are left out (detectron2's frozen BatchNorm has none).

Weights alone load into detectron2's default ResNet *without an error and wrongly*: detectron2's
ResNet (the MSRA/Caffe2 one) strides in the first 1x1 convolution of a bottleneck unless
``MODEL.RESNETS.STRIDE_IN_1X1`` is false, where torchvision's ResNet strides in the 3x3 one;
and its default input is BGR with Caffe2's pixel mean and a standard deviation of 1. So beside
the ``.pkl`` a config fragment (:func:`detectron2_config`, a YAML file) sets what the weights
need, as MoCo's ``detection/configs/pascal_voc_R_50_C4_24k_moco.yaml`` does for its own::

    MODEL.WEIGHTS                  the .pkl (absolute path)
    MODEL.RESNETS.DEPTH            18 or 50
    MODEL.RESNETS.STRIDE_IN_1X1    False (torchvision's stride in the 3x3 convolution)
    MODEL.RESNETS.RES2_OUT_CHANNELS  64 (ResNet-18 only: detectron2 needs it for basic blocks)
    MODEL.PIXEL_MEAN / PIXEL_STD   resmo's normalisation (ImageNet's, RGB) x 255, detectron2's scale
    INPUT.FORMAT                   RGB

Merge it after a base config (``cfg.merge_from_file(base); cfg.merge_from_file(fragment)``), or
pass its values to ``tools/train_net.py`` as ``KEY VALUE`` pairs (:func:`detectron2_opts`).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import yaml

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


def detectron2_config(weights: Path, *, backbone: str, mean: Sequence[float], std: Sequence[float]) -> dict:
    """The config fragment of the module doc for ``weights`` (a ``.pkl``) of ``backbone``; ``mean``
    and ``std`` are resmo's normalisation on the 0-1 scale."""
    depth = int(backbone.removeprefix("resnet"))
    resnets: dict = {"DEPTH": depth, "STRIDE_IN_1X1": False}
    if depth in (18, 34):
        resnets["RES2_OUT_CHANNELS"] = 64
    return {"MODEL": {"WEIGHTS": str(Path(weights).resolve()), "RESNETS": resnets,
                      "PIXEL_MEAN": [round(255 * v, 3) for v in mean], "PIXEL_STD": [round(255 * v, 3) for v in std]},
            "INPUT": {"FORMAT": "RGB"}}


def detectron2_opts(config: dict, prefix: str = "") -> list[str]:
    """``["MODEL.WEIGHTS", "/x.pkl", "MODEL.RESNETS.DEPTH", "50", ...]``: ``config`` as the ``KEY VALUE``
    pairs detectron2's ``tools/train_net.py`` (``cfg.merge_from_list``) takes."""
    pairs: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict):
            pairs += detectron2_opts(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            pairs += [f"{prefix}{key}", "[" + ",".join(f"{v:g}" for v in value) + "]"]
        else:
            pairs += [f"{prefix}{key}", str(value)]
    return pairs


def write_detectron2_config(config: dict, path: Path) -> Path:
    """Write the fragment as YAML, with a comment on how to use it."""
    header = ("# resmo export --format detectron2: what detectron2 needs to read the weights right\n"
              "# (merge after a base config: cfg.merge_from_file(base); cfg.merge_from_file(this file))\n")
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return path
