"""The collectives' timeout and the clean end of the process group."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import torch.distributed as dist

from resmo.distributed.process_group import collective_timeout, end_process_group, has_process_group


def test_collectives_wait_ten_times_the_rendezvous_timeout_and_at_least_ten_minutes():
    assert collective_timeout(60) == timedelta(seconds=600)  # the default rendezvous_timeout
    assert collective_timeout(5) == timedelta(seconds=600)
    assert collective_timeout(300) == timedelta(seconds=3000)


def test_end_process_group_meets_at_a_barrier_and_destroys_the_group(tmp_path):
    end_process_group(barrier=True)  # no group: nothing to do
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1,
                            timeout=collective_timeout(1))
    assert has_process_group()
    end_process_group(barrier=True)
    assert not dist.is_initialized()


#: Two processes in a gloo group; rank 0 dies, rank 1's all-reduce fails: is it a lost process?
DEAD_RANK_0 = """
import os, sys, torch, torch.distributed as dist
from resmo.distributed.process_group import collective_timeout, lost_process
rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method="file://{store}", rank=rank, world_size=2,
                        timeout=collective_timeout(1))
dist.barrier()
if rank == 0:
    os._exit(9)
try:
    dist.all_reduce(torch.ones(3))
except RuntimeError as error:
    print("lost" if lost_process(error) else "other", lost_process(RuntimeError("DataLoader timed out")))
"""


def test_a_dead_process_is_told_apart_from_other_errors(tmp_path):
    script = DEAD_RANK_0.format(store=tmp_path / "store")
    processes = [subprocess.Popen([sys.executable, "-c", script, str(rank)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
                 for rank in (0, 1)]
    out = [process.communicate(timeout=120)[0] for process in processes]
    assert out[1].split() == ["lost", "False"]
