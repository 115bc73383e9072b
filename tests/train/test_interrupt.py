"""SIGTERM / SIGINT during training: checkpoint, clean stop, exact resume with ``--resume auto``.

In-process tests send a real signal to this process from a loop hook at a chosen step;
the slow tests run ``resmo pretrain`` in a subprocess that signals itself (or its process
group, DataLoader workers included) at a chosen step, then resume with the printed command.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys

import pytest
import torch

from resmo.backbone_files import load_backbone
from resmo.cli import resume_command
from resmo.config import load_config
from resmo.train.interrupt import StopSignals
from resmo.train.pretrain import execute_run, prepare_run
from resmo.train.stopping import RunStopped
from tests.pretrain_helpers import ON_CPU, SignalAt, tiny_overrides

STEPS_PER_EPOCH = 192 // 32
COMPARED = ("knn_top1_student", "knn_top1_teacher", "knn_top1_random_init", "knn_history",
            "final_loss", "intra_gap", "skipped_files", "skipped_steps")


def overrides(out, method, workers=0):
    return [*tiny_overrides(out, method=method), f"data.num_workers={workers}", *ON_CPU]


def train(out, method, *, resume=None, callbacks=(), workers=0):
    run = prepare_run(load_config(None, overrides(out, method, workers)), resume=resume)
    run.loop.hooks.extend(callbacks)
    return run, execute_run(run)


def assert_same_run(a, summary_a, b, summary_b):
    assert a.loop.step == b.loop.step
    state_a, state_b = a.method.state_dict(), b.method.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:  # bit for bit: student, teacher, queue / centre, BatchNorm statistics
        assert torch.equal(state_a[key], state_b[key]), key
    for key in COMPARED:
        assert summary_a[key] == summary_b[key], key


@pytest.mark.parametrize(
    "method, step, signum, workers",
    [
        pytest.param("mocov2", 8, signal.SIGTERM, 0, marks=pytest.mark.slow),  # mid-epoch 2: the checkpoint is written mid-epoch
        pytest.param("mocov3", 5, signal.SIGINT, 0, marks=pytest.mark.slow),  # during the last batch of epoch 1
        pytest.param("dino", 2, signal.SIGTERM, 2, marks=pytest.mark.slow),  # DataLoader workers
    ],
)
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, method, step, signum, workers):
    straight, straight_summary = train(tmp_path / "straight", method, workers=workers)
    out = tmp_path / "interrupted"
    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunStopped) as stopped:
        train(out, method, resume="auto", callbacks=[SignalAt(step, signum)], workers=workers)
    assert signal.getsignal(signal.SIGTERM) == handler_before  # handlers restored
    stop = stopped.value
    assert stop.exit_code == 128 + signum and stop.reason == "signal"
    assert f"interrupted by {signal.Signals(signum).name} after {step + 1} steps" in stop.message
    assert stop.checkpoint == out / "checkpoints" / "last.ckpt"
    assert torch.load(stop.checkpoint, weights_only=False)["global_step"] == step + 1
    assert not (out / "summary.json").exists()
    resumed, resumed_summary = train(out, method, resume="auto", workers=workers)
    assert any("continuing from" in note for note in resumed.notes), resumed.notes
    assert_same_run(straight, straight_summary, resumed, resumed_summary)
    # metrics.csv keeps the rows from before the interruption: the same steps and losses
    assert metric_rows(out) == metric_rows(tmp_path / "straight")


def metric_rows(out):
    with open(out / "metrics.csv") as file:
        return [(row["step"], row["epoch"], row.get("train/loss_step")) for row in csv.DictReader(file)]


def test_signal_before_the_first_step_stops_without_a_checkpoint(tmp_path):
    class SignalAtStart:
        def on_start(self, loop):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(RunStopped) as stopped:
        train(tmp_path / "run", "mocov3", callbacks=[SignalAtStart()])
    assert stopped.value.checkpoint is None and "no checkpoint yet" in stopped.value.message
    assert stopped.value.exit_code == 143


def test_second_sigint_stops_at_once(tmp_path):
    guard = StopSignals()
    previous = signal.getsignal(signal.SIGINT)
    guard.install_handlers()
    try:
        os.kill(os.getpid(), signal.SIGINT)
        assert guard.received == signal.SIGINT
        os.kill(os.getpid(), signal.SIGTERM)  # a later, different signal changes nothing
        assert guard.received == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        guard.restore_handlers()
    assert signal.getsignal(signal.SIGINT) == previous


def test_resume_command_replaces_out_and_resume():
    argv = ["pretrain", "--epochs", "3", "--out", "runs/a", "--resume", "x.ckpt", "out=runs/b",
            "optimizer.lr=0.1"]
    command = resume_command(argv, "runs/a b")
    assert shlex.split(command) == ["resmo", "pretrain", "--epochs", "3", "optimizer.lr=0.1",
                                    "--out", "runs/a b", "--resume", "auto"]


# ``resmo pretrain`` whose process sends SIGTERM (to itself, or to its whole process group)
# when the step with ``global_step == step`` starts: the same delivery as a kill from
# outside, at a known position inside an epoch (an outside kill timed by the epoch-1
# checkpoint appearing races the epoch boundary on a loaded machine).
SIGNAL_AT_STEP = """
import os, signal, sys
from resmo.cli import main
from resmo.train.loop import TrainingLoop
original = TrainingLoop.train_step
def train_step(self, *args):
    if self.step == {step}:
        {kill}
    return original(self, *args)
