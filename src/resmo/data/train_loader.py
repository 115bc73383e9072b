"""The training loader of a run, for either view pipeline (``data.pipeline``).

:func:`build_train_loader` ``(dataset, spec, pipeline=...)`` is the one entry point. Both
pipelines share the seeded order of :mod:`resmo.data.sampling`: an
:class:`~resmo.data.sampling.EpochShuffleSampler` (a pure function of ``(seed, epoch)``
that resumes mid-epoch, each process of a DDP run reading its own share) in a
:class:`~resmo.data.sampling.ResumableLoader`, with every sample's random draws seeded by
``sample_seed(seed, epoch, index)``. They differ in where the views of the ``spec`` are made:

- ``"torchvision"``: per image, in the DataLoader workers, by
  :class:`~resmo.data.views.TorchvisionViews` under the torch seed of the sample
  (:class:`~resmo.data.sampling.SeededSamples`); batches are ``(list of views, labels)``;
- ``"batched"``: on the training device, after the loop moved the batch there, by
  :class:`~resmo.data.batched.views.DeviceViews` of ``BatchedViews(spec)``; batches are
  ``(uint8 images [B, 3, H, W], labels [B], seed)`` with ``seed`` =
  ``sample_seed(seed, epoch, first index)``. In-memory datasets (synthetic, CIFAR, STL-10)
  are one gather per batch from a uint8 tensor in the main process; image folders are
  decoded and resized by DataLoader workers (:mod:`resmo.data.batched.loader`).

:func:`chosen_pipeline` decides ``data.pipeline: auto``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from resmo.data.batched.loader import DecodedImages, TensorImages, in_memory_images
from resmo.data.sampling import EpochShuffleSampler, ResumableLoader, SeededSamples, sample_seed
from resmo.data.view_spec import ViewSpecs
from resmo.data.views import MultiViewDataset, TorchvisionViews
from resmo.validation import check_choice

PIPELINES = ("torchvision", "batched")


def chosen_pipeline(pipeline: str, data_name: str, device_type: str) -> str:
    """``data.pipeline`` with ``auto`` decided for a run training on ``device_type``
    (``torch.device.type``): ``batched`` on CUDA (per-image torchvision views in 8 workers
    make ~5-6k images/s, which leaves an H100 waiting; the GPU makes a batch's views in one
    go) and for the in-memory ``synthetic`` dataset (nothing to decode: DataLoader workers
    would only take cores from training), ``torchvision`` otherwise."""
    if pipeline != "auto":
        return pipeline
    return "batched" if device_type == "cuda" or data_name == "synthetic" else "torchvision"


def build_train_loader(dataset: Dataset, spec: ViewSpecs, *, pipeline: str, batch_size: int, seed: int,
                       workers: int, worker_init_fn: Callable[[int], None] | None = None) -> ResumableLoader:
    """The train loader of ``pipeline`` (``"torchvision"`` or ``"batched"``, see the module
    doc) for a dataset of ``(PIL image, label)`` and the views ``spec``.

    Worker seeds come from a generator of the loader's own (iterating leaves the global RNG
    alone); workers are kept between epochs (see resmo.data.sampling on why that changes no
    view). With ``"batched"``, in-memory datasets are read in the main process (``workers``
    is ignored: one gather per batch is faster than shipping batches between processes);
    others are decoded to squares of the largest view side (the global crops' size).
    """
    check_choice("pipeline", pipeline, PIPELINES)
    if pipeline == "torchvision":
        samples: Dataset = SeededSamples(MultiViewDataset(dataset, TorchvisionViews(spec)), seed=seed)
        collate = None
    else:
        in_memory = in_memory_images(dataset)
        base = in_memory if in_memory is not None else DecodedImages(dataset, max(v.size for v in spec.views))
        workers = 0 if in_memory is not None else workers
        samples, collate = SeededUint8Samples(base, seed=seed), collate_uint8
    return ResumableLoader(
        samples, sampler=EpochShuffleSampler(len(samples), seed=seed), batch_size=batch_size,
        num_workers=workers, collate_fn=collate, pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0, worker_init_fn=worker_init_fn if workers else None,
        generator=torch.Generator().manual_seed(seed),
    )


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


def is_uint8_batch(batch: Any) -> bool:
    return (isinstance(batch, (tuple, list)) and len(batch) == 3 and isinstance(batch[0], torch.Tensor)
            and batch[0].dtype == torch.uint8)
