"""Torchvision views of the view specs: counts, shapes, dtypes, defaults, determinism and option checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from resmo.data import (
    EvalDataset,
    MultiViewDataset,
    TorchvisionViews,
    build_view_spec,
    eval_transform,
    multi_crop_spec,
    two_view_spec,
)


def two_views(image_size: int, **options) -> TorchvisionViews:
    """The torchvision pipeline of the two-view spec (what these tests check)."""
    return TorchvisionViews(two_view_spec(image_size, **options))


def multi_crop_views(image_size: int, **options) -> TorchvisionViews:
    return TorchvisionViews(multi_crop_spec(image_size, **options))


def _image(size: int | tuple[int, int] = 32, seed: int = 0) -> Image.Image:
    width, height = (size, size) if isinstance(size, int) else size
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


class _Images(torch.utils.data.Dataset):
    def __init__(self, count: int, size: int) -> None:
        self.images = [_image(size, seed=i) for i in range(count)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.images[index], index % 3


def _steps(view: v2.Compose) -> list[type]:
    """Transform classes of a view, looking inside RandomApply."""
    found = []
    for step in view.transforms:
        found.append(type(step))
        if isinstance(step, v2.RandomApply):
            found += [type(t) for t in step.transforms]
    return found


def _probability_of(view: v2.Compose, kind: type) -> float | None:
    for step in view.transforms:
        if isinstance(step, v2.RandomApply) and any(isinstance(t, kind) for t in step.transforms):
            return step.p
        if isinstance(step, kind):
            return getattr(step, "p", 1.0)
    return None


@pytest.mark.parametrize("size", [32, 96])
def test_two_view_spec_gives_two_float_views(size):
    make_views = two_views(size)
    views = make_views(_image((size + 13, size + 7)))
    assert make_views.num_views == make_views.num_global_views == 2
    assert len(views) == 2
    for view in views:
        assert view.shape == (3, size, size)
        assert view.dtype == torch.float32
        assert torch.isfinite(view).all()


def test_two_view_defaults_follow_public_recipes():
    small, large = two_views(32), two_views(224)
    assert small.transforms[0].transforms[0].scale == (0.2, 1.0)
    assert large.transforms[0].transforms[0].scale == (0.08, 1.0)
    # no blur at 32 px; blur p = 1.0 / 0.1 and solarisation p = 0 / 0.2 otherwise
    assert all(v2.GaussianBlur not in _steps(view) for view in small.transforms)
    assert _probability_of(large.transforms[0], v2.GaussianBlur) == 1.0
    assert _probability_of(large.transforms[1], v2.GaussianBlur) == 0.1
    assert large.transforms[0].transforms[4].transforms[0].kernel_size == (23, 23)
    assert _probability_of(large.transforms[0], v2.RandomSolarize) is None
    assert _probability_of(large.transforms[1], v2.RandomSolarize) == 0.2
    jitter = large.transforms[0].transforms[2]
    assert jitter.p == 0.8
    assert jitter.transforms[0].saturation == (0.8, 1.2)
    assert jitter.transforms[0].hue == (-0.1, 0.1)
    assert _probability_of(large.transforms[0], v2.RandomGrayscale) == 0.2


def test_two_view_options_are_applied():
    make_views = two_views(
        32, min_scale=0.5, blur=True, blur_prob=0.3, solarize_prob=0.0, mean=(0, 0, 0), std=(1, 1, 1)
    )
    assert make_views.transforms[0].transforms[0].scale == (0.5, 1.0)
    assert _probability_of(make_views.transforms[1], v2.GaussianBlur) == 0.3
    assert all(v2.RandomSolarize not in _steps(view) for view in make_views.transforms)
    views = make_views(_image())
    assert all(0.0 <= float(v.min()) and float(v.max()) <= 1.0 for v in views)


@pytest.mark.parametrize(
    ("size", "count", "local"), [(32, 4, 16), (96, 6, 48), (224, 6, 96)]
)
def test_multi_crop_default_counts_and_sizes(size, count, local):
    make_views = multi_crop_views(size)
    views = make_views(_image(size))
    assert make_views.num_global_views == 2
    assert len(views) == make_views.num_views == 2 + count
    assert [tuple(v.shape) for v in views] == [(3, size, size)] * 2 + [(3, local, local)] * count
    assert all(v.dtype == torch.float32 for v in views)


def test_multi_crop_scales_and_options():
    small = multi_crop_views(32)
    assert small.transforms[0].transforms[0].scale == (0.14, 1.0)
    assert small.transforms[2].transforms[0].scale == (0.05, 0.14)
    large = multi_crop_views(224)
    assert large.transforms[0].transforms[0].scale == (0.4, 1.0)
    assert large.transforms[2].transforms[0].scale == (0.05, 0.4)
    assert _probability_of(large.transforms[2], v2.GaussianBlur) == 0.5
    assert _probability_of(large.transforms[2], v2.RandomSolarize) is None

    custom = multi_crop_views(32, num_local_crops=2, local_size=24, local_scale=(0.1, 0.3))
    shapes = [tuple(v.shape) for v in custom(_image())]
    assert shapes == [(3, 32, 32)] * 2 + [(3, 24, 24)] * 2
    assert len(multi_crop_views(32, num_local_crops=0)(_image())) == 2


@pytest.mark.parametrize("make", [lambda: two_views(32), lambda: multi_crop_views(96)])
def test_views_are_deterministic_under_manual_seed(make):
    make_views, image = make(), _image(96)
    torch.manual_seed(0)
    first = make_views(image)
    torch.manual_seed(0)
    second = make_views(image)
    torch.manual_seed(1)
    third = make_views(image)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, c) for a, c in zip(first, third, strict=True))
    assert not torch.equal(first[0], first[1])  # the two views differ


def test_eval_transform_is_deterministic_and_sized():
    transform = eval_transform(32)
    image = _image((50, 40))
    out = transform(image)
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32
    assert torch.equal(out, transform(image))
    large = eval_transform(224)
    assert large.transforms[0].size == [256]  # resize 256, centre crop 224
    assert large(_image((300, 260))).shape == (3, 224, 224)
    assert eval_transform(96).transforms[0].size == [96]


def test_build_view_spec_picks_multi_crop_for_dino_only():
    assert TorchvisionViews(build_view_spec("dino", 32)).num_views == 6
    for method in ("byol", "mocov2", "mocov3"):
        assert TorchvisionViews(build_view_spec(method, 32)).num_views == 2
    assert TorchvisionViews(build_view_spec("mocov3", 32, multi_crop=True, num_local_crops=2)).num_views == 4
    assert TorchvisionViews(build_view_spec("dino", 32, multi_crop=False)).num_views == 2
    assert TorchvisionViews(build_view_spec("byol", 32, min_scale=0.3)).transforms[0].transforms[0].scale == (0.3, 1.0)


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: TorchvisionViews(build_view_spec("simclr", 32)), "method='simclr'"),
        (lambda: TorchvisionViews(build_view_spec("byol", 32, num_local_crops=2)), "'num_local_crops'"),
        (lambda: TorchvisionViews(build_view_spec("dino", 32, min_scale=0.2)), "'min_scale'"),
        (lambda: TorchvisionViews(build_view_spec("byol", 32, multi_crop="yes")), "multi_crop='yes'"),
        (lambda: two_views(0), "image_size=0"),
        (lambda: two_views(32, min_scale=1.5), "(min_scale, max_scale)=(1.5, 1.0)"),
        (lambda: two_views(32, hue=0.7), "hue=0.7"),
        (lambda: two_views(32, blur_prob=(1.0, 0.5, 0.1)), "blur_prob=(1.0, 0.5, 0.1)"),
        (lambda: two_views(32, solarize_prob=2), "solarize_prob=2"),
        (lambda: two_views(32, std=(0, 1, 1)), "std=(0, 1, 1)"),
        (lambda: two_views(32, interpolation="cubic"), "interpolation='cubic'"),
        (lambda: multi_crop_views(32, num_local_crops=-1), "num_local_crops=-1"),
        (lambda: multi_crop_views(32, local_scale=(0.5, 0.1)), "local_scale=(0.5, 0.1)"),
        (lambda: eval_transform(32, crop_fraction=1.5), "crop_fraction=1.5"),
    ],
)
def test_invalid_view_options_name_the_setting(call, named):
    with pytest.raises(ValueError, match="allowed") as error:
        call()
    assert named in str(error.value)


def test_multi_view_dataset_collates_into_view_batches():
    make_views = multi_crop_views(32, num_local_crops=2)
    dataset = MultiViewDataset(_Images(5, 32), make_views)
    assert len(dataset) == 5
    views, labels = next(iter(DataLoader(dataset, batch_size=4)))
    assert [tuple(v.shape) for v in views] == [(4, 3, 32, 32)] * 2 + [(4, 3, 16, 16)] * 2
    assert labels.tolist() == [0, 1, 2, 0]


def test_eval_dataset_returns_tensor_and_label():
    dataset = EvalDataset(_Images(3, 40), eval_transform(32))
    image, label = dataset[2]
    assert image.shape == (3, 32, 32) and label == 2
    batch, labels = next(iter(DataLoader(dataset, batch_size=3)))
    assert batch.shape == (3, 3, 32, 32) and labels.tolist() == [0, 1, 2]


def test_torchvision_views_repr_groups_local_crops():
    text = repr(multi_crop_views(32))
    assert "views 2-5" in text and "num_views=6" in text


def test_every_registered_method_has_its_views():
    from resmo.data.view_spec import VIEWS_OF_METHOD
    from resmo.methods import method_names

    assert sorted(VIEWS_OF_METHOD) == method_names()
