"""Load a finished (or running) pretraining run for evaluation: config + checkpoint -> method.

A run is given as

- a **run folder** (written by ``resmo pretrain``): ``config.yaml`` and
  ``checkpoints/last.ckpt`` inside it;
- a **checkpoint file** (``*.ckpt``): Lightning does not store the recipe in it, so the
  recipe is ``--config FILE`` if given, else the ``config.yaml`` found next to the
  checkpoint or one folder above it (``RUN/checkpoints/x.ckpt`` -> ``RUN/config.yaml``).

The method is rebuilt with the code pretraining uses
(:func:`resmo.builder.rebuild_method`) and the checkpoint's ``method.*`` weights
are loaded with ``strict=True``. Results are written under ``<run folder>/eval/`` (for a
checkpoint without run folder: ``eval/`` next to the checkpoint). Every problem raises
``ValueError`` with one line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resmo.builder import rebuild_method
from resmo.config import load_config
from resmo.config.schema import PretrainConfig
from resmo.data.build import DEFAULT_FOLDER_IMAGE_SIZE, NATIVE_IMAGE_SIZES
from resmo.methods import MomentumMethod
from resmo.validation import check_choice

ENCODERS = ("student", "teacher")
PREFIX = "method."


@dataclass
class LoadedRun:
    """A run's recipe and method with the checkpoint's weights (on CPU, eval mode)."""

    config: PretrainConfig
    method: MomentumMethod
    checkpoint: Path
    checkpoint_sha256: str
    folder: Path
    image_size: int
    backbone_options: dict[str, Any]
    epoch: int | None = None
    global_step: int | None = None

    @property
    def results_dir(self) -> Path:
        """``<folder>/eval``: where eval JSONs, plots and the feature cache go."""
        return self.folder / "eval"

    def encoder(self, name: str) -> nn.Module:
        """The ``student`` or ``teacher`` backbone (the teacher is the EMA copy)."""
        check_choice("encoder", name, ENCODERS)
        if name == "student":
            return self.method.backbone
        return self.method.teacher.module.backbone


def expand_encoders(choice: str) -> list[str]:
    """``"both"`` -> ``["student", "teacher"]``; a single name -> ``[name]``."""
    if choice == "both":
        return list(ENCODERS)
    return [check_choice("encoder", choice, (*ENCODERS, "both"))]


def run_image_size(config: PretrainConfig) -> int:
    """The image side the run trained on, as the run plan decides it (resmo.train.plan):
    ``data.image_size``, else the dataset's native size (folders: 224)."""
    if config.data.image_size:
        return int(config.data.image_size)
    name = str(config.data.name).strip().lower()
    return NATIVE_IMAGE_SIZES.get(name, DEFAULT_FOLDER_IMAGE_SIZE)


def locate_run(path: str | Path, *, config: str | Path | None = None) -> tuple[Path, Path, Path]:
    """``(checkpoint, config file, run folder)`` for a run folder or a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        checkpoint = path / "checkpoints" / "last.ckpt"
        if not checkpoint.is_file():
            raise ValueError(f"'{path}' is not a run folder with a checkpoint: {checkpoint} does not exist")
        recipe = Path(config) if config else path / "config.yaml"
        folder = path
    elif path.is_file():
        checkpoint = path
        candidates = [path.parent / "config.yaml", path.parent.parent / "config.yaml"]
        found = next((c for c in candidates if c.is_file()), None)
        recipe = Path(config) if config else found
        folder = found.parent if found is not None else path.parent
        if recipe is None:
            raise ValueError(
                f"no config.yaml next to or above checkpoint '{path}'; pass the run's recipe with --config"
            )
    else:
        raise ValueError(f"run '{path}' does not exist; pass a run folder or a .ckpt file")
    if not recipe.is_file():
        raise ValueError(f"config '{recipe}' does not exist; pass the run's recipe with --config")
    return checkpoint, recipe, folder


def file_sha256(path: Path, *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (the feature cache key)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_run(path: str | Path, *, config: str | Path | None = None) -> LoadedRun:
    """Rebuild the method of a run folder or checkpoint and load its weights (see module doc)."""
    checkpoint, recipe, folder = locate_run(path, config=config)
    settings = load_config(recipe)
    image_size = run_image_size(settings)
    method, options = rebuild_method(settings, image_size)
    saved = _read_checkpoint(checkpoint)
    state = {k[len(PREFIX):]: v for k, v in saved["state_dict"].items() if k.startswith(PREFIX)}
    try:
        method.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(
            f"checkpoint '{checkpoint}' does not match the recipe '{recipe}' "
            f"({settings.method} on {settings.backbone}): {first}"
        ) from None
    method.eval()
    return LoadedRun(
        config=settings, method=method, checkpoint=checkpoint, checkpoint_sha256=file_sha256(checkpoint),
        folder=folder, image_size=image_size, backbone_options=options,
        epoch=saved.get("epoch"), global_step=saved.get("global_step"),
    )


def _read_checkpoint(path: Path) -> dict:
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling problem is a bad file
        raise ValueError(f"cannot read checkpoint '{path}': {type(error).__name__}") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("state_dict"), dict):
        raise ValueError(f"'{path}' is not a Lightning checkpoint (no state_dict)")
    return saved
