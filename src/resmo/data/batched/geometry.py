"""Batched random resized crop and horizontal flip (per-sample parameters, one resample).

:func:`sample_crop_boxes` draws crop boxes exactly as torchvision's
``RandomResizedCrop.get_params`` does, vectorised over samples: up to 10 tries of
``area ~ U(scale) * H * W`` and ``log(aspect) ~ U(log ratio)``, the first box that fits
wins, its offset is uniform over the valid positions, and when no try fits the box falls
back to the largest centred crop with an aspect ratio inside ``ratio``. Widths and heights
are rounded half to even, as Python's ``round``.

:func:`resized_crop` crops and resizes every box of the batch at once. Resizing is
separable, so a crop-and-resize of one sample is ``R_y @ image @ R_x^T`` with ``R_y``
``[S, H]`` and ``R_x`` ``[S, W]`` holding the interpolation weights of each output pixel
(:func:`resample_matrices`); a horizontal flip reverses the rows of ``R_x``. The weights
are PIL's (which torchvision's ``resize(..., antialias=True)`` reproduces on tensors):
triangle or Keys cubic (``a = -0.5``) kernels, stretched by the downscale factor when a
crop shrinks, taps outside the crop dropped and the rest renormalised. So the result
equals torchvision's ``resized_crop`` on float tensors to float precision, and PIL's on
uint8 images to about 1/255 (PIL rounds between its two passes).

Why not ``grid_sample`` (or ``roi_align``): both sample the whole image, so the pixels next
to a crop leak into its border (torchvision crops first, then resizes), and neither has
an antialias filter for crops that shrink. Matrices give the exact crop-then-resize
semantics, any kernel, antialias and flips in one batched ``matmul`` per axis; at 32 px on
a CPU they are about as fast as bicubic ``grid_sample``, and on a GPU they run on the
matrix units.
"""

from __future__ import annotations

import math

import torch

from resmo.data.batched.scratch import Scratch
from resmo.data.batched.scratch import temp as _temp

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
TRIES = 10


def _uniform(shape, low: float, high: float, *, device, generator) -> torch.Tensor:
    return torch.rand(shape, device=device, generator=generator) * (high - low) + low


