"""A class-balanced pick of a dataset's images (``data.max_images``), and the smaller dataset.

:func:`balanced_counts` decides how many images of each class a pick of ``total`` takes:
as equal a count per class as the class sizes allow (water-filling: every class gives
``min(size, L)`` images at the highest level ``L`` that ``total`` covers, and what is left,
fewer images than there are classes larger than ``L``, goes one each to the first of those).
With 10 classes of 5 000 images, ``total`` 25 takes 3 images of classes 0-4 and 2 of
classes 5-9; with classes of 1, 10 and 10 images, ``total`` 5 takes 1, 2 and 2.

:func:`pick_indices` picks that many images of each class: with a ``seed``, a permutation
of each class's images drawn by ``numpy.random.default_rng([seed, label])``, of which the
first ``count`` are kept (so, for one seed, a smaller pick is part of a larger one); with
``seed=None``, the first images of each class in dataset order. When any label is -1
(unlabelled folders, STL-10's ``train+unlabeled``) the pick is uniform over all images: the
first ``total`` of a ``default_rng([seed, 0])`` permutation.

:func:`subset_of` makes the smaller dataset of the same kind, so everything that reads the
full one reads it too: :class:`~resmo.data.images.ImageFiles` (unreadable-file counts,
``data.on_bad_image``) and the in-memory sets (synthetic, CIFAR, STL-10), whose ``images`` /
``data`` array the batched pipeline gathers from.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset, Subset

from resmo.data.images import ImageFiles
from resmo.validation import check_non_negative_int

#: Attributes that hold an in-memory dataset's pixels and labels, one row per image
#: (``images``: synthetic textures; ``data``: torchvision CIFAR / STL-10).
PIXEL_ATTRIBUTES = ("images", "data")
LABEL_ATTRIBUTES = ("targets", "labels")


def balanced_counts(class_sizes: Sequence[int], total: int) -> list[int]:
    """Images to take from each class (in the order of ``class_sizes``) for a pick of
    ``total``, as equal as the sizes allow (see the module docstring); all of every class when
    ``total`` covers them."""
    check_non_negative_int("total", total)
    remaining = min(total, sum(class_sizes))

    def filled(level: int) -> int:
        return sum(min(size, level) for size in class_sizes)

    low, high = 0, max(class_sizes, default=0)  # the highest level with filled(level) <= remaining
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if filled(middle) <= remaining else (low, middle - 1)
    taken = [min(size, low) for size in class_sizes]
    extra = remaining - filled(low)  # fewer than the classes with more than `low` images
    for index, size in enumerate(class_sizes):
        if extra and size > low:
            taken[index] += 1
            extra -= 1
    return taken


def seeded_permutation(members: np.ndarray, seed: int, *stream: int) -> np.ndarray:
    """``members`` permuted by ``numpy.random.default_rng([seed, *stream])``."""
    return np.random.default_rng([seed, *stream]).permutation(members)


def class_members(labels: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The classes of ``labels`` (sorted) and the indices of each one's images, in dataset order."""
    order = np.argsort(labels, kind="stable")  # by class, each class in dataset order
    classes, starts, sizes = np.unique(labels[order], return_index=True, return_counts=True)
    return classes, [order[start:start + size] for start, size in zip(starts, sizes, strict=True)]


def _first(members: np.ndarray, count: int, seed: int | None, stream: int) -> np.ndarray:
    if seed is None:
        return members[:count]
    return seeded_permutation(members, seed, stream)[:count]


def pick_indices(labels: Sequence[int] | np.ndarray, total: int, seed: int | None) -> np.ndarray:
    """Sorted indices of ``total`` of the images whose labels are ``labels`` (all of them if
    there are fewer): class-balanced when every label is >= 0, uniform when any is -1 (see
    the module docstring)."""
    check_non_negative_int("total", total)
    labels = np.asarray(labels, dtype=np.int64)
    if (labels < 0).any():
        return np.sort(_first(np.arange(labels.size), total, seed, 0))
    classes, members = class_members(labels)
    counts = balanced_counts([m.size for m in members], total)
    chosen = [_first(m, count, seed, int(label)) for m, count, label in zip(members, counts, classes, strict=True)]
    return np.sort(np.concatenate(chosen)) if chosen else np.arange(0)


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """The label of every image, read from ``targets`` or ``labels`` without loading
    images; all -1 (unlabelled) when the dataset has neither."""
    count = len(dataset)  # type: ignore[arg-type]
    for name in LABEL_ATTRIBUTES:
        labels = getattr(dataset, name, None)
        if labels is not None and len(labels) == count:
            return np.asarray(labels, dtype=np.int64)
    return np.full(count, -1, dtype=np.int64)


def _take(values, indices: np.ndarray):
    """``values[indices]`` keeping a list a list and an array an array."""
    if isinstance(values, list):
        return [values[i] for i in indices]
    return values[indices]


def subset_of(dataset: Dataset, indices: Sequence[int] | np.ndarray) -> Dataset:
    """The images ``indices`` of ``dataset`` as a dataset of the same kind (see the module
    docstring); a ``torch.utils.data.Subset`` for any other dataset."""
    indices = np.asarray(indices, dtype=np.int64)
    if isinstance(dataset, ImageFiles):
        return ImageFiles([dataset.path(int(i)) for i in indices], dataset.targets[indices].tolist(),
                          classes=dataset.classes, root=dataset.root, on_bad_image=dataset.on_bad_image)
    count = len(dataset)  # type: ignore[arg-type]
    pixels = [name for name in PIXEL_ATTRIBUTES
              if isinstance(getattr(dataset, name, None), np.ndarray) and len(getattr(dataset, name)) == count]
    if pixels:
        smaller = copy.copy(dataset)
        for name in (*pixels, *LABEL_ATTRIBUTES):
            values = getattr(dataset, name, None)
            if values is not None and len(values) == count:
                setattr(smaller, name, _take(values, indices))
        return smaller
    return Subset(dataset, indices.tolist())
