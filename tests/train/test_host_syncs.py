"""At most one host synchronisation per training step (``benchmarks/host_syncs.py`` counts
them on a CPU: every host read of a tensor by resmo or Lightning during ``trainer.fit``)."""

from __future__ import annotations

import pytest
import torch

from tests.benchmarks.test_benchmark_scripts import load


@pytest.mark.parametrize("method", ["mocov2", "dino"])
def test_one_host_synchronisation_per_step(method):
    counted = load("host_syncs").count_per_step(method)
    assert counted["steps_counted"] >= 4
    assert counted["max_per_step"] == 1, counted
    (only,) = counted["calls_of_one_step"]
    assert only.startswith("tolist at train/loop.py"), counted  # the fused step check


def test_the_counter_sees_host_reads():
    host_syncs = load("host_syncs")
    with host_syncs.SyncCounter() as counter:
        value = torch.ones(3).sum()
        bool(value > 0), float(value), value.item(), value.tolist()
    assert [call.split(" at ")[0] for call in counter.calls] == ["__bool__", "__float__", "item", "tolist"]
