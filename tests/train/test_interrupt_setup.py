"""Ctrl+C and SIGTERM while a run sets up (before its first step): it stops at once with
one line and exit 130 / 143, instead of waiting for the first step (minutes when the
random-init kNN runs on a large folder) or dying with a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.pretrain_helpers import tiny_overrides

#: ``resmo pretrain`` that signals itself in a slow set-up phase, then keeps busy for 60 s
#: (in Python, as data loading and feature extraction do between steps).
SIGNAL_DURING = """
import os, signal, sys, time
import resmo.train.pretrain as pretrain
from resmo.cli import main
from resmo.eval.knn_monitor import KnnMonitor

def slow(original):
    def run(*args, **kwargs):
        with open({stamp!r}, "w") as file:
            file.write(repr(time.time()))
        os.kill(os.getpid(), signal.{signal})
        for _ in range(600):
            time.sleep(0.1)
        return original(*args, **kwargs)
    return run

if {phase!r} == "data":
    pretrain.build_datasets = slow(pretrain.build_datasets)
else:
    KnnMonitor.knn_top1 = slow(KnnMonitor.knn_top1)
sys.exit(main())
"""


@pytest.mark.parametrize("phase, signum", [  # a fresh process each (~10 s): all in the slow lane
    pytest.param("data", signal.SIGINT, marks=pytest.mark.slow),
    pytest.param("knn", signal.SIGTERM, marks=pytest.mark.slow),
    pytest.param("knn", signal.SIGINT, marks=pytest.mark.slow)])
def test_a_signal_during_set_up_stops_at_once_with_one_line(tmp_path, phase, signum):
    stamp = tmp_path / "signalled"
    script = SIGNAL_DURING.format(stamp=str(stamp), signal=signal.Signals(signum).name, phase=phase)
    process = subprocess.run(
        [sys.executable, "-c", script, "pretrain", *tiny_overrides(tmp_path / "run")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    ended = time.time()
    assert process.returncode == 128 + signum, process.stderr[-3000:]
    assert ended - float(stamp.read_text()) < 5.0
    lines = [line for line in process.stderr.splitlines() if line.strip() and "Warning" not in line
             and not line.startswith(" ")]
    ours = [line for line in lines if line.startswith("resmo pretrain:")]
    assert len(ours) == 1 and "Traceback" not in process.stderr, process.stderr[-3000:]
    name = signal.Signals(signum).name
    expected = "during set-up" if phase == "data" else "before the first training step"
    assert f"interrupted by {name} {expected}" in ours[0]
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
