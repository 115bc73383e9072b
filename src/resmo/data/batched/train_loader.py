"""The training loader of the ``batched`` pipeline: shuffled uint8 batches for views made
on the device.

It yields ``(uint8 images [B, 3, H, W], labels [B], seed)``: in-memory datasets (synthetic,
CIFAR, STL-10) as one gather per batch from a uint8 tensor in the main process; image
folders decoded and resized by DataLoader workers (:mod:`resmo.data.batched.loader`). The
order comes from the same :class:`~resmo.data.sampling.EpochShuffleSampler` as the
torchvision path, so it is a pure function of ``(seed, epoch)`` and resumes mid-epoch,
and each process of a DDP run reads its own share. ``seed`` is
``sample_seed(seed, epoch, first index)``: the device draws the batch's views from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from resmo.data.batched.loader import DecodedImages, TensorImages, in_memory_images
from resmo.data.sampling import EpochShuffleSampler, ResumableLoader, sample_seed


class SeededUint8Samples(Dataset):
    """Keys ``(epoch, index)`` (from :class:`EpochShuffleSampler`) to uint8 samples.

    ``self[key]`` is ``(uint8 [3, H, W], label, seed)``; ``__getitems__`` returns a whole
    batch ``(uint8 [B, 3, H, W], labels [B], seed)`` in one gather when the images are in
    memory (:class:`TensorImages`), else the list of samples for :func:`collate_uint8`.
    A batch's seed is the one of its first key.
    """

    def __init__(self, base: TensorImages | DecodedImages, *, seed: int = 0) -> None:
        self.base = base
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.base)

    @staticmethod
    def _split(key) -> tuple[int, int]:
        return (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (0, int(key))

    def __getitem__(self, key) -> tuple[torch.Tensor, int, int]:
        epoch, index = self._split(key)
        image, label = self.base[index]
        return image, int(label), sample_seed(self.seed, epoch, index)

    def __getitems__(self, keys: list):
        if not isinstance(self.base, TensorImages):
            return [self[key] for key in keys]
        split = [self._split(key) for key in keys]
        images, labels = self.base.__getitems__([index for _, index in split])
        return images, labels, sample_seed(self.seed, *split[0])


def collate_uint8(batch):
    """A gathered batch passes through; a list of samples is stacked."""
    if isinstance(batch, tuple):
        return batch
    images = torch.stack([sample[0] for sample in batch])
    labels = torch.tensor([sample[1] for sample in batch], dtype=torch.int64)
    return images, labels, batch[0][2]


def batched_train_loader(dataset: Dataset, *, image_size: int, batch_size: int, seed: int,
                         workers: int, worker_init_fn: Callable[[int], None] | None = None) -> ResumableLoader:
    """The ``data.pipeline: batched`` train loader for a dataset of ``(PIL image, label)``.

    In-memory datasets are read in the main process (``workers`` is ignored: one gather
    per batch is faster than shipping batches between processes); others are decoded to
    ``image_size`` squares by ``workers`` processes, kept between epochs (decoding draws
    nothing at random; see resmo.data.sampling on why kept workers change no view).
    """
    in_memory = in_memory_images(dataset)
    base = in_memory if in_memory is not None else DecodedImages(dataset, image_size)
    workers = 0 if in_memory is not None else workers
    return ResumableLoader(
        SeededUint8Samples(base, seed=seed), sampler=EpochShuffleSampler(len(base), seed=seed),
        batch_size=batch_size, num_workers=workers, collate_fn=collate_uint8,
        pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
        worker_init_fn=worker_init_fn if workers else None,
        generator=torch.Generator().manual_seed(seed),  # iterating leaves the global RNG alone
    )


def is_uint8_batch(batch: Any) -> bool:
    return (isinstance(batch, (tuple, list)) and len(batch) == 3 and isinstance(batch[0], torch.Tensor)
            and batch[0].dtype == torch.uint8)
