"""SyntheticTextures: the built-in offline dataset of the quickstart (generated, never downloaded).

Each image is a two-colour periodic texture; the label is the texture's class. The two
colours are drawn at random per image, so colour, which dominates the features of a randomly
initialised CNN, carries no class information, while the texture does. SSL augmentations
(colour jitter, grayscale, crops) teach an encoder to ignore colour within a few hundred
steps, so a CPU run of a couple of minutes separates clearly from a random encoder (on
32 px images a random ``resnet_small`` scores about 24 % kNN top-1, chance is 10 %, and the
same random encoder on the grayscale images about 48 %).

Generative process for sample ``i`` (one ``numpy`` generator seeded by ``(seed, split)``):

1. class ``y_i``: labels ``0..9`` repeated and shuffled (balanced);
2. frame: pixel coordinates ``(x, y) in [0, 1)^2`` rotated by ``a ~ U[-0.15, 0.15]`` rad into
   ``(u, v)``; frequency ``f ~ U[3, 6]`` cycles per image; phase ``p ~ U[0, 2 pi)``;
3. pattern ``t(u, v)`` of the class (``s(z) = sin(2 pi f z + p)``):
   horizontal stripes ``s(v)``; vertical stripes ``s(u)``; diamonds
   ``s((u+v)/sqrt2) s((u-v)/sqrt2)``; checkerboard ``sign s(u) sign s(v)``; rings
   ``s(1.5 |(x, y) - c|)`` around ``c ~ U[0.2, 0.8]^2``; grid ``max(s(u), s(v))``; dots
   ``[s(u) s(v) > 0.5]``; diagonal stripes ``s((u +- v)/sqrt2)`` (either diagonal);
   waves ``s(v + 0.15 sin(4 pi u))``; noise ``N(0, 1)`` per pixel;
4. ``t`` is min-max scaled to ``[0, 1]``; image ``= (1 - t) * background + t * foreground``
   with both colours ``~ U[0, 1]^3``, plus pixel noise ``N(0, 0.03^2)``, clipped, uint8.

Every class is closed under horizontal flip (diagonals include both directions), so flips
never change the label. Train and validation splits use different streams and share no
images; the same arguments always give the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from resmo.validation import check_choice, check_positive_int

SPLITS = {"train": 0, "val": 1, "test": 2}
DEFAULT_NUM_SAMPLES = {"train": 4000, "val": 1000, "test": 1000}
CLASSES = (
    "horizontal_stripes", "vertical_stripes", "diamonds", "checkerboard", "rings",
    "grid", "dots", "diagonal_stripes", "waves", "noise",
)
# View options that suit this data: hue jitter over the whole colour circle, since colour
# is pure nuisance here (used unless the recipe sets data.views itself).
VIEW_DEFAULTS = {"hue": 0.5, "saturation": 0.4}


def _patterns(cls: int, u, v, x, y, f, p, rng: np.random.Generator, n: int) -> np.ndarray:
    def s(z):
        return np.sin(2 * np.pi * f * z + p)

    root2 = np.sqrt(2.0)
    if cls == 0:
        return s(v)
    if cls == 1:
        return s(u)
    if cls == 2:
        return s((u + v) / root2) * s((u - v) / root2)
    if cls == 3:
        return np.sign(s(u)) * np.sign(s(v))
    if cls == 4:
        centre = rng.uniform(0.2, 0.8, size=(n, 2, 1, 1))
        return s(1.5 * np.hypot(x - centre[:, 0], y - centre[:, 1]))
    if cls == 5:
        return np.maximum(s(u), s(v))
    if cls == 6:
        return (s(u) * s(v) > 0.5).astype(np.float64)
    if cls == 7:
        direction = rng.choice([-1.0, 1.0], size=(n, 1, 1))
        return s((u + direction * v) / root2)
    if cls == 8:
        return s(v + 0.15 * np.sin(4 * np.pi * u))
    return rng.standard_normal(u.shape)


def generate_textures(num_samples: int, image_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, S, S, 3], labels int64 [N])`` as described in the module doc."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_samples) % len(CLASSES)
    rng.shuffle(labels)
    grid_y, grid_x = np.mgrid[0:image_size, 0:image_size] / image_size
    images = np.empty((num_samples, image_size, image_size, 3), dtype=np.uint8)
    for cls in range(len(CLASSES)):
        index = np.flatnonzero(labels == cls)
        n = index.size
        if n == 0:
            continue
        angle = rng.uniform(-0.15, 0.15, size=(n, 1, 1))
        f = rng.uniform(3.0, 6.0, size=(n, 1, 1))
        p = rng.uniform(0.0, 2 * np.pi, size=(n, 1, 1))
        x, y = grid_x[None], grid_y[None]
        u = x * np.cos(angle) - y * np.sin(angle)
        v = x * np.sin(angle) + y * np.cos(angle)
        t = _patterns(cls, u, v, x, y, f, p, rng, n) + np.zeros_like(u)
        low = t.min(axis=(1, 2), keepdims=True)
        high = t.max(axis=(1, 2), keepdims=True)
        t = ((t - low) / (high - low + 1e-6))[..., None]
        foreground = rng.uniform(0, 1, size=(n, 1, 1, 3))
        background = rng.uniform(0, 1, size=(n, 1, 1, 3))
        image = (1 - t) * background + t * foreground
        image += rng.normal(0.0, 0.03, size=image.shape)
        images[index] = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64)


class SyntheticTextures(torch.utils.data.Dataset):
    """``(PIL RGB image, label)`` pairs of the generated textures, held in memory as uint8."""

    def __init__(
        self,
        split: str = "train",
        num_samples: int | None = None,
        image_size: int = 32,
        seed: int = 0,
        transform: Callable | None = None,
    ) -> None:
        check_choice("split", split, SPLITS)
        num_samples = DEFAULT_NUM_SAMPLES[split] if num_samples is None else num_samples
        check_positive_int("num_samples", num_samples)
        check_positive_int("image_size", image_size)
        self.split = split
        self.classes = list(CLASSES)
        self.transform = transform
        self.images, labels = generate_textures(num_samples, image_size, seed * 10 + SPLITS[split])
        self.targets = labels.tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]
