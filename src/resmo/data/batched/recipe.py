"""BatchedViewRecipe: the views of a whole uint8 batch at once, on the batch's device.

It is built from a torchvision :class:`~resmo.data.views.ViewRecipe` (the reference
pipeline, see :mod:`resmo.data.views`), reading each view's settings off its transforms, so
the two paths share one set of option names and defaults (``two_view_recipe``,
``multi_crop_recipe``, ``build_view_recipe``) and cannot drift apart::

    recipe = BatchedViewRecipe.from_view_recipe(build_view_recipe("mocov3", 32))
    views = recipe(images)   # images: uint8 [B, 3, H, W]; views: list of float [B, 3, S, S]

Per view, in torchvision's order and with per-sample randomness: random resized crop and
horizontal flip (:mod:`.geometry`), colour jitter with probability ``jitter_prob``,
grayscale, Gaussian blur (:mod:`.blur`), solarisation (:mod:`.colour`), then normalisation.

Views that differ only in their probabilities (the two asymmetric views of BYOL / MoCo v3,
DINO's local crops) run as one batch of ``views x B`` samples, with per-sample
probabilities. Random numbers come from ``generator`` (or the global RNG of the device),
and nothing is read back from the device while views are made (no GPU sync).

One documented difference from torchvision's ``ColorJitter``: torchvision applies the four
jitter ops in a random order per image; here the order is drawn once per call and shared
by the views made together (the factors are drawn per sample). Over many batches the
factors, the application rate and the orders follow torchvision's distributions; within
one batch the order is common.

Why not ``kornia.augmentation`` (measured first, as DESIGN.md asks): it has the same
per-sample ops and, in kornia 0.9, torchvision's crop-box sampler, but (1) on the 2-core CPU
of the benchmark it made the two 32 px views of a batch 4-5x slower than this code
(2 900-4 400 vs 15 700-16 900 images/s over two runs, 1 thread, batches of 256,
``benchmarks/view_generation.py --kornia``), and (2)
its crop-and-resize maps corner pixel centres (``align_corners=True``), not pixel areas as
torchvision / PIL do: on a fixed box its bilinear crop differs from torchvision's
``resized_crop`` by 0.04 on average (in ``[0, 1]``), against 1e-7 here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from resmo.data.batched.blur import gaussian_blur_
from resmo.data.batched.colour import color_jitter_, grayscale_, solarize_
from resmo.data.batched.geometry import max_box_size, resized_crop, sample_crop_boxes
from resmo.data.batched.scratch import Scratch

Range = tuple[float, float]


@dataclass(frozen=True)
class BatchedViewSpec:
    """One view's settings, as read off a torchvision view pipeline.

    Ranges are torchvision's: jitter factor ranges (``None`` = op off), hue in turns,
    ``blur_kernel_size`` 0 = no blur, ``solarize_threshold`` on the ``[0, 1]`` scale.
    """

    size: tuple[int, int]
    scale: Range = (0.08, 1.0)
    ratio: Range = (3 / 4, 4 / 3)
    interpolation: str = "bilinear"
    antialias: bool = True
    brightness: Range | None = None
    contrast: Range | None = None
    saturation: Range | None = None
    hue: Range | None = None
    blur_kernel_size: int = 0
    blur_sigma: Range = (0.1, 2.0)
    solarize_threshold: float = 0.5
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    flip_prob: float = 0.0
    jitter_prob: float = 0.0
    grayscale_prob: float = 0.0
    blur_prob: float = 0.0
    solarize_prob: float = 0.0

    PROBABILITIES = ("flip_prob", "jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob")

    def group_key(self) -> BatchedViewSpec:
        """The spec without its probabilities: views with equal keys run as one batch."""
        return dataclasses.replace(self, **{name: 0.0 for name in self.PROBABILITIES})

    @property
    def jitter_ranges(self) -> list[Range | None]:
        return [self.brightness, self.contrast, self.saturation, self.hue]


@dataclass
class ViewParams:
    """What was drawn for each sample of one view (for tests and debugging).

    ``boxes`` ``[B, 4]`` (top, left, h, w in source pixels); boolean masks ``flip``,
    ``jitter``, ``grayscale``, ``blur``, ``solarize``; ``jitter_factors`` ``[B, 4]``
    (brightness, contrast, saturation, hue; identity where not jittered or the op is off);
    ``jitter_order`` (op indices, shared by the batch); ``sigma`` ``[B]``.
    """

    boxes: torch.Tensor
    flip: torch.Tensor
    jitter: torch.Tensor
    jitter_factors: torch.Tensor
    jitter_order: list[int]
    grayscale: torch.Tensor
    blur: torch.Tensor
    sigma: torch.Tensor
    solarize: torch.Tensor


def _pair(value) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def spec_from_transform(view: v2.Compose) -> BatchedViewSpec:
    """Read a view pipeline built by :mod:`resmo.data.views` into a :class:`BatchedViewSpec`.

    Raises ``ValueError`` naming a transform the batched path has no counterpart for.
    """
    options: dict = {}
    for step in view.transforms:
        inner = step.transforms if isinstance(step, v2.RandomApply) else [step]
        p = step.p if isinstance(step, v2.RandomApply) else getattr(step, "p", 1.0)
        if len(inner) != 1:
            raise ValueError(f"batched views support RandomApply of one transform, got {step}")
        (t,) = inner
        if isinstance(t, v2.RandomResizedCrop):
            options.update(
                size=tuple(int(s) for s in t.size), scale=_pair(t.scale), ratio=_pair(t.ratio),
                interpolation=getattr(t.interpolation, "value", t.interpolation), antialias=bool(t.antialias),
            )
        elif isinstance(t, v2.RandomHorizontalFlip):
            options["flip_prob"] = float(p)
        elif isinstance(t, v2.ColorJitter):
            options.update(
                brightness=_pair(t.brightness), contrast=_pair(t.contrast),
                saturation=_pair(t.saturation), hue=_pair(t.hue), jitter_prob=float(p),
            )
        elif isinstance(t, v2.RandomGrayscale):
            options["grayscale_prob"] = float(p)
        elif isinstance(t, v2.GaussianBlur):
            if t.kernel_size[0] != t.kernel_size[1]:
                raise ValueError(f"batched views need a square blur kernel, got {t.kernel_size}")
            options.update(blur_kernel_size=int(t.kernel_size[0]), blur_sigma=_pair(t.sigma), blur_prob=float(p))
        elif isinstance(t, v2.RandomSolarize):
            # the reference runs on uint8 PIL images: x >= 128 there is x >= 127.5 / 255 in
            # floats (values between round up to 128); thresholds <= 1 are already floats
            threshold = float(t.threshold)
            options.update(
                solarize_threshold=(threshold - 0.5) / 255 if threshold > 1 else threshold,
                solarize_prob=float(p),
            )
        elif isinstance(t, v2.Normalize):
            options.update(mean=tuple(float(m) for m in t.mean), std=tuple(float(s) for s in t.std))
        elif isinstance(t, (v2.ToImage, v2.ToDtype, v2.PILToTensor)):
            continue
        else:
            raise ValueError(f"the batched view path has no counterpart for {type(t).__name__}")
    if "size" not in options:
        raise ValueError("a view pipeline must start with RandomResizedCrop for the batched path")
    return BatchedViewSpec(**options)


class BatchedViewRecipe:
    """Callable ``uint8 [B, 3, H, W] -> list of float [B, 3, S, S]`` views (see module doc)."""

    def __init__(self, specs: Sequence[BatchedViewSpec], *, num_global_views: int | None = None) -> None:
        if not specs:
            raise ValueError("a batched view recipe needs at least one view")
        self.specs = list(specs)
        self.num_global_views = len(self.specs) if num_global_views is None else num_global_views
        groups: dict[BatchedViewSpec, list[int]] = {}
        for index, spec in enumerate(self.specs):
            groups.setdefault(spec.group_key(), []).append(index)
        self.groups = list(groups.values())
        self.scratch = [Scratch() for _ in self.groups]  # reused temporaries, one set per group

    @classmethod
    def from_view_recipe(cls, recipe) -> BatchedViewRecipe:
        """The batched twin of a torchvision :class:`~resmo.data.views.ViewRecipe`."""
        cache: dict[int, BatchedViewSpec] = {}
        specs = [cache.setdefault(id(t), spec_from_transform(t)) for t in recipe.transforms]
        return cls(specs, num_global_views=getattr(recipe, "num_global_views", None))

    @property
    def num_views(self) -> int:
        return len(self.specs)

    def __repr__(self) -> str:
        views = "\n".join(f"  view {i}: {spec}" for i, spec in enumerate(self.specs))
        return f"BatchedViewRecipe(num_views={self.num_views}, num_global_views={self.num_global_views})\n{views}"

    @torch.no_grad()
    def __call__(
        self,
        images: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        host_generator: torch.Generator | None = None,
        return_params: bool = False,
        memory_format: torch.memory_format = torch.contiguous_format,
    ):
        """Views of ``images`` (uint8 ``[B, 3, H, W]``, or float in ``[0, 1]``), on their device.

        ``memory_format``: that of the views (e.g. ``torch.channels_last`` for backbones in
        channels-last memory): the last op (normalisation) writes them in it, no extra copy.

        Per-sample draws come from ``generator`` (on the images' device; default: that
        device's global RNG). The few draws made on the host (the jitter order, which
        Python needs without waiting for the device) come from ``generator`` when it is a
        CPU generator, else from ``host_generator`` (default: the global CPU RNG).
        ``return_params=True`` also returns one :class:`ViewParams` per view.
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape [B, 3, H, W], got {list(images.shape)}")
        source = images if images.dtype == torch.uint8 else images.float()
        if generator is not None and generator.device.type == "cpu":
            host_generator = generator
        views: list[torch.Tensor | None] = [None] * self.num_views
        params: list[ViewParams | None] = [None] * self.num_views
        for members, scratch in zip(self.groups, self.scratch, strict=True):
            outputs, drawn = _make_group(
                source, [self.specs[i] for i in members], generator, host_generator, return_params, scratch,
                memory_format,
            )
            for position, index in enumerate(members):
                views[index] = outputs[position]
                params[index] = drawn[position] if return_params else None
        return (views, params) if return_params else views


