"""The image side for an image folder given without ``data.image_size``, chosen from its images.

:func:`folder_image_size` reads the headers (not the pixels) of up to :data:`SAMPLE_SIZE`
images spread evenly over the folder's sorted file list, takes the median of their shorter
sides and rounds it to the nearest multiple of :data:`MULTIPLE`, within
[:data:`MIN_IMAGE_SIZE`, :data:`MAX_IMAGE_SIZE`]: CIFAR-10 saved as a folder trains at 32 px,
STL-10 at 96, ImageNet (about 500 x 375) at 224, an 8 x 8 folder at 8.

:data:`MIN_IMAGE_SIZE` is 8, the smallest side every backbone and view spec handles: the
ResNets get a CIFAR stem up to 64 px and halve the side three times (8 -> 1 px), DINO's
local crops (half the side) still have 4 px, and the ViTs' 4-pixel patches tile it. Smaller
images are trained at 8 px (upscaled), and the note says so.
"""

from __future__ import annotations

import math
import statistics
import warnings
from dataclasses import dataclass

from PIL import Image

from resmo.data.images import ImageFiles

SAMPLE_SIZE = 64
MULTIPLE = 8
MIN_IMAGE_SIZE = 8
MAX_IMAGE_SIZE = 224
#: The side used when none of the sampled files can be read.
FALLBACK_IMAGE_SIZE = 224


@dataclass(frozen=True)
class SizeChoice:
    """The chosen side and a one-line note explaining it."""

    size: int
    note: str


def sample_indices(count: int, limit: int = SAMPLE_SIZE) -> list[int]:
    """Up to ``limit`` indices spread evenly over ``range(count)``, first one 0."""
    taken = min(count, limit)
    return [index * count // taken for index in range(taken)]


def shorter_side(path: str) -> int | None:
    """The shorter side in pixels of the image file ``path`` (header only), or ``None``
    if it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return min(image.size)
    except Exception:  # noqa: BLE001 - any unreadable file is left out of the sample
        return None


def round_image_size(side: float) -> int:
    """``side`` to the nearest multiple of :data:`MULTIPLE` (halves up), clamped to
    [:data:`MIN_IMAGE_SIZE`, :data:`MAX_IMAGE_SIZE`]."""
    rounded = math.floor(side / MULTIPLE + 0.5) * MULTIPLE
    return min(MAX_IMAGE_SIZE, max(MIN_IMAGE_SIZE, rounded))


def folder_image_size(files: ImageFiles) -> SizeChoice:
    """The side to train ``files`` at (see the module docstring), with a note for the run."""
    indices = sample_indices(len(files))
    sides = [side for side in (shorter_side(files.path(i)) for i in indices) if side is not None]
    change = "pass data.image_size to change it"
    if not sides:
        return SizeChoice(FALLBACK_IMAGE_SIZE, (
            f"image folder: none of {len(indices)} sampled images could be read for their size; "
            f"image_size defaults to {FALLBACK_IMAGE_SIZE}; {change}"))
    median = statistics.median(sides)
    size = round_image_size(median)
    why = f"median shorter side {median:g} px of {len(sides)} sampled images"
    if median > MAX_IMAGE_SIZE:
        why += f", capped at {MAX_IMAGE_SIZE}"
    elif median < MIN_IMAGE_SIZE:
        why += f", raised to the smallest size the backbones and views handle ({MIN_IMAGE_SIZE})"
    return SizeChoice(size, f"image folder: image_size {size} chosen from the images ({why}); {change}")
