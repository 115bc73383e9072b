"""``data.val_fraction``: a seeded validation set held out of the training images.

:func:`holdout_indices` splits the images whose labels are ``labels`` into those that stay
for training and those held out for validation, by this rule:

- every label >= 0 (stratified): class ``c`` of ``n_c`` images gives
  ``v_c = min(max(floor(fraction * n_c + 1/2), 1), n_c - 1)`` images: ``fraction * n_c``
  rounded half up, at least 1 and at most all but one (a class of a single image gives
  none); they are the first ``v_c`` of a permutation of the class's images (in dataset
  order) drawn by ``numpy.random.default_rng([seed, c, HOLDOUT_STREAM])``;
- any label -1 (unlabelled folders, STL-10's ``train+unlabeled``): a uniform pick of
  ``min(max(floor(fraction * n + 1/2), 1), n - 1)`` of all ``n`` images, the first of a
  ``default_rng([seed, 0, HOLDOUT_STREAM])`` permutation.

With classes of 10, 5 and 1 images and ``fraction`` 0.2, classes 0, 1 and 2 give 2, 1 and 0
images. The permutations are :func:`resmo.data.subset.seeded_permutation` with a stream of
their own, apart from the ``data.max_images`` pick's ``[seed, c]``. The split depends on the
labels, ``fraction`` and ``seed`` only: :func:`resmo.data.build.build_datasets` carves it
from the full training split before ``data.max_images`` caps the images that remain, so
the validation images of a seed are the same whatever ``max_images`` is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from resmo.data.subset import class_members, seeded_permutation

#: The last word of the held-out permutation's seed, ``[seed, label, HOLDOUT_STREAM]``.
HOLDOUT_STREAM = 1


class Holdout(NamedTuple):
    """Sorted indices: ``train`` stay for training, ``val`` are held out (disjoint, together all)."""

    train: np.ndarray
    val: np.ndarray


def check_fraction(setting: str, value: float) -> float:
    """Return ``value`` if it is a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{setting}={value!r} is not valid; allowed values: a number in (0, 1)")
    return float(value)


def held_out_count(size: int, fraction: float) -> int:
    """Images held out of a group of ``size``: ``fraction * size`` rounded half up, at least 1
    and at most ``size - 1`` (0 for a group of fewer than 2)."""
    if size < 2:
        return 0
    return min(max(math.floor(fraction * size + 0.5), 1), size - 1)


def holdout_indices(labels: Sequence[int] | np.ndarray, fraction: float, seed: int) -> Holdout:
    """The training / held-out split of the images whose labels are ``labels`` (see the module
    docstring); ``val`` is empty when every class has fewer than 2 images."""
    check_fraction("val_fraction", fraction)
    labels = np.asarray(labels, dtype=np.int64)
    if (labels < 0).any():
        groups = [(0, np.arange(labels.size))]
    else:
        classes, members = class_members(labels)
        groups = list(zip(classes.tolist(), members, strict=True))
    held = [seeded_permutation(group, seed, label, HOLDOUT_STREAM)[:held_out_count(group.size, fraction)]
            for label, group in groups]
    val = np.sort(np.concatenate(held)) if held else np.arange(0)
    return Holdout(np.setdiff1d(np.arange(labels.size), val), val)
