"""Batched Gaussian blur with one sigma per sample (torchvision ``GaussianBlur`` semantics).

torchvision blurs with a separable kernel ``k_t ~ exp(-t^2 / (2 sigma^2))``,
``t = -(K-1)/2 .. (K-1)/2``, normalised to sum 1, on a copy of the image padded by
reflection (``K // 2`` pixels). A per-sample separable blur is a pair of matrix products,

    out = B_h(sigma) @ image @ B_w(sigma)^T,

with ``B_n`` the ``[n, n]`` matrix of the 1-D blur of a length-``n`` signal: row ``i``
holds the kernel at columns ``reflect(i + t)``, so the reflection padding is folded into
the matrix. One batched ``matmul`` per axis then blurs every sample with its own sigma
(no grouping into sigma bins, no grouped convolution) at the cost of ``O(n)`` instead of
``O(K)`` multiply-adds per pixel, which dense matrix units absorb easily at SSL image
sizes. A sample that is not blurred gets the identity matrix.
"""

from __future__ import annotations

import torch

from resmo.data.batched.scratch import Scratch
from resmo.data.batched.scratch import temp as _temp


def gaussian_kernels(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """``[N, kernel_size]`` normalised 1-D Gaussian kernels, one per sigma."""
    half = (kernel_size - 1) / 2
    t = torch.arange(kernel_size, device=sigma.device, dtype=sigma.dtype) - half
    return torch.softmax(-(t**2) / (2 * sigma.reshape(-1, 1) ** 2), dim=1)


def reflect_index(length: int, kernel_size: int, device=None) -> torch.Tensor:
    """``[length, kernel_size]``: the input index each kernel tap of each output reads,
    with reflection at the borders (``torch.nn.functional.pad(mode="reflect")``)."""
    half = kernel_size // 2
    if half >= length:
        raise ValueError(
            f"blur kernel of {kernel_size} px needs images larger than {half} px, got {length}"
        )
    index = torch.arange(length, device=device).reshape(-1, 1) + torch.arange(kernel_size, device=device) - half
    index = torch.where(index < 0, -index, index)
    return torch.where(index >= length, 2 * (length - 1) - index, index)


def blur_matrices(kernels: torch.Tensor, length: int) -> torch.Tensor:
    """``[N, length, length]`` matrices applying ``kernels`` ``[N, K]`` along one axis."""
    count, size = kernels.shape
    index = reflect_index(length, size, kernels.device).expand(count, length, size)
    matrices = kernels.new_zeros(count, length, length)
    return matrices.scatter_add_(2, index, kernels.unsqueeze(1).expand(count, length, size))


def gaussian_blur_(
    images: torch.Tensor,
    sigma: torch.Tensor,
    kernel_size: int,
    apply: torch.Tensor | None = None,
    scratch: Scratch | None = None,
) -> torch.Tensor:
    """Blur each sample of ``images`` ``[N, C, H, W]`` in place with its ``sigma`` ``[N]``;
    samples where ``apply`` is false are left as they are."""
    kernels = gaussian_kernels(sigma.to(images.dtype), kernel_size)
    if apply is not None:  # identity kernel (a centred delta) for samples left alone
        delta = torch.zeros_like(kernels)
        delta[:, kernel_size // 2] = 1.0
        kernels = torch.lerp(delta, kernels, apply.to(kernels.dtype).reshape(-1, 1))
    height, width = images.shape[-2:]
    rows = blur_matrices(kernels, height).unsqueeze(1)
    columns = rows if height == width else blur_matrices(kernels, width).unsqueeze(1)
    half = torch.matmul(rows, images, out=_temp(scratch, "blur", images.shape, images))
    return torch.matmul(half, columns.transpose(-1, -2), out=images)


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, kernel_size: int,
                  apply: torch.Tensor | None = None) -> torch.Tensor:
    """Like :func:`gaussian_blur_`, on a copy of ``images``."""
    return gaussian_blur_(images.clone(), sigma, kernel_size, apply)
