"""fp16 with a gradient scaler: a step the scaler skips changes nothing, is counted, and a
collapsed loss scale stops the run.

Lightning turns ``precision="16-mixed"`` into bf16 on a CPU, so these runs get Lightning
Fabric's real fp16 ``MixedPrecision`` plugin with torch's CPU ``GradScaler``: the same code
path as ``16-mixed`` on a GPU (autocast to float16, scaled backward, unscale, ``scaler.step``).
"""

from __future__ import annotations

import pytest
import torch
from lightning.fabric import Fabric
from lightning.fabric.plugins.precision import MixedPrecision

import resmo.launch as launch
from resmo.config import load_config
from resmo.train.pretrain import execute_run, prepare_run
from resmo.train.stopping import RunStopped
from tests.pretrain_helpers import tiny_overrides


@pytest.fixture
def cpu_fp16(monkeypatch):
    """``prepare_run`` builds its Fabric with fp16 autocast and a CPU gradient scaler."""

    def fabric(*args, precision=None, **kwargs):
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**8)
        return Fabric(*args, plugins=[MixedPrecision("16-mixed", "cpu", scaler=scaler)], **kwargs)

    monkeypatch.setattr(launch, "Fabric", fabric)


def overflow_at(run, steps):
    """Infinite gradients (as an fp16 overflow gives) at the steps in ``steps``."""
    parameter = next(iter(run.method.student_parameters()))
    parameter.register_hook(
        lambda grad: grad * float("inf") if run.loop.step in steps else grad
    )


class StateAt:
    """The method's state when the batch of ``step`` starts and when it ends."""

    def __init__(self, step: int) -> None:
        self.step, self.before, self.after = step, {}, {}

    def on_batch_start(self, loop):
        if loop.step == self.step:
            self.before = {k: v.clone() for k, v in loop.method.state_dict().items()}

    def on_batch_end(self, loop):
        if loop.step == self.step + 1:
            self.after = {k: v.clone() for k, v in loop.method.state_dict().items()}


@pytest.mark.parametrize("method", ["mocov2", pytest.param("dino", marks=pytest.mark.slow)])
def test_a_scaler_skipped_step_changes_no_weight_teacher_queue_or_centre(tmp_path, cpu_fp16, method):
    # one epoch of 5 steps of 16 images, no kNN monitor: fp16 on a CPU is slow (seconds a step)
    overrides = [*tiny_overrides(tmp_path / "run", method=method, epochs=1, samples=80), "train.batch_size=16",
                 "monitor.knn_every_epochs=0"]
    run = prepare_run(load_config(None, overrides))
    assert run.fabric.strategy.precision.precision == "16-mixed"
    overflow_at(run, {2})
    state = StateAt(2)
    run.loop.hooks.append(state)
    summary = execute_run(run)
    assert state.before and state.after
    for key, value in state.before.items():  # student, teacher, queue / centre, BN statistics
        assert torch.equal(state.after[key], value), key
    assert summary["scaler_skipped_steps"] == 1
    assert summary["skipped_steps"] == []  # an overflow is not a bad step: no budget used
    assert run.loop.step == 5


def test_a_collapsed_loss_scale_stops_the_run_with_a_checkpoint(tmp_path, cpu_fp16):
    overrides = [*tiny_overrides(tmp_path / "run", samples=96), "train.batch_size=16", "train.max_scaler_skips_in_a_row=3",
                 "monitor.knn_every_epochs=0"]
    run = prepare_run(load_config(None, overrides))
    overflow_at(run, set(range(2, 100)))
    with pytest.raises(RunStopped) as stopped:
        execute_run(run)
    stop = stopped.value
    assert stop.exit_code == 1 and stop.reason == "non-finite" and "\n" not in stop.message
    assert "skipped 4 steps in a row" in stop.message and "max_scaler_skips_in_a_row=3" in stop.message
    saved = torch.load(stop.checkpoint, weights_only=False)
    assert saved["global_step"] == 6  # steps 0, 1 applied; 2..5 skipped by the scaler
    assert saved["loop"]["non_finite"]["scaler_skipped_steps"] == 4
