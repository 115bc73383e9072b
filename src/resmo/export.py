"""``resmo export``: a run's student or teacher backbone written as files.

``--format plain`` writes ``<name>.pt``, the state dict of the plain torchvision / timm /
resmo model (resmo.plain_weights says which, by backbone; ``torch.load(path,
weights_only=True)``); ``--format detectron2`` writes the ``.pkl`` and config fragment
detectron2 reads (resmo.detectron2_export). Next to either, ``<name>.json`` records the
format, how to build the model, the normalisation and the source checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from resmo.data import IMAGENET_MEAN, IMAGENET_STD
from resmo.detectron2_export import (
    detectron2_config,
    detectron2_opts,
    detectron2_weights,
    write_detectron2_config,
    write_detectron2_pickle,
)
from resmo.eval.runs import load_run
from resmo.plain_weights import plain_state_dict
from resmo.validation import check_choice

EXPORT_FORMATS = ("plain", "detectron2")


def export_encoder(run_path: str | Path, encoder: str, *, out: str | Path | None = None,
                   config: str | Path | None = None, format: str = "plain") -> tuple[Path, dict[str, Any]]:
    """Export ``encoder`` (student / teacher) of a run folder or checkpoint.

    ``format`` ``plain`` writes ``out`` (default ``<run>/export/<encoder>-<backbone>.pt``),
    ``detectron2`` a detectron2 ``.pkl`` (default ``<run>/export/<encoder>-<backbone>-detectron2.pkl``)
    and the config fragment detectron2 needs to read it right, ``<out>.yaml`` (see
    resmo.detectron2_export); both with ``<out>.json``. Returns the weights path and the
    metadata. Raises ``ValueError`` for bad input.
    """
    check_choice("--format", format, EXPORT_FORMATS)
    run = load_run(run_path, config=config)
    name = run.config.backbone
    state, build = plain_state_dict(run.encoder(encoder), name, run.backbone_options)
    if format == "detectron2":
        weights = detectron2_weights(state, backbone=name, cifar_stem=bool(build.get("cifar_stem")))
        target = Path(out) if out else run.folder / "export" / f"{encoder}-{name}-detectron2.pkl"
        if target.suffix in (".yaml", ".json"):
            raise ValueError(f"--out {target}: the detectron2 weights need another suffix (e.g. .pkl); "
                             f"the {target.suffix} beside them is written by resmo export")
        write_detectron2_pickle(weights, target)
        settings = detectron2_config(target, backbone=name, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        fragment = write_detectron2_config(settings, target.with_suffix(".yaml"))
        build = {"format": "detectron2", "model": f"detectron2 ResNet-{name.removeprefix('resnet')}",
                 "config": str(fragment), "opts": detectron2_opts(settings),
                 "note": f"detectron2 needs the settings of {fragment} (STRIDE_IN_1X1 False, RGB, resmo's "
                         f"pixel mean / std x 255): tools/train_net.py --config-file BASE.yaml "
                         f"{' '.join(detectron2_opts(settings))}"}
    else:
        target = Path(out) if out else run.folder / "export" / f"{encoder}-{name}.pt"
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, target)
    metadata = {
        "encoder": encoder, "backbone": name, "backbone_options": run.backbone_options, "build": build,
        "image_size": run.image_size, "normalize": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)},
        "feature_dim": int(run.encoder(encoder).feature_dim), "checkpoint": str(run.checkpoint),
        "checkpoint_sha256": run.checkpoint_sha256, "global_step": run.global_step,
    }
    target.with_suffix(".json").write_text(json.dumps(metadata, indent=2) + "\n")
    return target, metadata
