"""View recipes: PIL image -> list of augmented, normalised tensors (``[3, H, W]`` each).

Built from torchvision ``transforms.v2`` on PIL images, one ``Compose`` per view.

- :func:`two_view_recipe`: the asymmetric pair of BYOL (Grill et al. 2020, Table 6) and
  MoCo v3 (Chen et al. 2021): random resized crop, horizontal flip, colour jitter
  (0.4, 0.4, 0.2, 0.1) with p = 0.8, grayscale p = 0.2, Gaussian blur p = 1.0 / 0.1 and
  solarisation p = 0.0 / 0.2 (view 1 / view 2).
- :func:`multi_crop_recipe`: DINO's multi-crop (Caron et al. 2021): two global crops with
  the same asymmetry plus ``num_local_crops`` small crops (blur p = 0.5). Global crops come
  first, as :class:`resmo.methods.MomentumMethod` expects (the teacher sees those).
- :func:`eval_transform`: deterministic resize (+ centre crop) for kNN / linear probes.
- :func:`build_view_recipe`: picks multi-crop for DINO, two views otherwise.

Small images (``image_size <= SMALL_IMAGE_SIZE``, e.g. CIFAR's 32 px) default to no
Gaussian blur, minimum crop scale 0.2, and for multi-crop global scale (0.14, 1) with 4
local crops of ``image_size // 2`` pixels. The shipped CIFAR recipes set what the
solo-learn files they cite use instead (minimum scale 0.08, ...): see docs/recipes.md.
Every default is a keyword argument; invalid values raise ``ValueError`` naming the setting.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

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
#: registered method has an entry (tests/test_data_views.py checks it against resmo.methods).
VIEWS_OF_METHOD = {"mocov2": "two_view", "mocov3": "two_view", "byol": "two_view", "dino": "multi_crop"}
MULTI_CROP_METHODS = frozenset(name for name, views in VIEWS_OF_METHOD.items() if views == "multi_crop")
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


class ViewRecipe:
    """Callable ``image -> list[Tensor]``: applies one transform per view, in order.

    ``num_global_views`` is how many leading views are global crops (all of them for a
    two-view recipe); pass it as a method's ``num_teacher_views``.
    """

    def __init__(self, transforms: Sequence[Callable], *, num_global_views: int | None = None):
        self.transforms = list(transforms)
        self.num_global_views = len(self.transforms) if num_global_views is None else num_global_views

    @property
    def num_views(self) -> int:
        return len(self.transforms)

    def __call__(self, image: Image.Image) -> list[torch.Tensor]:
        return [transform(image) for transform in self.transforms]

    def __repr__(self) -> str:
        lines, start = [], 0
        for end in range(1, self.num_views + 1):  # group repeated transforms (local crops)
            if end == self.num_views or self.transforms[end] is not self.transforms[start]:
                label = f"view {start}" if end - start == 1 else f"views {start}-{end - 1}"
                lines.append(f"  {label}: {self.transforms[start]}")
                start = end
        views = "\n".join(lines)
        return f"ViewRecipe(num_views={self.num_views}, num_global_views={self.num_global_views})\n{views}"


def blur_kernel_size(image_size: int) -> int:
    """Odd Gaussian-blur kernel of about 10% of the image side (BYOL: 23 px at 224 px)."""
    return max(3, int(0.1 * image_size) // 2 * 2 + 1)


def _view(
    size: int,
    scale: tuple[float, float],
    *,
    flip_prob: float,
    jitter: tuple[float, float, float, float],
    jitter_prob: float,
    grayscale_prob: float,
    blur_prob: float,
    solarize_prob: float,
    mean: Sequence[float],
    std: Sequence[float],
    interpolation: str,
    blur_kernel: int | None = None,
) -> v2.Compose:
    """One view's pipeline; steps with probability 0 are left out. ``blur_kernel``: the
    Gaussian blur's kernel size (default :func:`blur_kernel_size` of the view size)."""
    steps: list[Callable] = [
        v2.RandomResizedCrop(size, scale=scale, interpolation=interpolation, antialias=True)
    ]
    if flip_prob > 0:
        steps.append(v2.RandomHorizontalFlip(p=flip_prob))
    if jitter_prob > 0 and any(jitter):
        brightness, contrast, saturation, hue = jitter
        steps.append(v2.RandomApply([v2.ColorJitter(brightness, contrast, saturation, hue)], p=jitter_prob))
    if grayscale_prob > 0:
        steps.append(v2.RandomGrayscale(p=grayscale_prob))
    if blur_prob > 0:
        blur = v2.GaussianBlur(blur_kernel or blur_kernel_size(size), sigma=(0.1, 2.0))
        steps.append(v2.RandomApply([blur], p=blur_prob))
    if solarize_prob > 0:  # on uint8 PIL images, threshold 128 as in BYOL
        steps.append(v2.RandomSolarize(threshold=128, p=solarize_prob))
    steps += _to_normalised_tensor(mean, std)
    return v2.Compose(steps)


