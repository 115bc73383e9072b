"""The torchvision view pipeline: PIL image -> list of augmented, normalised tensors.

Built from a declarative :class:`~resmo.data.view_spec.ViewSpecs` (the views' options and
defaults live in :mod:`resmo.data.view_spec`) with torchvision ``transforms.v2`` on PIL
images, one ``Compose`` per view; the batched pipeline
(:class:`resmo.data.batched.BatchedViews`) is built from the same spec.

- :class:`TorchvisionViews`: a spec's views, made per image (in DataLoader workers);
- :class:`MultiViewDataset`: a dataset of ``(PIL image, label)`` through those views;
- :func:`eval_transform` and :class:`EvalDataset`: deterministic resize (+ centre crop)
  for kNN / linear probes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from resmo.data._checks import check_channel_stats, check_range
from resmo.data.view_spec import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    INTERPOLATIONS,
    ViewSpec,
    ViewSpecs,
)
from resmo.validation import check_choice, check_positive_int


class TorchvisionViews:
    """Callable ``image -> list[Tensor]``: the views of ``spec``, one torchvision ``Compose``
    per view, applied in order (views with equal specs, such as DINO's local crops, share
    one object).

    ``num_global_views`` is how many leading views are global crops (the spec's); pass it
    as a method's ``num_teacher_views``.
    """

    def __init__(self, spec: ViewSpecs) -> None:
        self.spec = spec
        self.num_global_views = spec.num_global_views
        composed: dict[ViewSpec, v2.Compose] = {}
        self.transforms = [composed.setdefault(view, _compose(view)) for view in spec.views]

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
        return f"TorchvisionViews(num_views={self.num_views}, num_global_views={self.num_global_views})\n{views}"


def _compose(view: ViewSpec) -> v2.Compose:
    """One view's pipeline in torchvision's order; ops with probability 0 are left out."""
    steps: list[Callable] = [v2.RandomResizedCrop(
        view.size, scale=view.scale, ratio=view.ratio, interpolation=view.interpolation, antialias=True)]
    if view.flip_prob > 0:
        steps.append(v2.RandomHorizontalFlip(p=view.flip_prob))
    if view.jitters:
        jitter = v2.ColorJitter(view.brightness, view.contrast, view.saturation, view.hue)
        steps.append(v2.RandomApply([jitter], p=view.jitter_prob))
    if view.grayscale_prob > 0:
        steps.append(v2.RandomGrayscale(p=view.grayscale_prob))
    if view.blur_prob > 0:
        steps.append(v2.RandomApply([v2.GaussianBlur(view.blur_kernel, sigma=view.blur_sigma)], p=view.blur_prob))
    if view.solarize_prob > 0:  # on uint8 PIL images
        steps.append(v2.RandomSolarize(threshold=view.solarize_threshold, p=view.solarize_prob))
    return v2.Compose(steps + _to_normalised_tensor(view.mean, view.std))


def _to_normalised_tensor(mean: Sequence[float], std: Sequence[float]) -> list[Callable]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


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


class MultiViewDataset(Dataset):
    """Wraps a dataset of ``(PIL image, label)`` into ``(list of view tensors, label)``.

    The default collate turns a batch into ``(list of [B, 3, H, W], [B] labels)``.
    """

    def __init__(self, base: Dataset, views: Callable[[Image.Image], list[torch.Tensor]]):
        self.base = base
        self.views = views

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[list[torch.Tensor], int]:
        image, label = self.base[index]
        return self.views(image), int(label)


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
