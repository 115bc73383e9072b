"""Training data order that a mid-epoch checkpoint can reproduce exactly.

A plain ``shuffle=True`` loader draws each epoch's order from the global RNG, so a run
resumed mid-epoch would train on other images. Three pieces make the order and the
augmentations pure functions of the seed instead:

- :class:`EpochShuffleSampler`: the order of epoch ``e`` is ``randperm(n)`` from a
  generator seeded with ``seed + e`` (as ``DistributedSampler``), split across processes
  by rank; it can skip the first samples of one epoch (the ones a checkpoint already saw).
  It yields ``(epoch, index)`` keys so that the dataset knows the epoch.
- :class:`SeededSamples`: draws the augmentations of sample ``index`` in epoch ``epoch``
  from a torch RNG seeded with a hash of ``(seed, epoch, index)``, inside
  ``torch.random.fork_rng`` (the global RNG is left as it was). The views therefore do not
  depend on the order, the number of DataLoader workers, or where a run was resumed.
- :class:`ResumableLoader`: a ``DataLoader`` that starts epoch ``e`` at batch ``b``
  (:meth:`ResumableLoader.start`), all a checkpoint needs to store being ``(e, b)``.
  (torchdata's ``StatefulDataLoader`` would snapshot the sampler's and workers' iterator
  states instead; with an order that is a pure function of the seed, two integers and a
  sampler skip restore the same position, without another dependency.)

The training loader of both pipelines (:func:`resmo.data.train_loader.build_train_loader`)
keeps its DataLoader workers between epochs (``persistent_workers`` when ``workers > 0``):
the order is drawn by the sampler in the main process at every ``iter``, and each sample's
draws come from its own seed, never from a worker's RNG, so which process (new or kept)
makes a sample does not change it; a worker's own seeds
(``base_seed + worker_id``, drawn once per kept pool instead of once per epoch) feed nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

_MASK64 = (1 << 64) - 1


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that is a pure, well-mixed function of ``(seed, epoch, index)``
    (SplitMix64 finaliser applied to each part in turn)."""
    value = 0x9E3779B97F4A7C15
    for part in (seed, epoch, index):
        value = (value ^ (int(part) & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        value ^= value >> 31
        value = value * 0x94D049BB133111EB & _MASK64
        value ^= value >> 29
    return value & ((1 << 63) - 1)


def _world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, ``(0, 1)`` without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class EpochShuffleSampler(Sampler):
    """Shuffled ``(epoch, index)`` keys: a pure function of ``(seed, epoch, rank, world)``.

    With several processes each rank takes every ``world``-th index of the shared
    permutation, after dropping the tail that does not divide evenly (all ranks see the
    same number of samples). ``rank`` / ``world_size`` default to the process group's at
    iteration time. :meth:`skip` drops the first samples of one epoch once.
    """

    def __init__(self, num_samples: int, *, seed: int = 0, rank: int | None = None,
                 world_size: int | None = None) -> None:
        if num_samples < 1:
            raise ValueError(f"num_samples={num_samples!r} is not valid; allowed values: an integer >= 1")
        self.num_samples = num_samples
        self.seed = int(seed)
        self.epoch = 0
        self._rank, self._world_size = rank, world_size
        self._skip_epoch: int | None = None
        self._skip_samples = 0

    def _rank_world(self) -> tuple[int, int]:
        rank, world = _world()
        return (rank if self._rank is None else self._rank,
                world if self._world_size is None else self._world_size)

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration draws."""
        self.epoch = int(epoch)

    def skip(self, epoch: int, samples: int) -> None:
        """Leave out the first ``samples`` keys of this rank the next time ``epoch`` is iterated."""
        self._skip_epoch, self._skip_samples = int(epoch), int(samples)

    def __len__(self) -> int:
        _, world = self._rank_world()
        return self.num_samples // world

    def order(self, epoch: int) -> list[int]:
        """This rank's sample indices for ``epoch`` (before any skipping)."""
        rank, world = self._rank_world()
        generator = torch.Generator().manual_seed(self.seed + epoch)
        permutation = torch.randperm(self.num_samples, generator=generator)
        usable = self.num_samples // world * world
        return permutation[rank:usable:world].tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start = self.epoch, 0
        if self._skip_epoch == epoch:
            start = self._skip_samples
            self._skip_epoch, self._skip_samples = None, 0
        for index in self.order(epoch)[start:]:
            yield epoch, index


class SeededSamples(Dataset):
    """``dataset[(epoch, index)]`` is ``base[index]`` computed under the torch seed
    :func:`sample_seed` ``(seed, epoch, index)``; the caller's RNG state is restored after.

    Plain integer keys are read as epoch 0. Only torch's CPU RNG is seeded: the view
    torchvision views (``transforms.v2``) draw from it and from nothing else.
    """

    def __init__(self, base: Dataset, *, seed: int = 0) -> None:
        self.base = base
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int] | int) -> Any:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, epoch, index))
            return self.base[index]


class ResumableLoader(DataLoader):
    """A ``drop_last`` ``DataLoader`` over an :class:`EpochShuffleSampler` that can start any
    epoch at any batch."""

    def __init__(self, dataset: Dataset, *, sampler: EpochShuffleSampler, batch_size: int,
                 **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, drop_last=True, **kwargs)

    def start(self, epoch: int, batches_done: int = 0) -> ResumableLoader:
        """Iterate epoch ``epoch`` from batch ``batches_done`` on (set before the iterator is
        made: with workers > 0 it draws its first indices at once)."""
        sampler: EpochShuffleSampler = self.sampler  # type: ignore[assignment]
        sampler.set_epoch(epoch)
        if batches_done:
            sampler.skip(epoch, batches_done * int(self.batch_size or 1))
        return self

