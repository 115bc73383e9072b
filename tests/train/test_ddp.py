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
    # 2 epochs, 32 keys per view and rank -> 6 * 32 * 2 = 384 keys written into each
    # view's queue (one pointer for both)
    state = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 6
    assert int(state["state_dict"]["method.queue.pointer"]) == 384


#: ``resmo pretrain`` in which process 1 alone gets a NaN loss at step ``{step}``; Lightning's
#: launcher starts process 1 by running this same file again, so the patch is there too.
NAN_ON_RANK_1 = """
import os, sys
from resmo.cli import main
from resmo.methods.base import MomentumMethod
original = MomentumMethod.forward
def forward(self, views, *, step=0):
    result = original(self, views, step=step)
    if step == {step} and os.environ.get("LOCAL_RANK") == "1":
        result.terms["ssl"] = result.terms["ssl"] * float("nan")
        result.loss = result.loss * float("nan")
    return result
MomentumMethod.forward = forward
sys.exit(main())
"""


def two_processes_with_a_nan(tmp_path, step, extra):
    launcher = tmp_path / "nan_on_rank_1.py"
    launcher.write_text(NAN_ON_RANK_1.format(step=step))
    overrides = [o for o in tiny_overrides(tmp_path / "unused") if not o.startswith("out=")]
    return subprocess.run(
        [sys.executable, str(launcher), "pretrain", "--devices", "2", "train.accelerator=cpu",
         *overrides, *extra],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.mark.slow
def test_a_nan_on_one_process_stops_every_process_with_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    result = two_processes_with_a_nan(tmp_path, 3, ["--out", str(out)])
    lines = [line for line in result.stderr.splitlines() if line.startswith("resmo pretrain:")]
    assert result.returncode == 1, result.stderr[-3000:]
    assert len(lines) == 1 and "stopped: a loss term is not finite on another process at step 3" in lines[0]
    saved = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 4  # both processes skipped step 3 and stopped after it
    assert saved["loop"]["non_finite"]["bad_steps"][0]["step"] == 3


@pytest.mark.slow
def test_a_nan_on_one_process_is_skipped_by_every_process_in_one_run_folder(tmp_path):
    """Within the budget both processes skip the step and end equal; without ``--out`` both
    write to the one default run folder."""
    result = two_processes_with_a_nan(tmp_path, 3, ["train.max_bad_steps=1"])
    assert result.returncode == 0, result.stderr[-3000:]
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1, folders
    summary = json.loads((folders[0] / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_consistent"] is True
    assert [bad["step"] for bad in summary["skipped_steps"]] == [3]
