"""Evaluation data of a run and frozen-backbone features, extracted once and cached.

Images go through the deterministic :func:`resmo.data.eval_transform` at the run's image
size (as the kNN monitor during pretraining does). The backbone runs in eval mode under
``no_grad`` (:func:`resmo.eval.knn.extract_features`). Features are cached as

    <run>/eval/cache/<sha256(checkpoint)[:16]>-<encoder>-<data tag>-<split>.pt

holding ``features [N, D]``, ``labels [N]`` and the key they were computed for, so a new
checkpoint, another encoder, data set, image size or subset never reuses stale features.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from resmo.data import DATASET_NAMES, build_datasets
from resmo.data.eval_batches import eval_loader
from resmo.eval.knn import extract_features
from resmo.eval.runs import LoadedRun
from resmo.files import atomic_torch_save
from resmo.validation import check_choice, check_positive_int

SPLITS = ("train", "val")
#: ``--split``: the data's own evaluation split, or the images the run held out (data.val_fraction).
EVAL_SPLITS = ("test", "val")


@dataclass
class EvalData:
    """Labelled base datasets (PIL image, label) for probes: ``train`` = kNN bank / probe
    training set (the data's ``eval_train``), ``val`` = the held-out split."""

    name: str
    tag: str
    train: Dataset
    val: Dataset
    num_classes: int
    image_size: int

    def split(self, name: str) -> Dataset:
        return {"train": self.train, "val": self.val}[name]


def data_tag(name: str, image_size: int, sizes: tuple[int, int]) -> str:
    """A file-name-safe key: data name (folders: base name + path hash), size, split sizes."""
    key = name.strip().lower()
    if key not in DATASET_NAMES:
        resolved = str(Path(name).expanduser().resolve())
        key = f"{Path(resolved).name}-{hashlib.sha1(resolved.encode()).hexdigest()[:8]}"
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)
    return f"{key}-{image_size}px-{sizes[0]}x{sizes[1]}"


def _subset(dataset: Dataset, limit: int | None, seed: int) -> Dataset:
    if limit is None or len(dataset) <= limit:  # type: ignore[arg-type]
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))  # type: ignore[arg-type]
    return Subset(dataset, order[:limit].tolist())


def build_eval_data(
    run: LoadedRun, data: str | None = None, *, max_train: int | None = None, max_val: int | None = None,
    split: str = "test",
) -> EvalData:
    """The labelled splits of ``data`` (default: the run's own data) at the run's image size.

    ``max_train`` / ``max_val`` keep a fixed random subset (seeded by the run's seed).
    ``split``: ``test`` evaluates on the data's own evaluation split; ``val`` on the images
    the run held out (``data.val_fraction`` and ``seed`` of its config.yaml: the same images,
    also left out of the memory bank / probe training set; see resmo.data.holdout).
    Raises ``ValueError`` when the data has no labelled validation split.
    """
    config = run.config
    name = str(config.data.name if data is None else data)
    for setting, value in (("max_train", max_train), ("max_val", max_val)):
        if value is not None:
            check_positive_int(setting, value)
    fraction = None if check_choice("split", split, EVAL_SPLITS) == "test" else config.data.val_fraction
    if split == "val" and fraction is None:
        raise ValueError("--split val needs a run trained with data.val_fraction (its config.yaml has "
                         "data.val_fraction: null); use --split test")
    splits = build_datasets(
        name, image_size=run.image_size, cache_dir=config.data.cache_dir, seed=config.seed,
        synthetic_options=config.data.synthetic, val_fraction=fraction,
    )
    if not splits.has_labels or splits.val is None or splits.eval_train is None:
        raise ValueError(f"data '{name}' has no labelled validation split; kNN, linear and gap evaluation need one")
    train = _subset(splits.eval_train, max_train, config.seed)
    val = _subset(splits.val, max_val, config.seed)
    tag = data_tag(name, run.image_size, (len(train), len(val)))  # type: ignore[arg-type]
    tag += "" if fraction is None else f"-heldout{fraction:g}"
    return EvalData(name, tag, train, val, int(splits.num_classes or 0), run.image_size)


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"device={device!r} is not valid; allowed values: auto, cpu, cuda, cuda:N") from None


def cache_path(run: LoadedRun, encoder: str, data: EvalData, split: str) -> Path:
    return run.results_dir / "cache" / f"{run.checkpoint_sha256[:16]}-{encoder}-{data.tag}-{split}.pt"


def cached_features(
    run: LoadedRun, encoder: str, data: EvalData, split: str, *, batch_size: int = 256,
    device: str = "auto", num_workers: int = 0, use_cache: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features [N, D], labels [N])`` of ``encoder`` on ``split``, from the cache if there."""
    path = cache_path(run, encoder, data, split)
    key = {"checkpoint_sha256": run.checkpoint_sha256, "encoder": encoder, "data": data.tag, "split": split}
    if use_cache and path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("key") == key:
            return saved["features"], saved["labels"]
    backbone = run.encoder(encoder)
    target = resolve_device(device)
    loader = eval_loader(data.split(split), data.image_size, batch_size=batch_size, num_workers=num_workers)
    try:
        features, labels = extract_features(backbone.to(target), loader, device=target)
    finally:
        backbone.to("cpu")
    if use_cache:
        # atomic: a Ctrl+C during the write leaves no truncated cache for the next run to trip on
        atomic_torch_save({"features": features, "labels": labels, "key": key}, path,
                          keep_previous_version=False)
    return features, labels
