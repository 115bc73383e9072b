"""uint8 images for the batched pipeline, read by :func:`resmo.data.train_loader.build_train_loader`.

- In-memory datasets (the built-in synthetic textures, torchvision CIFAR-10/100 and
  STL-10, which hold their decoded pixels as one uint8 array) become a
  :class:`TensorImages`: one uint8 tensor, read a whole batch at a time by a single
  gather in the main process (``__getitems__``), no workers, no per-image Python.
- Any other dataset of ``(PIL image, label)`` (image folders) is wrapped in
  :class:`DecodedImages`: DataLoader workers decode each image, resize its short side to
  ``size`` and centre-crop it to ``size x size`` uint8.

Folder images are decoded to ``size x size`` (the global view size), so random crops
resample from that image rather than from the full-resolution file: crops only upsample,
and the edges a centre crop cuts off non-square images are never seen.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from resmo.data.views import EvalDataset


class TensorImages(Dataset):
    """uint8 ``images`` ``[N, 3, H, W]`` and int64 ``labels`` ``[N]`` held in memory."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images [N, 3, H, W], got {images.dtype} {list(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"got {images.shape[0]} images but labels of shape {list(labels.shape)}")
        self.images = images
        self.labels = labels.to(torch.int64)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch in one gather (DataLoader calls this with the batch's indices)."""
        index = torch.as_tensor(indices, dtype=torch.int64)
        return self.images[index], self.labels[index]


def _as_tensor(array) -> torch.Tensor:
    return array if isinstance(array, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(array))


def in_memory_images(dataset) -> TensorImages | None:
    """``dataset``'s pixels as :class:`TensorImages` when it holds them as one uint8 array
    (``images`` or ``data``, ``[N, H, W, 3]`` or ``[N, 3, H, W]``) with ``targets`` or
    ``labels`` and no ``transform`` of its own; else ``None``."""
    if getattr(dataset, "transform", None) is not None:
        return None
    for name in ("images", "data"):
        array = getattr(dataset, name, None)
        if not isinstance(array, (np.ndarray, torch.Tensor)) or array.ndim != 4:
            continue
        images = _as_tensor(array)
        if images.dtype != torch.uint8:
            continue
        if images.shape[-1] == 3:
            images = images.permute(0, 3, 1, 2).contiguous()  # NHWC (CIFAR, synthetic) -> NCHW
        elif images.shape[1] != 3:
            continue
        for label_name in ("targets", "labels"):
            labels = getattr(dataset, label_name, None)
            if labels is not None and len(labels) == images.shape[0]:
                return TensorImages(images, torch.as_tensor(np.asarray(labels), dtype=torch.int64))
    return None


def decode_to_size(image: Image.Image, size: int) -> torch.Tensor:
    """Resize the short side of ``image`` to ``size`` (bicubic, antialiased), centre-crop
    ``size x size``, return uint8 ``[3, size, size]``."""
    image = image.convert("RGB")
    width, height = image.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.BICUBIC, reducing_gap=3.0)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).contiguous()


class DecodedImages(EvalDataset):
    """``(uint8 [3, size, size], label)`` from a dataset of ``(PIL image, label)``."""

    def __init__(self, base: Dataset, size: int) -> None:
        super().__init__(base, partial(decode_to_size, size=size))  # a partial: workers can pickle it
        self.size = size