TrainingLoop.train_step = train_step
sys.exit(main())
"""
TO_ITSELF = "os.kill(os.getpid(), signal.SIGTERM)"
TO_ITS_GROUP = "os.killpg(os.getpgid(0), signal.SIGTERM)"


def signalling_command(step, kill=TO_ITSELF):
    return [sys.executable, "-c", SIGNAL_AT_STEP.format(step=step, kill=kill)]


@pytest.mark.slow
def test_sigterm_to_the_command_mid_epoch_then_resume_auto(tmp_path):
    """``resmo pretrain`` gets SIGTERM in epoch 2 of 3; the printed resume command finishes
    the run with the same metrics and backbones as an uninterrupted run with the same seed."""
    samples, epochs = 640, 3  # 20 steps per epoch: the signal comes at step 27, inside epoch 2
    out = tmp_path / "run"
    args = ["pretrain", *tiny_overrides(out, epochs=epochs, samples=samples), *ON_CPU]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "resmo.cli"]
    process = subprocess.run([*signalling_command(27), *args], capture_output=True, text=True, env=env,
                             cwd=tmp_path, timeout=180)
    stderr = process.stderr
    assert process.returncode == 143, stderr[-3000:]
    message = stderr.strip().splitlines()[-1]
    # epochs counted from 1 in the stop message, the resume note and the progress bar alike
    assert message.startswith("resmo pretrain: interrupted by SIGTERM after 28 steps (epoch 2, batch 8 done);"), message
    step = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    assert step == 28  # the checkpoint of the position after the signalled step
    resume = shlex.split(message.split("continue with: ", 1)[1])
    assert resume[0] == "resmo" and resume[-2:] == ["--resume", "auto"]
    resumed = subprocess.run([*command, *resume[1:-2], "train.progress_bar=true", *resume[-2:]],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "continuing from" in resumed.stdout
    assert "after 28 steps (epoch 2, batch 8 done)" in resumed.stdout
    bar = resumed.stdout.splitlines()  # piped: plain progress lines
    assert "Epoch 2/3: 8/20 steps (resumed)" in bar, bar[:5]
    assert any(line.startswith("Epoch 3/3: 20/20 steps") for line in bar)
    assert not any(line.startswith(("Epoch 0", "Epoch 1", "Epoch 2:")) for line in bar)
    summary = json.loads((out / "summary.json").read_text())

    straight = prepare_run(load_config(None, [*tiny_overrides(tmp_path / "straight", epochs=epochs,
                                                              samples=samples), *ON_CPU]))
    straight_summary = execute_run(straight)
    for key in COMPARED:
        assert summary[key] == straight_summary[key], key
    images = torch.randn(4, 3, 32, 32)
    for name in ("student", "teacher"):
        a = load_backbone(out / f"{name}_backbone.pt").eval()
        b = load_backbone(tmp_path / "straight" / f"{name}_backbone.pt").eval()
        assert torch.equal(a(images), b(images)), name


@pytest.mark.slow
def test_sigterm_to_the_whole_process_group_with_dataloader_workers(tmp_path):
    """As SLURM does: SIGTERM reaches the main process and its DataLoader workers at once
    (at step 35, in epoch 2 of 3).
    The workers must outlive it (else torch raises mid-step); the run saves and exits 143."""
    out = tmp_path / "run"
    args = ["pretrain", *tiny_overrides(out, epochs=3, samples=960), "data.num_workers=2"]
    process = subprocess.run([*signalling_command(35, TO_ITS_GROUP), *args], capture_output=True,
                             text=True, cwd=tmp_path, start_new_session=True, timeout=180,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    stderr = process.stderr
    assert process.returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr and "DataLoader worker" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1].startswith("resmo pretrain: interrupted by SIGTERM")
    assert torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 36


def test_every_knn_measurement_runs_under_the_signal_handlers(tmp_path, monkeypatch):
    """The kNN at initialisation and after the last epoch (before its checkpoint) read images
    with workers that outlive a SIGTERM to the process group, and the signal goes to the
    graceful handler: a cluster's SIGTERM then cannot crash the run there and lose the epoch."""
    from resmo.eval.knn_monitor import KnnMonitor
    from resmo.train.interrupt import worker_ignores_stop_signals

    seen = []
    original = KnnMonitor.knn_top1

    def recording(self, backbone, device, label):
        handler = signal.getsignal(signal.SIGTERM)
        seen.append((isinstance(getattr(handler, "__self__", None), StopSignals),
                     worker_ignores_stop_signals.training,
                     self.train_loader.worker_init_fn is worker_ignores_stop_signals,
                     self.val_loader.worker_init_fn is worker_ignores_stop_signals))
        return original(self, backbone, device, label)

    monkeypatch.setattr(KnnMonitor, "knn_top1", recording)
    # images read one by one in workers, as from an image folder (in-memory pixels need none)
    monkeypatch.setattr("resmo.data.eval_batches.in_memory_images", lambda dataset: None)
    run = prepare_run(load_config(None, [*overrides(tmp_path / "run", "mocov3", workers=1), "train.epochs=1"]))
    handler_before = signal.getsignal(signal.SIGTERM)
    execute_run(run)
    assert len(seen) == 3  # random init, then student and teacher after the last epoch
    assert all(all(flags) for flags in seen), seen
    assert signal.getsignal(signal.SIGTERM) == handler_before and not worker_ignores_stop_signals.training
