"""The declarative view spec: what each view of a method does, as plain values.

A :class:`ViewSpecs` is the one description of a method's views (crops, sizes, augmentation
options). Both view pipelines are built from it and nothing else: the torchvision per-image
pipeline (:class:`resmo.data.views.TorchvisionViews`) and the batched one on the training
device (:class:`resmo.data.batched.BatchedViews`). Neither reads settings back off the
other's objects, so the two cannot drift apart.

- :func:`two_view_spec`: the asymmetric pair of BYOL (Grill et al. 2020, Table 6) and
  MoCo v3 (Chen et al. 2021): random resized crop, horizontal flip, colour jitter
  (0.4, 0.4, 0.2, 0.1) with p = 0.8, grayscale p = 0.2, Gaussian blur p = 1.0 / 0.1 and
  solarisation p = 0.0 / 0.2 (view 1 / view 2).
- :func:`multi_crop_spec`: DINO's multi-crop (Caron et al. 2021): two global crops with
  the same asymmetry plus ``num_local_crops`` small crops (blur p = 0.5). Global crops come
  first, as :class:`resmo.methods.MomentumMethod` expects (the teacher sees those).
- :func:`build_view_spec`: picks multi-crop for DINO, two views otherwise (DenseCL's MoCo v2
  views are :func:`two_view_spec` with its recipe's options: min scale 0.2, saturation 0.4,
  blur p = 0.5 on both views, no solarisation, bilinear crops).

Small images (``image_size <= SMALL_IMAGE_SIZE``, e.g. CIFAR's 32 px) default to no
Gaussian blur, minimum crop scale 0.2, and for multi-crop global scale (0.14, 1) with 4
local crops of ``image_size // 2`` pixels. The shipped CIFAR recipes set what the
solo-learn files they cite use instead (minimum scale 0.08, ...): see docs/recipes.md.
Every default is a keyword argument; invalid values raise ``ValueError`` naming the setting.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from resmo.data._checks import (
    check_channel_stats,
    check_optional_bool,
    check_probabilities,
    check_range,
    check_scale,
)
from resmo.validation import check_choice, check_non_negative_int, check_positive_int

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SMALL_IMAGE_SIZE = 64
"""Images at most this many pixels wide count as small (CIFAR-like) for the defaults."""
#: The views of each method: multi-crop (global + local crops) or two global views. Every
#: registered method has an entry (tests/data/test_data_views.py checks it against resmo.methods).
VIEWS_OF_METHOD = {
    "mocov2": "two_view", "mocov3": "two_view", "byol": "two_view", "dino": "multi_crop", "densecl": "two_view",
}
MULTI_CROP_METHODS = frozenset(name for name, views in VIEWS_OF_METHOD.items() if views == "multi_crop")
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")

Range = tuple[float, float]


@dataclass(frozen=True)
class ViewSpec:
    """One view: crop, flip, colour, blur, solarisation and normalisation settings.

    Values are as recipes and papers write them: jitter strengths (0.4 for
    ``ColorJitter(brightness=0.4)``), hue in turns, the solarisation threshold on the uint8
    scale (128 as in BYOL). A probability of 0 leaves the op out; ``blur_kernel`` is 0
    exactly when the view is never blurred.
    """

    size: int
    scale: Range = (0.08, 1.0)
    ratio: Range = (3 / 4, 4 / 3)
    interpolation: str = "bicubic"
    flip_prob: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    jitter_prob: float = 0.0
    grayscale_prob: float = 0.0
    blur_prob: float = 0.0
    blur_kernel: int = 0
    blur_sigma: Range = (0.1, 2.0)
    solarize_prob: float = 0.0
    solarize_threshold: int = 128
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    PROBABILITIES = ("flip_prob", "jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob")

    @property
    def jitters(self) -> bool:
        """Whether colour jitter ever runs (a probability and at least one strength)."""
        return self.jitter_prob > 0 and any((self.brightness, self.contrast, self.saturation, self.hue))

    @property
    def jitter_ranges(self) -> list[Range | None]:
        """torchvision's factor ranges of brightness, contrast, saturation (``[max(0, 1 - s),
        1 + s]``) and hue (``[-h, h]``); ``None`` for an op whose strength is 0."""
        ranges: list[Range | None] = [
            (max(0.0, 1 - s), 1 + s) if s > 0 else None for s in (self.brightness, self.contrast, self.saturation)
        ]
        return ranges + [(-self.hue, self.hue) if self.hue > 0 else None]

    @property
    def solarize_level(self) -> float:
        """The threshold on the ``[0, 1]`` scale: ``x >= t`` on uint8 is ``x >= (t - 0.5) / 255``
        in floats (values in between round up to ``t``)."""
        return (self.solarize_threshold - 0.5) / 255

    def group_key(self) -> ViewSpec:
        """The spec without its probabilities: views with equal keys can run as one batch."""
        return dataclasses.replace(self, **{name: 0.0 for name in self.PROBABILITIES})


@dataclass(frozen=True)
class ViewSpecs:
    """The views of one method, in order; the first ``num_global_views`` are global crops
    (pass it as a method's ``num_teacher_views``)."""

    views: tuple[ViewSpec, ...]
    num_global_views: int

    @property
    def num_views(self) -> int:
        return len(self.views)


def blur_kernel_size(image_size: int) -> int:
    """Odd Gaussian-blur kernel of about 10% of the image side (BYOL: 23 px at 224 px)."""
    return max(3, int(0.1 * image_size) // 2 * 2 + 1)


def _view(size: int, scale: Range, *, blur_prob: float, blur_kernel: int | None, **shared) -> ViewSpec:
    """One view; ``blur_kernel`` defaults to :func:`blur_kernel_size` of the view size."""
    kernel = (blur_kernel or blur_kernel_size(size)) if blur_prob > 0 else 0
    return ViewSpec(size=size, scale=scale, blur_prob=blur_prob, blur_kernel=kernel, **shared)


def _common(
    image_size: int,
    *,
    flip_prob: float,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    jitter_prob: float,
    grayscale_prob: float,
    blur: bool | None,
    blur_kernel: int | None,
    mean: Sequence[float],
    std: Sequence[float],
    interpolation: str,
) -> tuple[dict, bool]:
    """Validate the options every spec function shares; return ``_view`` keywords and ``blur``."""
    check_positive_int("image_size", image_size)
    blur = check_optional_bool("blur", blur)
    if blur_kernel is not None and (check_positive_int("blur_kernel", blur_kernel) % 2 == 0):
        raise ValueError(f"blur_kernel={blur_kernel!r} is not valid; allowed values: an odd integer >= 1")
    options = dict(
        blur_kernel=blur_kernel,
        flip_prob=check_range("flip_prob", flip_prob, 0, 1),
        brightness=check_range("brightness", brightness, 0, float("inf")),
        contrast=check_range("contrast", contrast, 0, float("inf")),
        saturation=check_range("saturation", saturation, 0, float("inf")),
        hue=check_range("hue", hue, 0, 0.5),
        jitter_prob=check_range("jitter_prob", jitter_prob, 0, 1),
        grayscale_prob=check_range("grayscale_prob", grayscale_prob, 0, 1),
        mean=check_channel_stats("mean", mean, positive=False),
        std=check_channel_stats("std", std, positive=True),
        interpolation=check_choice("interpolation", interpolation, INTERPOLATIONS),
    )
    return options, image_size > SMALL_IMAGE_SIZE if blur is None else blur


def two_view_spec(
    image_size: int,
    *,
    min_scale: float | None = None,
    max_scale: float = 1.0,
    flip_prob: float = 0.5,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.2,
    hue: float = 0.1,
    jitter_prob: float = 0.8,
    grayscale_prob: float = 0.2,
    blur: bool | None = None,
    blur_kernel: int | None = None,
    blur_prob: float | Sequence[float] = (1.0, 0.1),
    solarize_prob: float | Sequence[float] = (0.0, 0.2),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    interpolation: str = "bicubic",
) -> ViewSpecs:
    """BYOL / MoCo v3 asymmetric views: ``RandomResizedCrop(image_size, (min_scale, max_scale))``,
    flip, colour jitter, grayscale, blur (view 1 / view 2 probabilities ``blur_prob``) and
    solarisation (``solarize_prob``), then ``ToTensor`` and ``Normalize(mean, std)``.

    ``min_scale`` defaults to 0.08 (BYOL), 0.2 for small images. ``blur=None`` blurs only
    images larger than ``SMALL_IMAGE_SIZE`` (most public CIFAR recipes skip it at 32 px);
    ``blur_kernel`` sets the blur's kernel size (default :func:`blur_kernel_size`).
    """
    options, blur = _common(
        image_size, flip_prob=flip_prob, brightness=brightness, contrast=contrast,
        saturation=saturation, hue=hue, jitter_prob=jitter_prob, grayscale_prob=grayscale_prob,
        blur=blur, blur_kernel=blur_kernel, mean=mean, std=std, interpolation=interpolation,
    )
    if min_scale is None:
        min_scale = 0.2 if image_size <= SMALL_IMAGE_SIZE else 0.08
    scale = check_scale("(min_scale, max_scale)", (min_scale, max_scale))
    blur_probs = check_probabilities("blur_prob", blur_prob, 2)
    solarize_probs = check_probabilities("solarize_prob", solarize_prob, 2)
    views = tuple(
        _view(image_size, scale, blur_prob=blur_probs[i] if blur else 0.0, solarize_prob=solarize_probs[i], **options)
        for i in range(2)
    )
    return ViewSpecs(views, num_global_views=2)


def multi_crop_spec(
    image_size: int,
    *,
    num_local_crops: int | None = None,
    local_size: int | None = None,
    global_scale: Sequence[float] | None = None,
    local_scale: Sequence[float] | None = None,
    flip_prob: float = 0.5,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.2,
    hue: float = 0.1,
    jitter_prob: float = 0.8,
    grayscale_prob: float = 0.2,
    blur: bool | None = None,
    blur_kernel: int | None = None,
    blur_prob: float | Sequence[float] = (1.0, 0.1),
    local_blur_prob: float = 0.5,
    solarize_prob: float | Sequence[float] = (0.0, 0.2),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    interpolation: str = "bicubic",
) -> ViewSpecs:
    """DINO multi-crop: 2 global crops of ``image_size`` then ``num_local_crops`` of ``local_size``.

    Defaults, large images / small images (``<= SMALL_IMAGE_SIZE``):

    - ``num_local_crops``: 6 / 4;
    - ``local_size``: 96 for ``image_size >= 192``, else ``image_size // 2`` (48 at 96 px,
      16 at 32 px);
    - ``global_scale``: (0.4, 1) as in DINO / (0.14, 1), DINO's advice for fewer crops;
    - ``local_scale``: (0.05, low end of ``global_scale``), so local crops are never
      larger than the smallest global crop (DINO: (0.05, 0.4)).

    Global crops use ``blur_prob`` and ``solarize_prob`` (one value per global crop), local
    crops ``local_blur_prob`` and no solarisation. ``blur=None`` blurs only large images.
    """
    options, blur = _common(
        image_size, flip_prob=flip_prob, brightness=brightness, contrast=contrast,
        saturation=saturation, hue=hue, jitter_prob=jitter_prob, grayscale_prob=grayscale_prob,
        blur=blur, blur_kernel=blur_kernel, mean=mean, std=std, interpolation=interpolation,
    )
    small = image_size <= SMALL_IMAGE_SIZE
    if num_local_crops is None:
        num_local_crops = 4 if small else 6
    check_non_negative_int("num_local_crops", num_local_crops)
    if local_size is None:
        local_size = 96 if image_size >= 192 else max(1, image_size // 2)
    check_positive_int("local_size", local_size)
    if global_scale is None:
        global_scale = (0.14, 1.0) if small else (0.4, 1.0)
    global_scale = check_scale("global_scale", global_scale)
    local_scale = check_scale(
        "local_scale", (min(0.05, global_scale[0]), global_scale[0]) if local_scale is None else local_scale
    )
    blur_probs = check_probabilities("blur_prob", blur_prob, 2)
    solarize_probs = check_probabilities("solarize_prob", solarize_prob, 2)
    local_blur = check_range("local_blur_prob", local_blur_prob, 0, 1) if blur else 0.0
    global_views = tuple(
        _view(image_size, global_scale, blur_prob=blur_probs[i] if blur else 0.0,
              solarize_prob=solarize_probs[i], **options)
        for i in range(2)
    )
    local_view = _view(local_size, local_scale, blur_prob=local_blur, solarize_prob=0.0, **options)
    return ViewSpecs(global_views + (local_view,) * num_local_crops, num_global_views=2)


def view_options(spec_function: Callable[..., ViewSpecs]) -> list[str]:
    """The keyword options a spec function accepts (besides ``image_size``)."""
    parameters = inspect.signature(spec_function).parameters.values()
    return sorted(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def build_view_spec(method: str, image_size: int, *, multi_crop: bool | None = None, **options: object) -> ViewSpecs:
    """The views of ``method``: multi-crop for ``"dino"``, two views otherwise.

    ``multi_crop`` forces the choice (e.g. multi-crop for MoCo v3); ``options`` go to
    :func:`multi_crop_spec` or :func:`two_view_spec`. Unknown methods or options raise
    ``ValueError`` listing the valid ones.
    """
    check_choice("method", method, VIEWS_OF_METHOD)
    multi_crop = check_optional_bool("multi_crop", multi_crop)
    if multi_crop is None:
        multi_crop = method in MULTI_CROP_METHODS
    spec_function = multi_crop_spec if multi_crop else two_view_spec
    allowed = view_options(spec_function)
    for name in sorted(options):
        if name not in allowed:
            raise ValueError(
                f"view option {name!r} is not valid for {spec_function.__name__} (method {method!r}); "
                f"allowed options: {', '.join(allowed)}"
            )
    return spec_function(image_size, **options)