def _uniform(count: int, bounds: Range, device, generator) -> torch.Tensor:
    return torch.rand(count, device=device, generator=generator) * (bounds[1] - bounds[0]) + bounds[0]


def _draw(probabilities: torch.Tensor, generator) -> torch.Tensor:
    return torch.rand(probabilities.shape, device=probabilities.device, generator=generator) < probabilities


def _make_group(
    source: torch.Tensor, specs: list[BatchedViewSpec], generator, host_generator, return_params: bool,
    scratch: Scratch, memory_format: torch.memory_format = torch.contiguous_format,
):
    """All views of one group: ``len(specs) x B`` samples through every op at once."""
    spec, batch, device = specs[0], source.shape[0], source.device
    count = batch * len(specs)
    height, width = source.shape[-2:]

    def per_sample(name: str) -> torch.Tensor:  # built on the device: no host-to-device copy
        return torch.cat([torch.full((batch,), float(getattr(s, name)), device=device) for s in specs])

    def active(name: str) -> bool:
        return any(getattr(s, name) > 0 for s in specs)

    boxes = sample_crop_boxes(count, height, width, scale=spec.scale, ratio=spec.ratio,
                              device=device, generator=generator)
    flip = _draw(per_sample("flip_prob"), generator)
    bound = max_box_size(height, width, scale=spec.scale, ratio=spec.ratio)
    out = resized_crop(source, boxes, spec.size, flip=flip, interpolation=spec.interpolation,
                       antialias=spec.antialias, max_box=bound, scratch=scratch)
    if spec.interpolation == "bicubic":  # PIL clips the overshoot of cubic interpolation
        out.clamp_(0.0, 1.0)

    off = torch.zeros(count, dtype=torch.bool, device=device)
    identity = (1.0, 1.0, 1.0, 0.0)
    jitter, order, factors = off, list(range(4)), [None] * 4
    if active("jitter_prob") and any(r is not None for r in spec.jitter_ranges):
        jitter = _draw(per_sample("jitter_prob"), generator)
        # one order per call; torchvision draws one per image (see the module docstring)
        order = torch.randperm(4, generator=host_generator).tolist()
        for index, bounds in enumerate(spec.jitter_ranges):
            if bounds is not None:
                drawn = _uniform(count, bounds, device, generator)
                factors[index] = torch.where(jitter, drawn, torch.full_like(drawn, identity[index]))
        out = color_jitter_(out, factors, order, scratch)
    gray = _draw(per_sample("grayscale_prob"), generator) if active("grayscale_prob") else off
    if active("grayscale_prob"):
        out = grayscale_(out, gray, scratch)
    blur, sigma = off, torch.zeros(count, device=device)
    if spec.blur_kernel_size and active("blur_prob"):
        blur = _draw(per_sample("blur_prob"), generator)
        sigma = _uniform(count, spec.blur_sigma, device, generator)
        out = gaussian_blur_(out, sigma, spec.blur_kernel_size, apply=blur, scratch=scratch)
    solar = _draw(per_sample("solarize_prob"), generator) if active("solarize_prob") else off
    if active("solarize_prob"):
        out = solarize_(out, spec.solarize_threshold, apply=solar, scratch=scratch)
    normalised = torch.empty_like(out, memory_format=memory_format)
    for channel in range(3):  # Python scalars: no host-to-device copy
        torch.sub(out[:, channel], spec.mean[channel], out=normalised[:, channel])
        normalised[:, channel].div_(spec.std[channel])
    outputs = list(normalised.split(batch))
    if not return_params:
        return outputs, None

    full = torch.stack([f if f is not None else torch.full((count,), identity[i], device=device)
                        for i, f in enumerate(factors)], dim=1)
    drawn = []
    for v in range(len(specs)):
        part = slice(v * batch, (v + 1) * batch)
        drawn.append(ViewParams(
            boxes=boxes[part], flip=flip[part], jitter=jitter[part], jitter_factors=full[part],
            jitter_order=order, grayscale=gray[part], blur=blur[part], sigma=sigma[part],
            solarize=solar[part],
        ))
    return outputs, drawn
