"""Training loaders keep their workers between epochs, and that changes no batch.

Both train loaders (``seeded_train_loader``: torchvision views made in the workers;
``batched_train_loader``: images decoded in the workers, views made on the device from the
batch's seed) must give, with two kept workers, the batches of the same loader without
workers: over several epochs, after an epoch left part-way (an interrupt) and from a
mid-epoch start (a resume).
"""

from __future__ import annotations

import os

import torch
from PIL import Image
from torch.utils.data import Dataset

from resmo.data.batched.train_loader import batched_train_loader
from resmo.data.sampling import seeded_train_loader


class RandomDrawWithPid(Dataset):
    """``(index, a draw of torch's global RNG, the process id)``: the draw shows which RNG
    state made the sample (as a torchvision view would), the pid which process did."""

    def __len__(self) -> int:
        return 48

    def __getitem__(self, index):
        return index, float(torch.rand(())), os.getpid()


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


def test_kept_workers_give_the_torchvision_loaders_batches():
    kept = seeded_train_loader(RandomDrawWithPid(), batch_size=8, seed=7, workers=2)
    fresh_each_time = seeded_train_loader(RandomDrawWithPid(), batch_size=8, seed=7, workers=0)
    assert kept.persistent_workers and not fresh_each_time.persistent_workers
    ours, expected = epochs(kept, PLAN), epochs(fresh_each_time, PLAN)
    assert len(ours) == len(expected) == 6 + 2 + 6 + 3 + 6
    for batch, reference in zip(ours, expected, strict=True):
        assert batch[0].tolist() == reference[0].tolist()
        assert batch[1].tolist() == reference[1].tolist()  # the same random draws
    pids = {pid for batch in ours for pid in batch[2].tolist()}
    assert len(pids) == 2 and os.getpid() not in pids  # the same two workers for every epoch


def test_kept_workers_give_the_batched_loaders_batches_and_leave_the_global_rng_alone():
    kept = batched_train_loader(Pictures(), image_size=8, batch_size=4, seed=3, workers=2)
    fresh_each_time = batched_train_loader(Pictures(), image_size=8, batch_size=4, seed=3, workers=0)
    assert kept.persistent_workers
    state = torch.get_rng_state()
    ours, expected = epochs(kept, PLAN), epochs(fresh_each_time, PLAN)
    assert torch.equal(torch.get_rng_state(), state)
    assert len(ours) == len(expected) == 6 + 2 + 6 + 3 + 6
    for (images, labels, seed), (images_0, labels_0, seed_0) in zip(ours, expected, strict=True):
        assert torch.equal(images, images_0) and torch.equal(labels, labels_0) and seed == seed_0
    assert len({seed for _, _, seed in ours}) == 6 + 6 + 3 + 6  # a seed per batch of an epoch
