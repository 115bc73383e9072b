"""Evaluation batches: a dataset's images through ``eval_transform``, in a fixed order.

:func:`eval_loader` is the one way evaluation batches are made: the kNN monitors of a run
(resmo.eval.knn_monitor), the features of ``resmo eval`` (resmo.eval.features) and
``resmo gap`` (resmo.eval.gap_diagnostics). Training batches are another job
(:func:`resmo.data.train_loader.build_train_loader`: seeded shuffled order, full batches
only, random views); both read in-memory datasets through
:func:`resmo.data.batched.loader.in_memory_images`. Two paths give the same tensors:

- in-memory datasets (the synthetic textures, torchvision CIFAR-10/100 and STL-10, which
  hold their pixels as one uint8 array) read at their own size: each batch is one gather
  from the uint8 tensor in the main process, then torchvision's ``to_dtype(scale=True)``
  and ``normalize``, the ops that ``eval_transform`` ends with (its resize and centre crop
  are identities at the image's own size). Bitwise equal to the per-image path
  (tests/eval/test_eval_batches.py) and about twice as fast on 2 CPU cores: no PIL round trip
  per image, no worker processes to start;
- anything else: a DataLoader of :class:`~resmo.data.views.EvalDataset` with ``num_workers``
  workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision.transforms.v2 import functional as TF

from resmo.data.batched.loader import in_memory_images
from resmo.data.view_spec import IMAGENET_MEAN, IMAGENET_STD
from resmo.data.views import EvalDataset, eval_resize_side, eval_transform


class TensorEvalBatches:
    """Normalised float32 batches ``[B, 3, H, W]`` with labels from uint8 ``images``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.mean, self.std = list(mean), list(std)
        self.dataset = images  # len(loader.dataset): the number of images, as for a DataLoader

    def __len__(self) -> int:
        return -(-self.images.shape[0] // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.images.shape[0], self.batch_size):
            batch = TF.to_dtype(self.images[start : start + self.batch_size], torch.float32, scale=True)
            yield TF.normalize(batch, self.mean, self.std), self.labels[start : start + self.batch_size]


def _in_memory(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor] | None:
    """uint8 images ``[N, 3, H, W]`` and labels of ``dataset`` (a ``Subset`` of one included)."""
    if isinstance(dataset, Subset):
        inner = _in_memory(dataset.dataset)
        if inner is None:
            return None
        index = torch.as_tensor(list(dataset.indices), dtype=torch.int64)
        return inner[0][index], inner[1][index]
    images = in_memory_images(dataset)
    return None if images is None else (images.images, images.labels)


def eval_loader(dataset: Dataset, image_size: int, *, batch_size: int, num_workers: int = 0,
                worker_init_fn: Callable[[int], None] | None = None) -> DataLoader | TensorEvalBatches:
    """Batches of ``(eval_transform(image_size)(image), label)`` over ``dataset`` in order
    (``worker_init_fn``: run in each DataLoader worker of the per-image path)."""
    held = _in_memory(dataset)
    at_own_size = eval_resize_side(image_size) == image_size  # resize and centre crop: identities
    if held is not None and at_own_size and held[0].shape[-2:] == (image_size, image_size):
        return TensorEvalBatches(*held, batch_size=batch_size)
    return DataLoader(EvalDataset(dataset, eval_transform(image_size)), batch_size=batch_size, shuffle=False,
                      num_workers=num_workers, drop_last=False,
                      worker_init_fn=worker_init_fn if num_workers else None)
