"""Batched views (resmo.data.batched) against the torchvision reference pipeline.

Three kinds of checks: shapes / dtypes / normalisation; each op against torchvision's
functional op on fixed parameters; and, at fixed seeds over thousands of samples, the
distributions of what is drawn (crop scale and aspect ratio, offsets, flip, jitter,
grayscale, blur and solarisation rates) and of the output colours.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode, RandomResizedCrop
from torchvision.transforms.v2 import functional as TF

from resmo.data import TorchvisionViews, ViewSpecs, build_view_spec, multi_crop_spec, two_view_spec
from resmo.data.batched import BatchedViews, colour
from resmo.data.batched import blur as blur_ops
from resmo.data.batched.geometry import max_box_size, resized_crop, sample_crop_boxes


def ks_statistic(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two ECDFs."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    grid = np.concatenate([a, b])
    ecdf_a = np.searchsorted(a, grid, side="right") / len(a)
    ecdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.abs(ecdf_a - ecdf_b).max())


def ks_critical(n: int, m: int, alpha: float = 1e-4) -> float:
    """The two-sample KS statistic that same-distribution samples exceed with probability
    ``alpha`` (asymptotic formula; conservative for discrete values)."""
    return math.sqrt(-0.5 * math.log(alpha / 2)) * math.sqrt((n + m) / (n * m))


def same_distribution(a, b, alpha: float = 1e-4) -> bool:
    return ks_statistic(a, b) < ks_critical(len(a), len(b), alpha)


def uint8_images(count: int, size: int | tuple[int, int], seed: int = 0) -> torch.Tensor:
    height, width = (size, size) if isinstance(size, int) else size
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, 3, height, width), dtype=torch.uint8, generator=generator)


def to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(image.permute(1, 2, 0).numpy())


def binomial_ok(hits: int, trials: int, p: float, sigmas: float = 5.0) -> bool:
    return abs(hits - trials * p) <= sigmas * math.sqrt(trials * p * (1 - p)) + 1e-9


# -- shapes, dtypes, normalisation ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "size", "shapes"),
    [
        ("mocov3", 32, [32, 32]),
        ("dino", 32, [32, 32, 16, 16, 16, 16]),
        ("byol", 96, [96, 96]),
    ],
)
def test_views_have_the_spec_shapes_and_dtype(method, size, shapes):
    make_views = BatchedViews(build_view_spec(method, size))
    reference = TorchvisionViews(build_view_spec(method, size))
    assert make_views.num_views == reference.num_views and make_views.num_global_views == reference.num_global_views
    views = make_views(uint8_images(5, (size + 8, size)), generator=torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in views] == [(5, 3, s, s) for s in shapes]
    assert all(v.dtype == torch.float32 and v.is_contiguous() and torch.isfinite(v).all() for v in views)
    assert not torch.equal(views[0], views[1])


def test_both_pipelines_are_built_from_one_spec():
    spec = two_view_spec(96, min_scale=0.3, brightness=0.2, hue=0.05, grayscale_prob=0.3,
                         solarize_prob=(0.1, 0.4), mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4))
    first, second = spec.views
    assert first.size == 96 and first.scale == (0.3, 1.0) and first.interpolation == "bicubic"
    assert first.brightness == 0.2 and first.hue == 0.05 and first.saturation == 0.2
    assert first.jitter_ranges == [pytest.approx((0.8, 1.2)), pytest.approx((0.6, 1.4)),
                                   pytest.approx((0.8, 1.2)), pytest.approx((-0.05, 0.05))]
    assert first.jitter_prob == 0.8 and first.grayscale_prob == 0.3 and first.flip_prob == 0.5
    assert first.blur_kernel == 9 and first.blur_prob == 1.0 and second.blur_prob == 0.1
    assert (first.solarize_prob, second.solarize_prob) == (0.1, 0.4)
    assert first.solarize_level == pytest.approx(127.5 / 255)  # uint8 128 in floats
    assert first.mean == (0.5, 0.4, 0.3) and first.std == (0.2, 0.3, 0.4)
    assert first.group_key() == second.group_key()  # the two views run as one batch
    reference = TorchvisionViews(spec)
    crop, flip, jitter, gray, blur, solarize = reference.transforms[1].transforms[:6]
    assert crop.size == (96, 96) and crop.scale == (0.3, 1.0) and flip.p == 0.5
    assert jitter.p == 0.8 and jitter.transforms[0].brightness == pytest.approx((0.8, 1.2))
    assert jitter.transforms[0].hue == pytest.approx((-0.05, 0.05)) and gray.p == 0.3
    assert blur.p == 0.1 and blur.transforms[0].kernel_size == (9, 9)
    assert solarize.p == 0.4 and solarize.threshold == 128
    assert reference.spec is spec and BatchedViews(spec).specs == list(spec.views)
    assert BatchedViews(spec).groups == [[0, 1]]
    assert BatchedViews(multi_crop_spec(32)).groups == [[0, 1], [2, 3, 4, 5]]


def test_ops_with_probability_zero_are_left_out_of_both_pipelines():
    spec = two_view_spec(96, jitter_prob=0.0, grayscale_prob=0.0, flip_prob=0.0, blur=False,
                         solarize_prob=0.0)
    assert [type(t).__name__ for t in TorchvisionViews(spec).transforms[0].transforms] == [
        "RandomResizedCrop", "ToImage", "ToDtype", "Normalize"]
    assert spec.views[0].blur_kernel == 0 and not spec.views[0].jitters
    images = uint8_images(2, 96)
    _, params = BatchedViews(spec)(images, generator=torch.Generator().manual_seed(0), return_params=True)
    assert not any(bool(p.jitter.any() or p.flip.any() or p.blur.any() or p.solarize.any()) for p in params)


def test_normalisation_of_an_untouched_view():
    make_views = BatchedViews(two_view_spec(
        16, min_scale=1.0, flip_prob=0.0, jitter_prob=0.0, grayscale_prob=0.0, solarize_prob=0.0,
        mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0),
    ))
    images = uint8_images(3, 16)
    for view in make_views(images):  # the whole image, resized to its own size: unchanged
        expected = (images.float() / 255 - torch.tensor([0.5, 0.25, 0.0]).view(1, 3, 1, 1)) / torch.tensor(
            [0.5, 0.25, 2.0]).view(1, 3, 1, 1)
        torch.testing.assert_close(view, expected, atol=1e-5, rtol=0)


def test_batched_views_accept_float_images_and_are_deterministic_per_generator():
    make_views = BatchedViews(build_view_spec("byol", 32, blur=True))
    images = uint8_images(4, 32)
    a = make_views(images, generator=torch.Generator().manual_seed(3))
    b = make_views(images.float() / 255, generator=torch.Generator().manual_seed(3))
    c = make_views(images, generator=torch.Generator().manual_seed(4))
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=0)
    assert not torch.equal(a[0], c[0])
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        make_views(images[:, :1])


def test_batched_views_need_at_least_one_view():
    with pytest.raises(ValueError, match="at least one view"):
        BatchedViews(ViewSpecs((), num_global_views=0))


# -- each op against torchvision on fixed parameters -------------------------------------


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
@pytest.mark.parametrize(("box", "size"), [((3, 5, 20, 17), 32), ((0, 0, 32, 32), 16), ((4, 4, 10, 12), 24)])
def test_resized_crop_equals_torchvision(interpolation, box, size):
    images = uint8_images(4, 32, seed=1)
    boxes = torch.tensor([box] * 4, dtype=torch.float32)
    ours = resized_crop(images, boxes, size, interpolation=interpolation).clamp(0, 1)
    mode = InterpolationMode(interpolation)
    tensor_ref = TF.resized_crop(images.float() / 255, *box, [size, size], interpolation=mode, antialias=True)
    torch.testing.assert_close(ours, tensor_ref.clamp(0, 1), atol=1e-5, rtol=0)
    # the reference pipeline runs on PIL uint8 images: same up to PIL's rounding
    pil_ref = torch.stack([
        torch.from_numpy(np.array(TF.resized_crop(to_pil(image), *box, [size, size], interpolation=mode,
                                                  antialias=True))).permute(2, 0, 1)
        for image in images
    ]).float() / 255
    assert float((ours - pil_ref).abs().mean()) < 1.5 / 255
    if interpolation == "bilinear":
        assert float((ours - pil_ref).abs().max()) <= 2 / 255


def test_nearest_crop_equals_pil_and_flip_mirrors():
    images = uint8_images(2, 32, seed=2)
    box = (2, 3, 20, 25)
    boxes = torch.tensor([box] * 2, dtype=torch.float32)
    ours = resized_crop(images, boxes, 16, interpolation="nearest")
    pil = torch.stack([torch.from_numpy(np.array(TF.resized_crop(
        to_pil(image), *box, [16, 16], interpolation=InterpolationMode.NEAREST))).permute(2, 0, 1)
        for image in images]).float() / 255
    torch.testing.assert_close(ours, pil, atol=1e-6, rtol=0)
    flipped = resized_crop(images, boxes, 16, interpolation="bicubic", flip=torch.tensor([True, False]))
    plain = resized_crop(images, boxes, 16, interpolation="bicubic")
    torch.testing.assert_close(flipped[0], plain[0].flip(-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(flipped[1], plain[1], atol=0, rtol=0)


def test_several_views_of_one_batch_match_one_view_at_a_time():
    images = uint8_images(3, 24, seed=5)
    boxes = sample_crop_boxes(6, 24, 24, scale=(0.2, 1.0), generator=torch.Generator().manual_seed(0))
    flip = torch.tensor([True, False, True, False, False, True])
    both = resized_crop(images, boxes, 16, flip=flip)
    for view in range(2):
        part = slice(3 * view, 3 * view + 3)
        alone = resized_crop(images, boxes[part], 16, flip=flip[part])
        torch.testing.assert_close(both[part], alone, atol=1e-6, rtol=0)


def test_shrinking_crops_are_antialiased_like_torchvision():
    images = uint8_images(2, 96, seed=3)
    box = (5, 7, 80, 72)
    boxes = torch.tensor([box] * 2, dtype=torch.float32)
    bound = max_box_size(96, 96, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
    ours = resized_crop(images, boxes, 24, interpolation="bicubic", max_box=bound).clamp(0, 1)
    ref = TF.resized_crop(images.float() / 255, *box, [24, 24], interpolation=InterpolationMode.BICUBIC,
                          antialias=True).clamp(0, 1)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


FACTORS = torch.tensor([0.0, 0.3, 0.6, 1.0, 1.2, 1.4, 1.9, 0.9])
HUES = torch.tensor([-0.5, -0.3, -0.1, 0.0, 0.05, 0.2, 0.45, 0.5])


@pytest.mark.parametrize(
    ("ours", "reference", "factors"),
    [
        (colour.adjust_brightness, TF.adjust_brightness, FACTORS),
        (colour.adjust_contrast, TF.adjust_contrast, FACTORS),
        (colour.adjust_saturation, TF.adjust_saturation, FACTORS),
        (colour.adjust_hue, TF.adjust_hue, HUES),
    ],
    ids=["brightness", "contrast", "saturation", "hue"],
)
def test_colour_ops_equal_torchvision(ours, reference, factors):
    images = uint8_images(8, 12, seed=4)
    images[0] = 128  # grey image
    images[1, 1] = images[1, 0]  # red and green tie
    floats = images.float() / 255
    before = floats.clone()
    out = ours(floats, factors)
    assert torch.equal(floats, before)  # the plain forms do not touch their input
    expected = torch.stack([reference(floats[i], float(factors[i])) for i in range(8)])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    # and the PIL uint8 ops of the reference pipeline, up to their rounding
    pil = torch.stack([
        torch.from_numpy(np.array(reference(to_pil(images[i]), float(factors[i])))).permute(2, 0, 1)
        for i in range(8)
    ]).float() / 255
    assert float((out - pil).abs().mean()) <= 2 / 255


def test_grayscale_solarize_and_blur_equal_torchvision():
    floats = uint8_images(6, 16, seed=6).float() / 255
    apply = torch.tensor([True, False, True, True, False, True])
    mask = apply.view(-1, 1, 1, 1)
    torch.testing.assert_close(
        colour.grayscale(floats, apply), torch.where(mask, TF.rgb_to_grayscale(floats, 3), floats),
        atol=1e-6, rtol=0)
    torch.testing.assert_close(
        colour.solarize(floats, 127.5 / 255, apply), torch.where(mask, TF.solarize(floats, 127.5 / 255), floats),
        atol=1e-6, rtol=0)
    # on uint8 values the float threshold 127.5 / 255 is PIL's threshold 128
    pil = torch.stack([torch.from_numpy(np.array(TF.solarize(to_pil(img), 128))).permute(2, 0, 1)
                       for img in (floats * 255).round().to(torch.uint8)]).float() / 255
    torch.testing.assert_close(colour.solarize(floats, 127.5 / 255), pil, atol=1e-6, rtol=0)
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.5, 2.0, 0.7])
    blurred = blur_ops.gaussian_blur(floats, sigma, 7, apply)
    expected = torch.stack([
        TF.gaussian_blur(floats[i], [7, 7], [float(sigma[i])] * 2) if apply[i] else floats[i] for i in range(6)
    ])
    torch.testing.assert_close(blurred, expected, atol=1e-5, rtol=0)


def test_blur_on_non_square_images_and_kernel_limit():
    floats = torch.rand(2, 3, 10, 14, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.8, 1.7])
    expected = torch.stack([TF.gaussian_blur(floats[i], [5, 5], [float(sigma[i])] * 2) for i in range(2)])
    torch.testing.assert_close(blur_ops.gaussian_blur(floats, sigma, 5), expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="larger than"):
        blur_ops.gaussian_blur(floats[..., :2, :2], sigma, 5)


# -- distributions at a fixed seed ---------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "scale", "ratio"),
    [((32, 32), (0.2, 1.0), (3 / 4, 4 / 3)), ((40, 24), (0.08, 1.0), (3 / 4, 4 / 3)),
     ((32, 32), (0.7, 1.0), (0.3, 3.0))],
)
def test_crop_boxes_follow_torchvision_get_params(size, scale, ratio):
    height, width = size
    count = 20_000
    boxes = sample_crop_boxes(count, height, width, scale=scale, ratio=ratio,
                              generator=torch.Generator().manual_seed(0)).numpy().astype(np.float64)
    torch.manual_seed(0)
    image = torch.empty(3, height, width)
    reference = np.array([RandomResizedCrop.get_params(image, list(scale), list(ratio)) for _ in range(count)],
                         dtype=np.float64)
    top, left, h, w = boxes.T
    ref_top, ref_left, ref_h, ref_w = reference.T
    assert same_distribution(h * w / (height * width), ref_h * ref_w / (height * width))  # scale
    assert same_distribution(np.log(w / h), np.log(ref_w / ref_h))  # aspect ratio
    # offsets: uniform over the valid positions
    assert same_distribution(top / np.maximum(height - h, 1), ref_top / np.maximum(height - ref_h, 1))
    assert same_distribution(left / np.maximum(width - w, 1), ref_left / np.maximum(width - ref_w, 1))
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= height).all() and (left + w <= width).all()
    assert (h >= 1).all() and (w >= 1).all() and (h == np.round(h)).all() and (top == np.round(top)).all()
    bound = max_box_size(height, width, scale=scale, ratio=ratio)
    assert boxes[:, 2].max() <= bound[0] and boxes[:, 3].max() <= bound[1]


def test_crop_fallback_is_torchvision_centre_crop():
    # no try can fit an aspect ratio in [2, 3] with the whole area: always the fallback
    boxes = sample_crop_boxes(50, 30, 30, scale=(1.0, 1.0), ratio=(2.0, 3.0))
    expected = RandomResizedCrop.get_params(torch.empty(3, 30, 30), [1.0, 1.0], [2.0, 3.0])
    assert (boxes.numpy() == np.array(expected, dtype=np.float32)).all()


def test_per_sample_rates_match_the_spec():
    make_views = BatchedViews(build_view_spec("byol", 24, blur=True, grayscale_prob=0.3))
    count = 3000
    _, params = make_views(uint8_images(count, 24), generator=torch.Generator().manual_seed(1), return_params=True)
    for view, blur_p, solarize_p in ((0, 1.0, 0.0), (1, 0.1, 0.2)):
        p = params[view]
        assert binomial_ok(int(p.flip.sum()), count, 0.5)
        assert binomial_ok(int(p.jitter.sum()), count, 0.8)
        assert binomial_ok(int(p.grayscale.sum()), count, 0.3)
        assert binomial_ok(int(p.blur.sum()), count, blur_p)
        assert binomial_ok(int(p.solarize.sum()), count, solarize_p)
        applied = p.jitter_factors[p.jitter]
        skipped = p.jitter_factors[~p.jitter]
        assert torch.equal(skipped, torch.tensor([[1.0, 1.0, 1.0, 0.0]]).expand_as(skipped))
        uniform = np.random.default_rng(view).uniform
        for index, (low, high) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)]):
            assert same_distribution(applied[:, index], uniform(low, high, 5000))
        assert same_distribution(p.sigma[p.blur], uniform(0.1, 2.0, 5000))
    # the two views get independent draws
    assert not torch.equal(params[0].flip, params[1].flip)


def test_jitter_order_is_random_over_calls():
    make_views = BatchedViews(build_view_spec("mocov3", 8))
    torch.manual_seed(0)
    orders = {tuple(make_views(uint8_images(2, 8), return_params=True)[1][0].jitter_order) for _ in range(300)}
    assert len(orders) == 24  # every permutation of the four ops shows up


def test_output_colour_statistics_match_the_torchvision_pipeline():
    """Flat-colour images: the views' colours depend only on the colour ops (jitter in
    random order, grayscale, solarisation) and normalisation. The distributions of each
    view's per-image channel means and colourfulness match torchvision's (KS)."""
    count, size = 1500, 16
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (count, 1, 1, 3), dtype=np.uint8)
    pixels = np.ascontiguousarray(np.broadcast_to(colours, (count, size, size, 3)))
    reference = TorchvisionViews(build_view_spec("mocov3", size, hue=0.3))
    torch.manual_seed(0)
    per_image = [reference(Image.fromarray(image)) for image in pixels]
    expected = [torch.stack([views[v] for views in per_image]).mean(dim=(2, 3)) for v in range(2)]
    batched = BatchedViews(reference.spec)
    views = batched(torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(),
                    generator=torch.Generator().manual_seed(0))
    for view, ref in zip(views, expected, strict=True):
        ours = view.mean(dim=(2, 3))
        for channel in range(3):
            assert same_distribution(ours[:, channel], ref[:, channel])
        assert same_distribution(ours.std(dim=1), ref.std(dim=1))  # colourfulness
        standard_error = ((ours.var(0) + ref.var(0)) / count).sqrt()
        assert ((ours.mean(0) - ref.mean(0)).abs() < 4 * standard_error).all()


def test_textured_output_statistics_match_the_torchvision_pipeline():
    """Whole pipeline on the synthetic textures: per-channel mean and std of each view and
    the mean per-image contrast agree with torchvision's within seed-to-seed noise."""
    from resmo.data.textures import SyntheticTextures

    data = SyntheticTextures("train", num_samples=800, image_size=32, seed=0)
    reference = TorchvisionViews(build_view_spec("mocov3", 32))
    torch.manual_seed(0)
    per_image = [reference(data[i][0]) for i in range(len(data))]
    expected = [torch.stack([views[v] for views in per_image]) for v in range(2)]
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()
    views = BatchedViews(reference.spec)(images, generator=torch.Generator().manual_seed(0))
    for ours, ref in zip(views, expected, strict=True):
        assert float((ours.mean(dim=(0, 2, 3)) - ref.mean(dim=(0, 2, 3))).abs().max()) < 0.12
        assert float((ours.std(dim=(0, 2, 3)) - ref.std(dim=(0, 2, 3))).abs().max()) < 0.12
        assert abs(float(ours.std(dim=(1, 2, 3)).mean() - ref.std(dim=(1, 2, 3)).mean())) < 0.08


def test_host_side_draws_follow_the_host_generator():
    """The jitter order is drawn on the host; with a device generator it comes from
    ``host_generator`` so that seeded views stay a pure function of the seeds."""
    make_views = BatchedViews(build_view_spec("mocov3", 8))
    orders = {
        tuple(make_views(uint8_images(2, 8), host_generator=torch.Generator().manual_seed(5),
                     return_params=True)[1][0].jitter_order)
        for _ in range(5)
    }
    assert len(orders) == 1
