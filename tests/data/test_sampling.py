"""Data order and augmentations as pure functions of the seed (resmo.data.sampling)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from resmo.data.sampling import (
    EpochShuffleSampler,
    ResumableLoader,
    SeededSamples,
    sample_seed,
)


class RandomDraw(Dataset):
    """``dataset[i]`` is ``(i, a random number)``: the number shows which RNG state was used."""

    def __len__(self) -> int:
        return 40

    def __getitem__(self, index):
        return index, float(torch.rand(()))


def keys(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_order_is_a_pure_function_of_seed_and_epoch():
    a, b = EpochShuffleSampler(40, seed=3), EpochShuffleSampler(40, seed=3)
    assert keys(a, 2) == keys(b, 2)
    assert keys(a, 1) != keys(a, 2)  # reshuffled every epoch
    assert keys(EpochShuffleSampler(40, seed=4), 2) != keys(a, 2)
    epochs = {e for e, _ in keys(a, 5)}
    assert epochs == {5}  # keys carry the epoch
    assert sorted(i for _, i in keys(a, 5)) == list(range(40))


def test_skip_drops_the_first_samples_of_one_epoch_once():
    sampler = EpochShuffleSampler(40, seed=0)
    full = keys(sampler, 1)
    sampler.skip(1, 12)
    assert keys(sampler, 1) == full[12:]
    assert keys(sampler, 1) == full  # only once
    sampler.skip(3, 12)
    assert keys(sampler, 1) == full  # another epoch: nothing skipped


def test_ranks_split_the_same_permutation_without_overlap():
    shards = [EpochShuffleSampler(41, seed=1, rank=r, world_size=3) for r in range(3)]
    orders = [[i for _, i in keys(s, 0)] for s in shards]
    assert [len(o) for o in orders] == [13, 13, 13] == [len(s) for s in shards]
    assert len(set().union(*orders)) == 39  # the uneven tail is dropped on every rank
    single = [i for _, i in keys(EpochShuffleSampler(41, seed=1), 0)]
    assert orders[1] == single[1:39:3]


def test_seeded_samples_do_not_depend_on_order_and_leave_the_global_rng_alone():
    data = SeededSamples(RandomDraw(), seed=7)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    forward = [data[(2, i)] for i in range(10)]
    assert torch.equal(torch.get_rng_state(), before)
    backward = [data[(2, i)] for i in reversed(range(10))][::-1]
    assert forward == backward
    assert data[(3, 0)] != data[(2, 0)]  # a new epoch draws new augmentations
    assert data[0] == data[(0, 0)]
    assert sample_seed(7, 2, 1) != sample_seed(7, 1, 2) and 0 <= sample_seed(7, 2, 1) < 2**63


def batches(loader):
    return [batch[0].tolist() for batch in loader]


def test_loader_starts_an_epoch_after_the_batches_done():
    def make():
        sampler = EpochShuffleSampler(40, seed=5)
        return ResumableLoader(SeededSamples(RandomDraw(), seed=5), sampler=sampler, batch_size=8)

    expected = batches(make().start(2))
    resumed = make().start(2, batches_done=2)  # batches 0 and 1 of epoch 2 were trained on
    assert resumed.sampler.epoch == 2
    assert batches(resumed) == expected[2:]
    assert batches(resumed) == expected  # the skip applies to one iteration only
    assert batches(make().start(3)) != expected and len(batches(make().start(3))) == 5


def test_loader_with_workers_matches_the_loader_without():
    def make(workers):
        sampler = EpochShuffleSampler(40, seed=5)
        sampler.set_epoch(1)
        return ResumableLoader(SeededSamples(RandomDraw(), seed=5), sampler=sampler, batch_size=8,
                               num_workers=workers)

    def values(loader):
        return [batch[1].tolist() for batch in loader]

    assert values(make(0)) == values(make(2))
