"""DataLoader worker counts capped to the machine's CPU cores (resmo.data.workers)."""

from __future__ import annotations

import os

import pytest

from resmo.commands import common
from resmo.data.workers import available_cpus, capped_workers


@pytest.mark.parametrize("requested, cpus, expected", [(0, 2, 0), (1, 2, 1), (2, 2, 2), (8, 64, 8), (-1, 2, -1)])
def test_counts_the_machine_has_are_kept_without_a_note(requested, cpus, expected):
    assert capped_workers(requested, cpus=cpus) == (expected, None)


def test_more_workers_than_cores_are_capped_with_a_one_line_note():
    assert capped_workers(8, cpus=2) == (2, "data.num_workers=8 capped to the 2 CPU cores of this machine")
    assert capped_workers(3, cpus=1) == (1, "data.num_workers=3 capped to the 1 CPU core of this machine")
    workers, note = capped_workers(16, name="--num-workers", cpus=4)
    assert workers == 4 and note == "--num-workers=16 capped to the 4 CPU cores of this machine"


def test_the_default_is_the_cores_this_process_may_run_on(monkeypatch):
    cores = available_cpus()
    assert 1 <= cores <= (os.cpu_count() or cores)
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))
    assert capped_workers(cores + 1) == (cores, f"data.num_workers={cores + 1} capped to the {cores} CPU "
                                                f"{'core' if cores == 1 else 'cores'} of this machine")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert available_cpus() == 3 and capped_workers(8)[0] == 3


def test_without_an_affinity_mask_the_cpu_count_is_used(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert available_cpus() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert available_cpus() == 1


def test_eval_commands_cap_num_workers_before_extracting(monkeypatch, capsys):
    import argparse

    import resmo.eval.features as features
    import resmo.eval.runs as runs

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(features, "resolve_device", lambda device: device)
    monkeypatch.setattr(runs, "load_run", lambda run, config=None: "run")
    monkeypatch.setattr(features, "build_eval_data", lambda run, data, **kwargs: "data")
    args = argparse.Namespace(device="cpu", run="r", config=None, data=None, max_train=None, max_val=None,
                              num_workers=8, batch_size=4, no_cache=False, split="test")
    assert common.load(args) == ("run", "data")
    assert common.extract_options(args)["num_workers"] == 2
    assert capsys.readouterr().out == "# note: --num-workers=8 capped to the 2 CPU cores of this machine\n"
    args.num_workers = 1
    common.load(args)
    assert args.num_workers == 1 and capsys.readouterr().out == ""