def sample_crop_boxes(
    count: int,
    height: int,
    width: int,
    *,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``count`` crop boxes ``[count, 4]`` (float, integer-valued): ``top, left, h, w``."""
    area = float(height * width)
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    target = area * _uniform((count, TRIES), *scale, device=device, generator=generator)
    aspect = torch.exp(_uniform((count, TRIES), *log_ratio, device=device, generator=generator))
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first try that fits (0 if none)
    w, h = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    found = fits.any(dim=1)

    fallback_h, fallback_w = _fallback(height, width, ratio)
    w = torch.where(found, w, torch.full_like(w, fallback_w))
    h = torch.where(found, h, torch.full_like(h, fallback_h))

    # offsets uniform over the (height - h + 1) x (width - w + 1) valid positions
    u = torch.rand((2, count), device=device, generator=generator)
    top = torch.minimum(torch.floor(u[0] * (height - h + 1)), height - h)
    left = torch.minimum(torch.floor(u[1] * (width - w + 1)), width - w)
    top = torch.where(found, top, torch.div(height - h, 2, rounding_mode="floor"))
    left = torch.where(found, left, torch.div(width - w, 2, rounding_mode="floor"))
    return torch.stack([top, left, h, w], dim=1)


def _fallback(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """torchvision's box when no try fits: the whole image, or a centred crop clipped to
    the ratio range. Returns ``(h, w)``."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        return int(round(width / min(ratio))), width
    if in_ratio > max(ratio):
        return height, int(round(height * max(ratio)))
    return height, width


def max_box_size(
    height: int, width: int, *, scale: tuple[float, float], ratio: tuple[float, float]
) -> tuple[int, int]:
    """An upper bound on the ``(h, w)`` of boxes :func:`sample_crop_boxes` returns."""
    area = scale[1] * height * width
    fallback_h, fallback_w = _fallback(height, width, ratio)
    h = min(height, math.ceil(math.sqrt(area / min(ratio))))
    w = min(width, math.ceil(math.sqrt(area * max(ratio))))
    return max(h, fallback_h), max(w, fallback_w)


def _bicubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    x = x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return torch.where(x < 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def _triangle(x: torch.Tensor) -> torch.Tensor:
    return (1 - x.abs()).clamp_(min=0)


def resample_matrices(
    start: torch.Tensor, length: torch.Tensor, size: int, source: int, *,
    interpolation: str = "bicubic", antialias: bool = True, flip: torch.Tensor | None = None,
    max_length: float | None = None,
) -> torch.Tensor:
    """``[N, size, source]`` matrices that crop ``[start, start + length)`` out of a signal
    of ``source`` samples and resize it to ``size`` samples, as PIL's ``resize`` (and
    torchvision's antialiased ``resize``) computes them: output ``o`` is centred at
    ``start + (o + 0.5) * scale``, ``scale = length / size``; the kernel (triangle or
    Keys cubic with ``a = -0.5``) is stretched by ``scale`` when shrinking (antialias);
    taps outside the crop are dropped and the rest renormalised. ``flip`` reverses the
    output order of the flagged samples. ``max_length`` bounds ``length`` (default
    ``source``) and sets how many taps per output are evaluated.
    """
    dtype = start.dtype if start.is_floating_point() else torch.float32
    device = start.device
    start, length = start.to(dtype).reshape(-1, 1, 1), length.to(dtype).reshape(-1, 1, 1)
    scale = length / size
    out = torch.arange(size, device=device, dtype=dtype).reshape(1, -1, 1)
    if flip is not None:
        out = torch.where(flip.reshape(-1, 1, 1), size - 1 - out, out)
    centre = start + (out + 0.5) * scale  # [N, size, 1]
    matrices = torch.zeros(start.shape[0], size, source, device=device, dtype=dtype)
    if interpolation == "nearest":  # PIL: the input pixel under the output pixel's centre
        index = torch.minimum(torch.floor(centre), start + length - 1).long()
        return matrices.scatter_(2, index, 1.0)
    support = 2.0 if interpolation == "bicubic" else 1.0
    bound = float(source if max_length is None else max_length) / size
    reach = support * (max(1.0, bound) if antialias else 1.0)
    taps = int(math.ceil(2 * reach)) + 1  # enough taps for the widest kernel
    first = torch.floor(centre - reach)
    index = first + torch.arange(taps, device=device, dtype=dtype)  # [N, size, taps]
    stretch = scale.clamp(min=1.0) if antialias else torch.ones_like(scale)
    kernel = _bicubic if interpolation == "bicubic" else _triangle
    weights = kernel((index + 0.5 - centre) / stretch)
    weights = weights * ((index >= start) & (index < start + length))  # drop taps outside the crop
    weights = weights / weights.sum(dim=2, keepdim=True)
    return matrices.scatter_add_(2, index.clamp(0, source - 1).long(), weights)


def resized_crop(
    images: torch.Tensor,
    boxes: torch.Tensor,
    size: int | tuple[int, int],
    *,
    flip: torch.Tensor | None = None,
    interpolation: str = "bicubic",
    antialias: bool = True,
    max_box: tuple[int, int] | None = None,
    scratch: Scratch | None = None,
) -> torch.Tensor:
    """Crop ``boxes`` out of ``images``, resize each crop to ``size`` and mirror the samples
    where ``flip`` is true, as two batched matrix products ``R_y @ image @ R_x^T`` (see
    :func:`resample_matrices`). Returns float32 in ``[0, 1]`` for uint8 ``images`` (the
    ``1 / 255`` is folded into ``R_y``); bicubic output is not clamped (the caller does).

    ``images`` ``[B, C, H, W]``; ``boxes`` ``[V * B, 4]`` (top, left, h, w) for ``V``
    views of the same images, view-major: the result is ``[V * B, C, S, S]``. The row
    matrices of all views of an image are stacked, so each image is read once by one
    matrix product. ``max_box`` (``h, w``), a bound on the box sizes such as
    :func:`max_box_size`, sets how many taps the antialias kernels need (default: the
    whole image). Intermediates come from ``scratch`` when given; the result is new.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    batch, channels, height, width = images.shape
    views = boxes.shape[0] // batch
    dtype = images.dtype if images.is_floating_point() else torch.float32
    max_h, max_w = (height, width) if max_box is None else max_box
    top, left, h, w = boxes.to(dtype).unbind(dim=1)
    # rows in image-major order, so that all views' rows of image b are one [V * S, H] block
    image_major = torch.arange(views * batch, device=boxes.device).reshape(views, batch).t().reshape(-1)
    rows = resample_matrices(top[image_major], h[image_major], out_h, height,
                             interpolation=interpolation, antialias=antialias, max_length=max_h)
    columns = resample_matrices(left, w, out_w, width, interpolation=interpolation,
                                antialias=antialias, flip=flip, max_length=max_w)
    if not images.is_floating_point():
        rows = rows.mul_(1.0 / 255.0)
    # [B, V * S, H] @ image b as [H, C * W] -> [B, V * S, C * W]
    rows = rows.reshape(batch, views * out_h, height)
    like = rows
    flat = _temp(scratch, "crop_in", (batch, height, channels, width), like)
    flat.copy_(images.permute(0, 2, 1, 3))  # one pass: layout and dtype together
    tall = _temp(scratch, "crop_rows", (batch, views * out_h, channels * width), like)
    torch.matmul(rows, flat.reshape(batch, height, channels * width), out=tall)
    # -> [V * B, C * S, W] (view-major, channel-major), then the columns: [V * B, C * S, S]
    ordered = _temp(scratch, "crop_ordered", (views, batch, channels, out_h, width), like)
    ordered.copy_(tall.reshape(batch, views, out_h, channels, width).permute(1, 0, 3, 2, 4))
    out = torch.matmul(ordered.reshape(views * batch, channels * out_h, width), columns.transpose(-1, -2))
    return out.reshape(views * batch, channels, out_h, out_w)
