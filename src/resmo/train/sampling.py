"""Training data order that a mid-epoch checkpoint can reproduce exactly.

Lightning restores the loop counters of a mid-epoch checkpoint but restarts the epoch's
batch iteration; a plain ``shuffle=True`` loader then draws a new order from the global
RNG and the resumed run trains on other images. Three pieces make the order and the
augmentations pure functions of the seed instead:

- :class:`EpochShuffleSampler`: the order of epoch ``e`` is ``randperm(n)`` from a
  generator seeded with ``seed + e`` (as ``DistributedSampler``), split across processes
  by rank; it can skip the first samples of one epoch (the ones a checkpoint already saw).
  It yields ``(epoch, index)`` keys so that the dataset knows the epoch.
- :class:`SeededSamples`: draws the augmentations of sample ``index`` in epoch ``epoch``
  from a torch RNG seeded with a hash of ``(seed, epoch, index)``, inside
  ``torch.random.fork_rng`` (the global RNG is left as it was). The views therefore do not
  depend on the order, the number of DataLoader workers, or where a run was resumed.
- :class:`ResumableLoader`: a ``DataLoader`` with ``state_dict`` / ``load_state_dict``
  (Lightning's stateful-loader protocol) holding the position that
  :class:`LoaderPosition` records at each batch start.
- :class:`LoaderPosition` also carries that position in its own checkpoint state.
  Callbacks are restored before ``configure_optimizers``, whose
  ``estimated_stepping_batches`` makes Lightning create the epoch's iterator; Lightning
  restores a loader's own state only after that, too late to skip (and with workers > 0
  the iterator draws its first indices as soon as it is created).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
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
        """Called by Lightning before each epoch."""
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
    recipes (torchvision ``transforms.v2``) draw from it and from nothing else.
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
    """A ``DataLoader`` over an :class:`EpochShuffleSampler` whose position is saved in
    checkpoints (``state_dict``) and restored before iteration (``load_state_dict``)."""

    def __init__(self, dataset: Dataset, *, sampler: EpochShuffleSampler, batch_size: int,
                 **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, drop_last=True, **kwargs)
        self.position = {"epoch": 0, "batches_done": 0}

    def mark_batch(self, epoch: int, batch_idx: int) -> None:
        """Record that batch ``batch_idx`` of ``epoch`` is being trained on."""
        self.position = {"epoch": int(epoch), "batches_done": int(batch_idx) + 1}

    def state_dict(self) -> dict[str, int]:
        return {**self.position, "batch_size": int(self.batch_size or 1)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue after ``batches_done`` batches of ``epoch`` (the next epoch when that
        epoch was complete). Sets the sampler's epoch now: with workers > 0 the iterator
        draws its first indices as soon as Lightning creates it, before ``set_epoch``."""
        epoch, done = int(state["epoch"]), int(state["batches_done"])
        self.position = {"epoch": epoch, "batches_done": done}
        sampler: EpochShuffleSampler = self.sampler  # type: ignore[assignment]
        if done >= len(self):
            sampler.set_epoch(epoch + 1)
            return
        sampler.set_epoch(epoch)
        sampler.skip(epoch, done * int(state.get("batch_size", self.batch_size or 1)))


class LoaderPosition(pl.Callback):
    """Tells a :class:`ResumableLoader` which batch training is on (at each batch start),
    and saves / restores its position with the checkpoint's callback states."""

    def __init__(self, loader: ResumableLoader) -> None:
        self.loader = loader

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        self.loader.mark_batch(trainer.current_epoch, batch_idx)

    def state_dict(self) -> dict[str, int]:
        return self.loader.state_dict()

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        if state_dict:
            self.loader.load_state_dict(state_dict)
