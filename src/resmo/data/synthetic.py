"""SyntheticShapes: the built-in offline dataset (generated, never downloaded).

Each image shows one procedurally drawn shape; the label is the shape's class. Everything
else is a nuisance that varies strongly and independently per sample, so that an encoder
has to learn *shape* to classify it, while a randomly initialised CNN (which mostly echoes
colour and position) scores low under kNN. The augmentations of every SSL recipe (colour
jitter, grayscale, random resized crop, flip) remove exactly these nuisances, so SSL
learns the shape quickly: a CPU pretraining run of about a minute separates clearly from a
random encoder.

Generative process, for sample ``i`` of a split (all draws from one ``numpy`` generator
seeded by ``(seed, split)``; images are built once, vectorised, in the constructor):

1. **class** ``y_i``: the labels ``0..C-1`` repeated to length ``N`` and shuffled, so the
   classes are balanced (counts differ by at most one);
2. **pose**: rotation ``theta ~ U[0, 2 pi)``, radius ``r ~ U[0.22, 0.36] * S`` (``S`` the
   image size) and centre ``c ~ U[0.5 r, S - 0.5 r]`` per axis (the shape stays mostly
   inside the image);
3. **shape**: a signed distance ``d(u, v)`` of the class's shape in its own frame (unit
   radius), evaluated at each pixel's rotated, scaled and shifted coordinates; the
   coverage ``alpha = clip(0.5 - r * d, 0, 1)`` gives a one-pixel anti-aliased edge;
4. **colours**: background and foreground colours ``~ U[0, 1]^3``, the foreground redrawn
   until the luma (BT.601) of the two differs by at least ``0.25`` (the shape survives
   grayscale); each layer also gets a linear colour gradient of random direction and
   per-channel amplitude ``U[-0.25, 0.25]``;
5. **clutter**: ``num_distractors`` small discs of random colour, size and position are
   drawn *under* the shape (``U[0.5, 1.2] * S / 10`` radius), so that a local blob is not
   evidence of any class;
6. **noise**: i.i.d. Gaussian pixel noise with a per-image standard deviation
   ``U[0, 0.08]``; the result is clipped to ``[0, 1]`` and stored as ``uint8``.

Shapes (``classes``): disk, ring, square, frame (hollow square), triangle, plus, star,
crescent, half disk, corner (an L of two equal bars). None of them is a rotation of
another, and each is closed under horizontal flip up to rotation, so flips and rotations
never change the label.

Train and evaluation splits draw from different streams (``split`` enters the seed), so
they share no images; the same ``(split, num_samples, image_size, seed)`` always gives the
same bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

SPLITS = {"train": 0, "val": 1, "test": 2}
DEFAULT_NUM_SAMPLES = {"train": 10_000, "val": 2_000, "test": 2_000}
_CHUNK = 1024  # images rendered at a time (fixed: part of the deterministic recipe)

_Sdf = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _box(u: np.ndarray, v: np.ndarray, half_u: float, half_v: float) -> np.ndarray:
    du, dv = np.abs(u) - half_u, np.abs(v) - half_v
    outside = np.hypot(np.maximum(du, 0.0), np.maximum(dv, 0.0))
    return outside + np.minimum(np.maximum(du, dv), 0.0)


def _polygon(u: np.ndarray, v: np.ndarray, sides: int, apothem: float) -> np.ndarray:
    """Regular polygon as the max over its edge half-planes (exact inside, close outside)."""
    angles = 2.0 * np.pi * np.arange(sides) / sides + np.pi / 2
    return np.max([u * np.cos(a) + v * np.sin(a) for a in angles], axis=0) - apothem


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    radius = np.hypot(u, v)
    boundary = 0.62 + 0.38 * np.cos(5.0 * np.arctan2(v, u))
    return (radius - boundary) * 0.6  # roughly Lipschitz-1 near the edge


def _crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    outer = np.hypot(u, v) - 0.95
    bite = np.hypot(u - 0.45, v) - 0.75
    return np.maximum(outer, -bite)


SHAPES: dict[str, _Sdf] = {
    "disk": lambda u, v: np.hypot(u, v) - 0.85,
    "ring": lambda u, v: np.abs(np.hypot(u, v) - 0.72) - 0.2,
    "square": lambda u, v: _box(u, v, 0.72, 0.72),
    "frame": lambda u, v: np.abs(_box(u, v, 0.68, 0.68)) - 0.17,
    "triangle": lambda u, v: _polygon(u, v, 3, 0.48),
    "plus": lambda u, v: np.minimum(_box(u, v, 0.95, 0.24), _box(u, v, 0.24, 0.95)),
    "star": _star,
    "crescent": _crescent,
    "half_disk": lambda u, v: np.maximum(np.hypot(u, v + 0.4) - 0.95, -(v + 0.4)),
    "corner": lambda u, v: np.minimum(
        _box(u + 0.1, v - 0.55, 0.75, 0.22), _box(u - 0.55, v + 0.1, 0.22, 0.75)
    ),
}


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def _ramp(angle: np.ndarray, amplitude: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear colour ramps ``[n, S, S, 3]``: direction ``angle [n]``, amplitude ``[n, 3]``."""
    ramp = np.cos(angle)[:, None, None] * grid[0] + np.sin(angle)[:, None, None] * grid[1]
    return ramp[..., None] * amplitude[:, None, None, :]


