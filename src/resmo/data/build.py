"""``build_datasets``: from a ``data`` setting to base datasets of ``(PIL image, label)``.

``data`` is one of

- ``None`` or ``"synthetic"``: the built-in offline :class:`~resmo.data.textures.SyntheticTextures`;
- ``"cifar10"``, ``"cifar100"``, ``"stl10"``: torchvision, downloaded on first use into the
  cache folder (see :mod:`resmo.data.torchvision_sets`);
- anything else: a folder path (see :mod:`resmo.data.folders` for the layouts). Names win
  over folders of the same name: write ``./cifar10`` to mean a folder.

``max_images`` keeps a seeded, class-balanced pick of the training images (see
:mod:`resmo.data.subset`); the kNN monitor's memory bank is that pick too where it is the
training set itself (everything but STL-10). Evaluation images are never subsampled.

``val_fraction`` holds out a seeded, class-balanced fraction of the training images (see
:mod:`resmo.data.holdout`) as ``val``, in place of the dataset's own evaluation split: they
leave ``train`` and ``eval_train``. For STL-10 they are drawn from the 5 000 labelled images
(``eval_train``, the first 5 000 of ``train+unlabeled``). They are carved from the full
training split first; ``max_images`` then caps the images that remain.

Views are applied later, by the train loader (:mod:`resmo.data.train_loader`) and by
wrapping the evaluation sets in :class:`~resmo.data.views.EvalDataset`.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from resmo.data.folders import load_image_folder
from resmo.data.holdout import check_fraction, holdout_indices
from resmo.data.images import SkippedFiles
from resmo.data.sizing import FALLBACK_IMAGE_SIZE, folder_image_size
from resmo.data.subset import dataset_labels, pick_indices, subset_of
from resmo.data.torchvision_sets import cifar10, cifar100, stl10
from resmo.validation import check_positive_int

TORCHVISION_SETS = {"cifar10": cifar10, "cifar100": cifar100, "stl10": stl10}
NATIVE_IMAGE_SIZES = {"synthetic": 32, "cifar10": 32, "cifar100": 32, "stl10": 96}
#: The side of a folder run whose config.yaml has ``data.image_size: null`` (runs from before
#: the side was chosen from the images, see :mod:`resmo.data.sizing`; `resmo pretrain` now
#: records the chosen side), and the fallback when no sampled image can be read.
DEFAULT_FOLDER_IMAGE_SIZE = FALLBACK_IMAGE_SIZE
DATASET_NAMES = ("synthetic", *TORCHVISION_SETS)


@dataclass
class DataSplits:
    """Base datasets of ``(PIL RGB image, int label)`` and what the trainer needs to know.

    - ``train``: pretraining images (labels only feed monitors; ``-1`` = unlabelled);
    - ``val``: labelled evaluation images, or ``None`` (with ``val_fraction`` on unlabelled
      images: the held-out, unlabelled images);
    - ``val_split``: where ``val`` comes from: ``"test"`` (the dataset's own evaluation
      split) or ``"held-out 10% of train"`` (``val_fraction``);
    - ``eval_train``: labelled images for the kNN memory bank / linear probe; ``train``
      itself unless it holds unlabelled images (STL-10), ``None`` without labels;
    - ``num_classes`` / ``classes``: ``None`` / ``[]`` without labels;
    - ``has_labels``: whether the images carry class labels (kNN / linear evaluation also
      needs ``val``);
    - ``image_size``: the side views should have;
    - ``view_defaults``: options of :func:`~resmo.data.view_spec.build_view_spec` that
      suit this data (a recipe's ``data.views`` overrides them);
    - ``notes``: one-line facts worth printing at the start of a run (defaults chosen,
      evaluation turned off, ...).
    """

    name: str
    train: Dataset
    val: Dataset | None
    num_classes: int | None
    has_labels: bool
    image_size: int
    eval_train: Dataset | None = None
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    view_defaults: dict = field(default_factory=dict)
    val_split: str = "test"

    def __post_init__(self) -> None:
        if self.eval_train is None and self.has_labels:
            self.eval_train = self.train

    def val_summary(self) -> dict[str, Any]:
        """For ``summary.json``: ``val_images`` (``None`` without ``val``) and ``monitor_split``,
        the ``val_split`` the kNN monitor reads (``None`` when it is off: no labels or ``val``)."""
        monitored = self.has_labels and self.val is not None and self.eval_train is not None
        return {"val_images": None if self.val is None else len(self.val),  # type: ignore[arg-type]
                "monitor_split": self.val_split if monitored else None}

    def skipped_files(self) -> SkippedFiles:
        """Unreadable files skipped so far across all splits (see ``SkippedFiles.message``)."""
        total, seen = SkippedFiles(), set()
        for dataset in (self.train, self.eval_train, self.val):
            if dataset is None or id(dataset) in seen:
                continue
            seen.add(id(dataset))
            report = getattr(dataset, "skipped_files", None)
            if callable(report):
                total += report()
        return total


def build_datasets(
    data: str | os.PathLike | None,
    *,
    image_size: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    synthetic_options: dict | None = None,
    max_images: int | None = None,
    val_fraction: float | None = None,
) -> DataSplits:
    """Build the base datasets for ``data`` (see the module docstring).

    ``image_size`` defaults to the data's native size (32 for CIFAR and synthetic, 96 for
    STL-10); for image folders it is chosen from the images (see :mod:`resmo.data.sizing`;
    a note says which). ``cache_dir`` is where torchvision sets live. ``seed`` and
    ``synthetic_options`` only affect the synthetic data: ``num_samples`` (train),
    ``val_num_samples`` and any other keyword of ``SyntheticTextures``. ``max_images``
    (``None``: all) keeps that many training images, picked with ``seed`` (see
    :func:`keep_max_images`). ``val_fraction`` (``None``: the dataset's own evaluation split)
    holds out that fraction of the training images as ``val`` (see :func:`hold_out_val`),
    before ``max_images``. Errors: :class:`~resmo.data.errors.DataError` for missing or
    unreadable data, ``ValueError`` for invalid settings.
    """
    if image_size is not None:
        check_positive_int("image_size", image_size)
    if max_images is not None:
        check_positive_int("max_images", max_images)
    if val_fraction is not None:
        check_fraction("val_fraction", val_fraction)
    splits = _build(data, image_size, cache_dir, seed, synthetic_options)
    if val_fraction is not None:
        splits = hold_out_val(splits, val_fraction, seed)
    return splits if max_images is None else keep_max_images(splits, max_images, seed)


def _build(data, image_size: int | None, cache_dir, seed: int, synthetic_options: dict | None) -> DataSplits:
    if data is None:
        key = "synthetic"
    elif isinstance(data, str) and data.strip().lower() in DATASET_NAMES:
        key = data.strip().lower()
    elif isinstance(data, (str, os.PathLike)):
        return _folder(data, image_size)
    else:
        raise ValueError(
            f"data={data!r} is not valid; allowed values: {', '.join(DATASET_NAMES)} or a folder path"
        )
    size = NATIVE_IMAGE_SIZES[key] if image_size is None else image_size
    if key == "synthetic":
        return _synthetic(size, seed, dict(synthetic_options or {}))
    splits = TORCHVISION_SETS[key](cache_dir)
    return DataSplits(
        name=key, train=splits.train, val=splits.val, num_classes=len(splits.classes),
        has_labels=True, image_size=size, eval_train=splits.eval_train, classes=splits.classes,
    )


def keep_max_images(splits: DataSplits, max_images: int, seed: int) -> DataSplits:
    """``splits`` with ``max_images`` training images: a class-balanced pick seeded by ``seed``
    (uniform without labels; :func:`resmo.data.subset.pick_indices`), also as the kNN memory
    bank when that is the training set. More than the data has keeps all of it, with a note
    (as a cap: the same recipe runs on a smaller dataset)."""
    total = len(splits.train)  # type: ignore[arg-type]
    if max_images >= total:
        splits.notes.append(f"data.max_images={max_images} is not fewer than the {total} training images "
                            f"of '{splits.name}': all {total} are used")
        return splits
    labels = dataset_labels(splits.train)
    chosen = pick_indices(labels, max_images, seed)
    train = subset_of(splits.train, chosen)
    if splits.eval_train is splits.train:
        splits.eval_train = train
    splits.train = train
    splits.notes.append(f"data.max_images={max_images}: training on {max_images} of the {total} images "
                        f"of '{splits.name}', {_per_class(labels, chosen)}, picked with seed {seed}")
    return splits


def _per_class(labels: np.ndarray, chosen: np.ndarray) -> str:
    """How many images of each class in ``chosen`` it holds, for a note ("2 to 3 per class")."""
    if not (labels >= 0).all():
        return "a uniform pick (not every image has a label)"
    per_class = np.unique(labels[chosen], return_counts=True)[1]
    low, high = int(per_class.min()), int(per_class.max())
    return f"{low} per class" if low == high else f"{low} to {high} per class"


def hold_out_val(splits: DataSplits, fraction: float, seed: int) -> DataSplits:
    """``splits`` with ``val`` the held-out ``fraction`` of the labelled training images
    (:func:`resmo.data.holdout.holdout_indices`; all training images when unlabelled),
    removed from ``train`` and ``eval_train``. Raises ``ValueError`` when no image can be
    held out (fewer than 2 images in every class)."""
    labelled = splits.eval_train if splits.eval_train is not None else splits.train
    labels = dataset_labels(labelled)
    kept, held = holdout_indices(labels, fraction, seed)
    if held.size == 0:
        few = "each class of its" if (labels >= 0).all() else "it has"
        raise ValueError(f"data.val_fraction={fraction} holds out no image of '{splits.name}': {few} "
                         f"{labels.size} training images has fewer than 2 (one stays for training)")
    if splits.eval_train is not None and splits.eval_train is not splits.train:  # STL-10
        head = dataset_labels(splits.train)[:labels.size]
        if not np.array_equal(head, labels):
            raise ValueError(f"data.val_fraction needs the labelled images of '{splits.name}' to be "
                             "the first of its training images")
        unlabelled = np.arange(labels.size, len(splits.train))  # type: ignore[arg-type]
        splits.train = subset_of(splits.train, np.concatenate([kept, unlabelled]))
        splits.eval_train = subset_of(splits.eval_train, kept)
    else:
        train = subset_of(splits.train, kept)
        splits.eval_train = train if splits.eval_train is splits.train else None
        splits.train = train
    splits.val = subset_of(labelled, held)
    splits.val_split = f"held-out {round(fraction * 100, 6):g}% of train"
    splits.notes.append(f"data.val_fraction={fraction}: {held.size} of the {labels.size} training images of "
                        f"'{splits.name}' held out for validation, {_per_class(labels, held)}, picked with seed {seed}; "
                        "the dataset's own evaluation split is not used")
    return splits


def image_size_for(data: str | os.PathLike | None, image_size: int | None) -> tuple[int, str | None]:
    """``(side, note)``: the image side a run on ``data`` trains at, decided before anything is
    built: ``image_size`` when set, the native size of a named dataset, or for a folder the
    side chosen from a sample of its training images (:func:`resmo.data.sizing.folder_image_size`,
    with the note saying which)."""
    if image_size is not None:
        return check_positive_int("image_size", image_size), None
    if data is None:
        return NATIVE_IMAGE_SIZES["synthetic"], None
    if isinstance(data, str) and data.strip().lower() in NATIVE_IMAGE_SIZES:  # names win, as in build_datasets
        return NATIVE_IMAGE_SIZES[data.strip().lower()], None
    choice = folder_image_size(load_image_folder(data).train)
    return choice.size, choice.note


def synthetic_option_names() -> list[str]:
    """Keys ``synthetic_options`` accepts."""
    from resmo.data.textures import SyntheticTextures

    own = inspect.signature(SyntheticTextures).parameters
    return sorted(set(own) - {"split", "seed", "image_size", "transform"} | {"val_num_samples"})


def _synthetic(image_size: int, seed: int, options: dict) -> DataSplits:
    from resmo.data.textures import VIEW_DEFAULTS, SyntheticTextures  # lazy: generated here

    allowed = synthetic_option_names()
    for name in sorted(options):
        if name not in allowed:
            raise ValueError(
                f"synthetic option {name!r} is not valid; allowed options: {', '.join(allowed)}"
            )
    val_options = dict(options)
    if "val_num_samples" in options:
        val_options["num_samples"] = val_options.pop("val_num_samples")
        options.pop("val_num_samples")
    else:
        val_options.pop("num_samples", None)  # the val split keeps its own default size
    train = SyntheticTextures("train", image_size=image_size, seed=seed, **options)
    val = SyntheticTextures("val", image_size=image_size, seed=seed, **val_options)
    return DataSplits(
        name="synthetic", train=train, val=val, num_classes=len(train.classes), has_labels=True,
        image_size=image_size, classes=list(train.classes), view_defaults=dict(VIEW_DEFAULTS),
    )


def _folder(path: str | os.PathLike, image_size: int | None) -> DataSplits:
    found = load_image_folder(path)
    notes = list(found.notes)
    if image_size is None:
        choice = folder_image_size(found.train)
        image_size = choice.size
        notes.append(choice.note)
    counts = f"{len(found.train)} train images"
    if found.val is not None:
        counts += f", {len(found.val)} evaluation images, {len(found.classes)} classes"
    notes.insert(0, f"image folder '{found.root}': {found.layout}, {counts}")
    return DataSplits(
        name=Path(found.root).resolve().name or str(found.root),
        train=found.train,
        val=found.val,
        num_classes=len(found.classes) if found.has_labels else None,
        has_labels=found.has_labels,
        image_size=image_size,
        classes=list(found.classes),
        notes=notes,
    )
