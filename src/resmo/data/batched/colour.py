"""Batched colour operations on float images in ``[0, 1]``, one factor per sample.

Each op takes ``images`` ``[N, 3, H, W]`` and per-sample factors ``[N]`` and follows
torchvision's functional op of the same name on float tensors:

- ``adjust_brightness``: ``clamp(b x)``;
- ``adjust_contrast``: blend with the mean of the image's grayscale, ``clamp(c x + (1 - c) m)``;
- ``adjust_saturation``: blend with the per-pixel grayscale, ``clamp(s x + (1 - s) gray)``;
- ``adjust_hue``: shift the HSV hue by ``h`` turns (``h`` in ``[-0.5, 0.5]``), keeping value
  and saturation;
- ``rgb_to_grayscale``: ITU-R 601-2 luma ``0.2989 R + 0.587 G + 0.114 B``;
- ``grayscale``: that luma on all three channels, in the samples flagged;
- ``solarize``: ``1 - x`` where ``x >= threshold``, in the samples flagged.

A factor of 1 (0 for hue) leaves a sample unchanged (up to float rounding for hue), so a
"random apply" sets the factors of the samples that skip an op to identity: every op runs
once over the whole batch, with no gather or scatter.

Each op has an in-place form (``adjust_hue_`` ...) that the view pipeline uses, with
temporaries taken from a :class:`Scratch` that lives as long as its
:class:`~resmo.data.batched.views.BatchedViews`; the plain forms copy their input first. Why: on CPU, where this path must beat per-image torchvision
with its worker processes, a fresh multi-megabyte tensor per step costs page faults (glibc
returns large blocks to the system on free), which took more than half of the time.
Element-wise selections are written as arithmetic (``lerp`` with 0/1 weights, steps from
``sign``) rather than ``torch.where`` with per-pixel masks, which was 10-40x slower per
element than a multiply-add on CPU.
"""

from __future__ import annotations

import torch

from resmo.data.batched.scratch import Scratch
from resmo.data.batched.scratch import temp as _temp

LUMA = (0.2989, 0.587, 0.114)


def _per_sample(factor: torch.Tensor) -> torch.Tensor:
    return factor.reshape(-1, 1, 1, 1)


def rgb_to_grayscale(images: torch.Tensor, *, out: torch.Tensor | None = None) -> torch.Tensor:
    """``[N, 1, H, W]`` luma of ``[N, 3, H, W]`` RGB images (into ``out`` when given)."""
    r, g, b = images.unbind(dim=1)
    if out is None:
        out = torch.empty_like(r).unsqueeze(1)
    luma = out.squeeze(1)
    torch.mul(r, LUMA[0], out=luma)
    luma.add_(g, alpha=LUMA[1]).add_(b, alpha=LUMA[2])
    return out


def _gray(images: torch.Tensor, scratch: Scratch | None) -> torch.Tensor:
    n, _, h, w = images.shape
    return rgb_to_grayscale(images, out=_temp(scratch, "gray", (n, 1, h, w), images))