def generate_shapes(
    num_samples: int,
    *,
    image_size: int = 32,
    seed: int | np.random.SeedSequence = 0,
    num_distractors: int = 3,
    min_contrast: float = 0.25,
    max_noise: float = 0.08,
    max_ramp: float = 0.25,
    max_rotation: float = 180.0,
    radius_range: tuple[float, float] = (0.22, 0.36),
    palette: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``num_samples`` images (``uint8 [N, S, S, 3]``) and labels (``int64 [N]``).

    See the module docstring for the generative process; the keyword arguments set its
    nuisance strengths (``num_distractors=0, max_noise=0, max_ramp=0`` leaves flat
    colours). All per-sample factors are drawn first; pixels are then rendered in fixed-size
    chunks (float32) to bound memory.
    """
    if num_samples < 1 or image_size < 8:
        raise ValueError(f"need num_samples >= 1 and image_size >= 8, got {num_samples}, {image_size}")
    rng = np.random.default_rng(seed)
    n, size, names = num_samples, image_size, list(SHAPES)
    labels = rng.permutation(np.arange(n) % len(names))

    # per-sample factors
    if palette:
        colours = rng.uniform(0.0, 1.0, (palette, 3))
        draw = lambda k: colours[rng.integers(0, palette, k)]  # noqa: E731
    else:
        draw = lambda k: rng.uniform(0.0, 1.0, (k, 3))  # noqa: E731
    background = draw(n)
    foreground = draw(n)
    for _ in range(100):  # redraw foregrounds too close in luma to their background
        bad = np.abs(_luma(foreground) - _luma(background)) < min_contrast
        if not bad.any():
            break
        foreground[bad] = draw(int(bad.sum()))
    ramp_angle = rng.uniform(0.0, 2.0 * np.pi, (2, n))
    ramp_amplitude = rng.uniform(-1.0, 1.0, (2, n, 3)) * max_ramp
    clutter_radius = rng.uniform(0.5, 1.2, (num_distractors, n)) * size / 10
    clutter_centre = rng.uniform(0.0, size, (num_distractors, 2, n))
    clutter_colour = rng.uniform(0.0, 1.0, (num_distractors, n, 3))
    theta = np.deg2rad(rng.uniform(-max_rotation, max_rotation, n))
    radius = rng.uniform(*radius_range, n) * size
    cx = rng.uniform(0.5 * radius, size - 0.5 * radius)
    cy = rng.uniform(0.5 * radius, size - 0.5 * radius)
    noise = rng.uniform(0.0, max_noise, n)
    noise_seed = rng.integers(0, 2**63, dtype=np.int64)

    pixel = np.arange(size, dtype=np.float32) + 0.5
    ys, xs = np.meshgrid(pixel, pixel, indexing="ij")  # [S, S]
    unit = np.stack([xs / size * 2 - 1, ys / size * 2 - 1])  # [-1, 1] grid for the ramps
    noise_rng = np.random.default_rng(noise_seed)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    for lo in range(0, n, _CHUNK):
        c = slice(lo, min(lo + _CHUNK, n))
        f32 = lambda a: np.asarray(a[c], dtype=np.float32)  # noqa: E731
        image = f32(background)[:, None, None, :] + _ramp(
            f32(ramp_angle[0]), f32(ramp_amplitude[0]), unit
        )
        for k in range(num_distractors):
            cen = clutter_centre[k]
            dist = np.hypot(xs - f32(cen[0])[:, None, None], ys - f32(cen[1])[:, None, None])
            alpha = np.clip(0.5 + f32(clutter_radius[k])[:, None, None] - dist, 0.0, 1.0)[..., None]
            image += alpha * (f32(clutter_colour[k])[:, None, None, :] - image)

        r = f32(radius)[:, None, None]
        t = f32(theta)[:, None, None]
        dx, dy = xs - f32(cx)[:, None, None], ys - f32(cy)[:, None, None]
        u = (dx * np.cos(t) + dy * np.sin(t)) / r
        v = (-dx * np.sin(t) + dy * np.cos(t)) / r
        coverage = np.zeros(u.shape, dtype=np.float32)
        chunk_labels = labels[c]
        for index, sdf in enumerate(SHAPES.values()):
            m = chunk_labels == index
            if m.any():
                coverage[m] = np.clip(0.5 - r[m] * sdf(u[m], v[m]), 0.0, 1.0)
        fill = f32(foreground)[:, None, None, :] + _ramp(
            f32(ramp_angle[1]), f32(ramp_amplitude[1]), unit
        )
        image += coverage[..., None] * (fill - image)

        sigma = f32(noise)[:, None, None, None]
        image += sigma * noise_rng.standard_normal(image.shape, dtype=np.float32)
        images[c] = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    return images, labels.astype(np.int64)


class SyntheticShapes(torch.utils.data.Dataset):
    """Offline shape-classification dataset (see the module docstring).

    ``images`` is ``uint8 [N, S, S, 3]``, ``targets`` ``int64 [N]``; ``dataset[i]`` is
    ``(PIL RGB image, int label)``. ``num_samples`` defaults to 10 000 for ``"train"`` and
    2 000 for ``"val"`` / ``"test"``. ``transform`` (applied to the PIL image) is optional.
    """

    def __init__(
        self,
        split: str = "train",
        num_samples: int | None = None,
        image_size: int = 32,
        seed: int = 0,
        transform: Callable | None = None,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
        self.split = split
        self.classes: list[str] = list(SHAPES)
        self.transform = transform
        count = DEFAULT_NUM_SAMPLES[split] if num_samples is None else int(num_samples)
        stream = np.random.SeedSequence([int(seed), SPLITS[split]])
        self.images, self.targets = generate_shapes(count, image_size=image_size, seed=stream)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index], mode="RGB")
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])
