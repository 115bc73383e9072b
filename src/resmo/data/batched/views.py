"""BatchedViews: the views of a whole uint8 batch at once, on the batch's device.

It is built from the declarative :class:`~resmo.data.view_spec.ViewSpecs` that the
torchvision reference pipeline (:class:`resmo.data.views.TorchvisionViews`) is built from
too, so the two paths share one set of option names and defaults (``two_view_spec``,
``multi_crop_spec``, ``build_view_spec``) and cannot drift apart::

    make_views = BatchedViews(build_view_spec("mocov3", 32))
    views = make_views(images)   # images: uint8 [B, 3, H, W]; views: list of float [B, 3, S, S]

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

from dataclasses import dataclass

import torch

from resmo.data.batched.blur import gaussian_blur_
from resmo.data.batched.colour import color_jitter_, grayscale_, solarize_
from resmo.data.batched.geometry import max_box_size, resized_crop, sample_crop_boxes
from resmo.data.batched.scratch import Scratch
from resmo.data.view_spec import Range, ViewSpec, ViewSpecs


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


class BatchedViews:
    """Callable ``uint8 [B, 3, H, W] -> list of float [B, 3, S, S]``: the views of ``spec``
    (see the module doc)."""

    def __init__(self, spec: ViewSpecs) -> None:
        if not spec.views:
            raise ValueError("batched views need at least one view spec")
        self.spec = spec
        self.specs = list(spec.views)
        self.num_global_views = spec.num_global_views
        groups: dict[ViewSpec, list[int]] = {}
        for index, view in enumerate(self.specs):
            groups.setdefault(view.group_key(), []).append(index)
        self.groups = list(groups.values())
        self.scratch = [Scratch() for _ in self.groups]  # reused temporaries, one set per group

    @property
    def num_views(self) -> int:
        return len(self.specs)

    def __repr__(self) -> str:
        views = "\n".join(f"  view {i}: {spec}" for i, spec in enumerate(self.specs))
        return f"BatchedViews(num_views={self.num_views}, num_global_views={self.num_global_views})\n{views}"

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
    source: torch.Tensor, specs: list[ViewSpec], generator, host_generator, return_params: bool,
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
    out = resized_crop(source, boxes, (spec.size, spec.size), flip=flip, interpolation=spec.interpolation,
                       antialias=True, max_box=bound, scratch=scratch)
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
    if spec.blur_kernel and active("blur_prob"):
        blur = _draw(per_sample("blur_prob"), generator)
        sigma = _uniform(count, spec.blur_sigma, device, generator)
        out = gaussian_blur_(out, sigma, spec.blur_kernel, apply=blur, scratch=scratch)
    solar = _draw(per_sample("solarize_prob"), generator) if active("solarize_prob") else off
    if active("solarize_prob"):
        out = solarize_(out, spec.solarize_level, apply=solar, scratch=scratch)
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


class DeviceViews:
    """``(uint8 images, labels, seed)`` on the device -> ``(views, labels)``, made there.

    The batches come from :func:`resmo.data.train_loader.build_train_loader` (``pipeline=
    "batched"``), which the loop moves to the device first. The random draws of a batch come
    from a generator seeded with its ``seed`` (``sample_seed(seed, epoch, first index)``):
    the views are a pure function of the seed and the batch, not of the global RNG, as in
    the torchvision pipeline. With ``channels_last`` the views are written in channels-last
    memory by the last op, the memory format the backbones use (no copy afterwards).
    """

    def __init__(self, views: BatchedViews, *, channels_last: bool = False) -> None:
        self.views = views
        self.channels_last = channels_last

    def __call__(self, batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        images, labels, seed = batch
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        generator = torch.Generator(device=images.device).manual_seed(int(seed))
        host = generator if images.device.type == "cpu" else torch.Generator().manual_seed(int(seed))
        with torch.autocast(images.device.type, enabled=False):  # views in float32
            views = self.views(images, generator=generator, host_generator=host,
                               memory_format=memory_format)
        return views, labels
