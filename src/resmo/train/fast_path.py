"""Keeping the accelerator busy: the batched view pipeline in training, and backbone speed settings.

``data.pipeline: batched`` (``auto``, the default, picks it for the synthetic dataset only):

- the train loader yields ``(uint8 images [B, 3, H, W], labels [B], seed)``:
  in-memory datasets (synthetic, CIFAR, STL-10) as one gather per batch from a uint8
  tensor in the main process; image folders decoded and resized by the DataLoader
  workers (see :mod:`resmo.data.batched.loader`). The order comes from the same
  :class:`~resmo.train.sampling.EpochShuffleSampler` as the torchvision path, so it is a
  pure function of ``(seed, epoch)`` and resumes mid-epoch, and each process of a DDP run
  reads its own share;
- :class:`DeviceViews` makes the views on the training device, in
  ``PretrainModule.on_after_batch_transfer`` (Lightning calls it after moving the batch),
  so ``training_step`` still receives ``(views, labels)``. The random draws of a batch
  come from a generator seeded with ``sample_seed(seed, epoch, first index)``: the views
  are a pure function of the seed and the batch, not of the global RNG, as in the
  torchvision path.

``train.channels_last`` and ``train.compile`` (both off by default) apply to the student
and teacher backbones (:func:`apply_backbone_settings`); views then arrive in channels-last
memory too. bf16 autocast is ``train.precision: bf16-mixed`` (Lightning).
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from resmo.data.batched import BatchedViewRecipe, DecodedImages, TensorImages, in_memory_images
from resmo.train.interrupt import worker_ignores_stop_signals
from resmo.train.sampling import EpochShuffleSampler, ResumableLoader, sample_seed


def chosen_pipeline(pipeline: str, data_name: str) -> str:
    """``data.pipeline`` with ``auto`` decided: ``batched`` for the in-memory ``synthetic``
    dataset (nothing to decode: DataLoader workers would only take cores from training),
    ``torchvision`` otherwise."""
    if pipeline != "auto":
        return pipeline
    return "batched" if data_name == "synthetic" else "torchvision"


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
                         workers: int) -> ResumableLoader:
    """The ``data.pipeline: batched`` train loader for a dataset of ``(PIL image, label)``.

    In-memory datasets are read in the main process (``workers`` is ignored: one gather
    per batch is faster than shipping batches between processes); others are decoded to
    ``image_size`` squares by ``workers`` processes.
    """
    in_memory = in_memory_images(dataset)
    base = in_memory if in_memory is not None else DecodedImages(dataset, image_size)
    workers = 0 if in_memory is not None else workers
    return ResumableLoader(
        SeededUint8Samples(base, seed=seed), sampler=EpochShuffleSampler(len(base), seed=seed),
        batch_size=batch_size, num_workers=workers, collate_fn=collate_uint8,
        pin_memory=torch.cuda.is_available(), persistent_workers=False,
        worker_init_fn=worker_ignores_stop_signals if workers else None,
    )


def is_uint8_batch(batch: Any) -> bool:
    return (isinstance(batch, (tuple, list)) and len(batch) == 3 and isinstance(batch[0], torch.Tensor)
            and batch[0].dtype == torch.uint8)


class DeviceViews:
    """``(uint8 images, labels, seed)`` on the device -> ``(views, labels)``, made there.

    With ``channels_last`` the views are written in channels-last memory by the recipe's
    last op, the memory format the backbones use (no copy afterwards).
    """

    def __init__(self, recipe: BatchedViewRecipe, *, channels_last: bool = False) -> None:
        self.recipe = recipe
        self.channels_last = channels_last

    def __call__(self, batch) -> tuple[list[torch.Tensor], torch.Tensor]:
        images, labels, seed = batch
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        generator = torch.Generator(device=images.device).manual_seed(int(seed))
        host = generator if images.device.type == "cpu" else torch.Generator().manual_seed(int(seed))
        with torch.autocast(images.device.type, enabled=False):  # views in float32
            views = self.recipe(images, generator=generator, host_generator=host,
                                memory_format=memory_format)
        return views, labels


def apply_backbone_settings(method: torch.nn.Module, *, channels_last: bool = False,
                            compile: bool = False) -> None:
    """``channels_last`` memory format and / or ``torch.compile`` for the student and teacher
    backbones of ``method``, in place (``Module.compile`` keeps parameter names, so
    checkpoints and exported weights are unchanged)."""
    backbones = [method.student.backbone, method.teacher.module.backbone]
    for backbone in backbones:
        if channels_last:
            backbone.to(memory_format=torch.channels_last)
        if compile:
            backbone.compile()