def adjust_brightness_(images: torch.Tensor, factor: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    return images.mul_(_per_sample(factor)).clamp_(0.0, 1.0)


def adjust_contrast_(images: torch.Tensor, factor: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    mean = _gray(images, scratch).mean(dim=(1, 2, 3), keepdim=True)
    # c x + (1 - c) m, written as x + (1 - c) (m - x)
    return images.lerp_(mean.expand_as(images), _per_sample(1.0 - factor)).clamp_(0.0, 1.0)


def adjust_saturation_(images: torch.Tensor, factor: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    gray = _gray(images, scratch).expand_as(images)
    return images.lerp_(gray, _per_sample(1.0 - factor)).clamp_(0.0, 1.0)


def adjust_hue_(images: torch.Tensor, factor: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    """Rotate the hue of each sample by ``factor`` turns (torchvision ``adjust_hue``).

    Forward, torchvision's ``_rgb_to_hsv`` (Pillow's formula): with ``c = max - min``, the
    hue in sixths of a turn is ``(g - b) / c`` where red is the max, else
    ``(b - r) / c + 2`` where green is, else ``(r - g) / c + 4`` (ties: red, then green).
    Back, the closed form of HSV -> RGB, which needs no per-pixel gather:
    ``x_n = max - c * clamp(2 - |k_n - 2|, 0, 1)``, ``k_n = (n + 6 hue) mod 6``,
    ``n = 5, 3, 1`` for R, G, B. Grey pixels (``c = 0``) come back unchanged.
    """
    n, _, h, w = images.shape
    r, g, b = images.unbind(dim=1)
    maxc, chroma, not_r, not_g, first, second = _temp(scratch, "hue", (6, n, h, w), images).unbind(0)
    torch.maximum(r, g, out=maxc)
    torch.maximum(maxc, b, out=maxc)
    torch.minimum(r, g, out=chroma)
    torch.minimum(chroma, b, out=chroma)
    torch.sub(maxc, chroma, out=chroma)
    torch.sub(maxc, r, out=not_r).sign_()  # 0 where red is the max, else 1
    torch.sub(maxc, g, out=not_g).sign_()
    green = torch.sub(b, r, out=first).add_(chroma, alpha=2.0)  # numerator where green is max
    blue = torch.sub(r, g, out=second).add_(chroma, alpha=4.0)
    green.lerp_(blue, not_g)  # green or blue
    numerator = torch.sub(g, b, out=second).lerp_(green, not_r)  # red, else green or blue
    hue6 = numerator.div_(torch.clamp(chroma, min=1e-12, out=first))  # c = 0: numerator is 0
    # in turns, shifted by factor; + 2 keeps it positive (factor >= -0.5), frac wraps it
    turns = hue6.mul_(1.0 / 6.0).add_(factor.reshape(-1, 1, 1) + 2.0).unsqueeze(1)
    channel = torch.arange(3, device=images.device, dtype=images.dtype)  # no host-to-device copy
    offsets = ((5.0 - 2.0 * channel) / 6.0).reshape(1, 3, 1, 1)  # n = 5, 3, 1 sixths
    weight = torch.add(turns, offsets, out=images)  # r, g, b are not needed any more
    weight.frac_().mul_(6.0).sub_(2.0).abs_().neg_().add_(2.0).clamp_(0.0, 1.0)
    return weight.mul_(chroma.unsqueeze(1)).neg_().add_(maxc.unsqueeze(1))


def grayscale_(images: torch.Tensor, apply: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    """Replace the samples where ``apply`` is true by their luma on all three channels."""
    gray = _gray(images, scratch).expand_as(images)
    return images.lerp_(gray, _per_sample(apply.to(images.dtype)))


def solarize_(
    images: torch.Tensor, threshold: float, apply: torch.Tensor | None = None, scratch: Scratch | None = None
) -> torch.Tensor:
    """``1 - x`` where ``x >= threshold`` (only in samples where ``apply`` is true)."""
    above = torch.sub(images, threshold, out=_temp(scratch, "solarize", images.shape, images))
    above.sign_().add_(1.0).sign_()  # sign(sign(x - t) + 1): 1 where x >= t, else 0
    if apply is not None:
        above.mul_(_per_sample(apply.to(images.dtype)))
    return torch.sub(above, images, out=images).abs_()  # |1 - x| where above, |0 - x| elsewhere


def _copying(inplace):
    def op(images: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return inplace(images.clone(), *args, **kwargs)

    op.__name__ = inplace.__name__.rstrip("_")
    op.__doc__ = f"Like ``{inplace.__name__}``, on a copy of ``images``."
    return op


adjust_brightness = _copying(adjust_brightness_)
adjust_contrast = _copying(adjust_contrast_)
adjust_saturation = _copying(adjust_saturation_)
adjust_hue = _copying(adjust_hue_)
grayscale = _copying(grayscale_)
solarize = _copying(solarize_)

JITTER_OPS = (adjust_brightness_, adjust_contrast_, adjust_saturation_, adjust_hue_)
"""The four ColorJitter ops (in place) in torchvision's numbering (0 brightness ... 3 hue)."""


def color_jitter_(
    images: torch.Tensor,
    factors: list[torch.Tensor | None],
    order: list[int] | torch.Tensor,
    scratch: Scratch | None = None,
) -> torch.Tensor:
    """Apply ``JITTER_OPS`` in place in ``order`` with per-sample ``factors`` (brightness,
    contrast, saturation, hue; ``None`` leaves an op out, as a ColorJitter setting of 0)."""
    for index in [int(i) for i in order]:
        if factors[index] is not None:
            images = JITTER_OPS[index](images, factors[index], scratch)
    return images