def _to_normalised_tensor(mean: Sequence[float], std: Sequence[float]) -> list[Callable]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


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
    """Validate the options every recipe shares; return ``_view`` keywords and ``blur``."""
    check_positive_int("image_size", image_size)
    jitter = (
        check_range("brightness", brightness, 0, float("inf")),
        check_range("contrast", contrast, 0, float("inf")),
        check_range("saturation", saturation, 0, float("inf")),
        check_range("hue", hue, 0, 0.5),
    )
    blur = check_optional_bool("blur", blur)
    if blur_kernel is not None and (check_positive_int("blur_kernel", blur_kernel) % 2 == 0):
        raise ValueError(f"blur_kernel={blur_kernel!r} is not valid; allowed values: an odd integer >= 1")
    options = dict(
        blur_kernel=blur_kernel,
        flip_prob=check_range("flip_prob", flip_prob, 0, 1),
        jitter=jitter,
        jitter_prob=check_range("jitter_prob", jitter_prob, 0, 1),
        grayscale_prob=check_range("grayscale_prob", grayscale_prob, 0, 1),
        mean=check_channel_stats("mean", mean, positive=False),
        std=check_channel_stats("std", std, positive=True),
        interpolation=check_choice("interpolation", interpolation, INTERPOLATIONS),
    )
    return options, image_size > SMALL_IMAGE_SIZE if blur is None else blur


def two_view_recipe(
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
) -> ViewRecipe:
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
    return ViewRecipe(
        [
            _view(
                image_size, scale, blur_prob=blur_probs[i] if blur else 0.0,
                solarize_prob=solarize_probs[i], **options,
            )
            for i in range(2)
        ]
    )


def multi_crop_recipe(
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
) -> ViewRecipe:
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
    global_views = [
        _view(
            image_size, global_scale, blur_prob=blur_probs[i] if blur else 0.0,
            solarize_prob=solarize_probs[i], **options,
        )
        for i in range(2)
    ]
    local_view = _view(local_size, local_scale, blur_prob=local_blur, solarize_prob=0.0, **options)
    return ViewRecipe(global_views + [local_view] * num_local_crops, num_global_views=2)


def eval_resize_side(image_size: int, crop_fraction: float | None = None) -> int:
    """The short side :func:`eval_transform` resizes to before its centre crop:
    ``round(image_size / crop_fraction)``, ``crop_fraction`` 0.875 from 128 px up, else 1."""
    check_positive_int("image_size", image_size)
    if crop_fraction is None:
        crop_fraction = 0.875 if image_size >= 128 else 1.0
    return round(image_size / check_range("crop_fraction", crop_fraction, 1e-3, 1.0))


def eval_transform(
    image_size: int,
    *,
    crop_fraction: float | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    interpolation: str = "bicubic",
) -> v2.Compose:
    """Deterministic evaluation transform: resize the short side to
    ``image_size / crop_fraction``, centre-crop ``image_size``, ``ToTensor``, ``Normalize``.

    ``crop_fraction`` defaults to 0.875 (resize 256, crop 224) for images of 128 px and more,
    1.0 (plain resize) for smaller ones such as CIFAR and STL-10.
    """
    steps: list[Callable] = [
        v2.Resize(eval_resize_side(image_size, crop_fraction), interpolation=check_choice(
            "interpolation", interpolation, INTERPOLATIONS), antialias=True),
        v2.CenterCrop(image_size),
    ]
    mean = check_channel_stats("mean", mean, positive=False)
    std = check_channel_stats("std", std, positive=True)
    return v2.Compose(steps + _to_normalised_tensor(mean, std))


def view_options(recipe: Callable[..., ViewRecipe]) -> list[str]:
    """The keyword options a recipe function accepts (besides ``image_size``)."""
    parameters = inspect.signature(recipe).parameters.values()
    return sorted(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def build_view_recipe(
    method: str, image_size: int, *, multi_crop: bool | None = None, **options: object
) -> ViewRecipe:
    """The view recipe for ``method``: multi-crop for ``"dino"``, two views otherwise.

    ``multi_crop`` forces the choice (e.g. multi-crop for MoCo v3); ``options`` go to
    :func:`multi_crop_recipe` or :func:`two_view_recipe`. Unknown methods or options raise
    ``ValueError`` listing the valid ones.
    """
    check_choice("method", method, VIEWS_OF_METHOD)
    multi_crop = check_optional_bool("multi_crop", multi_crop)
    if multi_crop is None:
        multi_crop = method in MULTI_CROP_METHODS
    recipe = multi_crop_recipe if multi_crop else two_view_recipe
    allowed = view_options(recipe)
    for name in sorted(options):
        if name not in allowed:
            raise ValueError(
                f"view option {name!r} is not valid for {recipe.__name__} (method {method!r}); "
                f"allowed options: {', '.join(allowed)}"
            )
    return recipe(image_size, **options)


class MultiViewDataset(Dataset):
    """Wraps a dataset of ``(PIL image, label)`` into ``(list of view tensors, label)``.

    The default collate turns a batch into ``(list of [B, 3, H, W], [B] labels)``.
    """

    def __init__(self, base: Dataset, recipe: Callable[[Image.Image], list[torch.Tensor]]):
        self.base = base
        self.recipe = recipe

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[list[torch.Tensor], int]:
        image, label = self.base[index]
        return self.recipe(image), int(label)


class EvalDataset(Dataset):
    """Wraps a dataset of ``(PIL image, label)`` into ``(tensor, label)`` via ``transform``."""

    def __init__(self, base: Dataset, transform: Callable[[Image.Image], torch.Tensor]):
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.base[index]
        return self.transform(image), int(label)
