"""The train loader keeps its workers between epochs, and that changes no batch.

With either pipeline (``torchvision``: views made in the workers; ``batched``: images
decoded in the workers, views made on the device from the batch's seed),
``build_train_loader`` must give, with two kept workers, the batches of the same loader
without workers: over several epochs, after an epoch left part-way (an interrupt) and from
a mid-epoch start (a resume).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from resmo.data import build_train_loader, two_view_spec


class PicturesWithPid(Dataset):
    """``(PIL image, the process id)``: a different gradient per index, so that every random
    crop, flip and colour draw shows in the views; the pid (as the label) says which process
    made the sample."""

    def __len__(self) -> int:
        return 48

    def __getitem__(self, index):
        pixels = (np.arange(10 * 12 * 3).reshape(10, 12, 3) * (index + 1)) % 256
        return Image.fromarray(pixels.astype(np.uint8)), os.getpid()


class Pictures(Dataset):
    """``(PIL image, label)`` files-like images (no uint8 array: decoded in the workers)."""

    def __len__(self) -> int:
        return 24

    def __getitem__(self, index):
        return Image.new("RGB", (12, 10), (index * 10 % 256, 40, 200 - index)), index % 3


def epochs(loader, plan):
    """Batches of each ``(epoch, batches_done, batches_taken)`` in ``plan`` (None: all)."""
    seen = []
    for epoch, done, taken in plan:
        for number, batch in enumerate(loader.start(epoch, done)):
            if taken is not None and number == taken:
                break  # left part-way, as an interrupted epoch
            seen.append(batch)
    return seen


PLAN = [(0, 0, None), (1, 0, 2), (1, 0, None), (2, 3, None), (3, 0, None)]


def loader(dataset, pipeline, workers, batch_size, seed):
    return build_train_loader(dataset, two_view_spec(8), pipeline=pipeline, batch_size=batch_size, seed=seed,
                              workers=workers)


def test_kept_workers_give_the_torchvision_loaders_batches():
    kept = loader(PicturesWithPid(), "torchvision", 2, batch_size=8, seed=7)
    fresh_each_time = loader(PicturesWithPid(), "torchvision", 0, batch_size=8, seed=7)
    assert kept.persistent_workers and not fresh_each_time.persistent_workers
    ours, expected = epochs(kept, PLAN), epochs(fresh_each_time, PLAN)
    assert len(ours) == len(expected) == 6 + 2 + 6 + 3 + 6
    for (views, _), (views_0, _) in zip(ours, expected, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(views, views_0, strict=True))  # the same draws
    assert not torch.equal(ours[0][0][0], ours[6][0][0])  # another epoch: other images, other draws
    pids = {pid for _, labels in ours for pid in labels.tolist()}
    assert len(pids) == 2 and os.getpid() not in pids  # the same two workers for every epoch


def test_kept_workers_give_the_batched_loaders_batches_and_leave_the_global_rng_alone():
    kept = loader(Pictures(), "batched", 2, batch_size=4, seed=3)
    fresh_each_time = loader(Pictures(), "batched", 0, batch_size=4, seed=3)
    assert kept.persistent_workers
    state = torch.get_rng_state()
    ours, expected = epochs(kept, PLAN), epochs(fresh_each_time, PLAN)
    assert torch.equal(torch.get_rng_state(), state)
    assert len(ours) == len(expected) == 6 + 2 + 6 + 3 + 6
    for (images, labels, seed), (images_0, labels_0, seed_0) in zip(ours, expected, strict=True):
        assert torch.equal(images, images_0) and torch.equal(labels, labels_0) and seed == seed_0
    assert len({seed for _, _, seed in ours}) == 6 + 6 + 3 + 6  # a seed per batch of an epoch
