"""Two-process DDP on CPU (gloo) through the real command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from tests.pretrain_helpers import tiny_overrides


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path):
    out = tmp_path / "ddp"
    overrides = [o for o in tiny_overrides(out, method="mocov2") if not o.startswith("method_options")]
    overrides.append("method_options.mocov2={hidden_dim: 64, out_dim: 32, queue_size: 1000}")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "resmo.cli", "pretrain", "--devices", "2", "train.accelerator=cpu",
         "train.strategy=ddp", *overrides],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    # the teacher (and the whole method state) is identical on both ranks at the end
    assert summary["ranks_consistent"] is True
    teacher = summary["rank_fingerprints"]["teacher"]
    assert len(teacher) == 2 and teacher[0] == teacher[1]
    # the queue received the keys of both ranks: 192 images / (2 x 32) = 3 steps per epoch,
    # 2 epochs, 2 views, 32 keys per view and rank -> 6 * 2 * 32 * 2 = 768 keys written
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 6
    assert int(state["state_dict"]["method.queue.pointer"]) == 768
