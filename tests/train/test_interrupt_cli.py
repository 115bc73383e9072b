"""Ctrl+C at any moment of a real ``resmo`` process: exit code 130 and at most 3 lines on
stderr, never a traceback — while Python imports torch (the first seconds), during set-up,
during training, after training, and in the evaluation commands.

The processes start with SIGINT at its default disposition (a test runner may have it
ignored, and a child would inherit that) in a session of their own, and get SIGINT as a
terminal's Ctrl+C sends it: to the whole process group.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resmo.cli import main
from resmo.train import pretrain
from tests.eval_helpers import make_run
from tests.pretrain_helpers import tiny_overrides

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(command: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=cwd, env=ENV, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=_default_sigint, start_new_session=True)


def ctrl_c(process: subprocess.Popen) -> tuple[str, str]:
    """SIGINT to the process group, then its (stdout, stderr) once it has ended."""
    os.killpg(process.pid, signal.SIGINT)
    return process.communicate(timeout=240)


def assert_one_line_ctrl_c(process: subprocess.Popen, err: str, prog: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert process.returncode == 130, err[-3000:]
    assert 1 <= len(lines) <= 3 and "Traceback" not in err, err[-3000:]
    ours = [line for line in lines if line.startswith(f"{prog}: interrupted by SIGINT")]
    assert len(ours) == 1, err[-3000:]
    return ours[0]


ENTRIES = {"resmo script": [shutil.which("resmo") or "resmo"],
           "python -m resmo.cli": [sys.executable, "-m", "resmo.cli"]}


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_ctrl_c_one_second_after_launch_is_one_line(tmp_path, entry):
    """One second in, Python is still importing torch (seconds on two cores)."""
    process = start([*ENTRIES[entry], "pretrain", *tiny_overrides(tmp_path / "run")], tmp_path)
    time.sleep(1.0)
    _, err = ctrl_c(process)
    line = assert_one_line_ctrl_c(process, err, "resmo pretrain")
    assert "while starting; nothing written yet" in line or "during set-up" in line  # a fast machine
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_import_of_the_cli_loads_no_heavy_package():
    """What makes the line above possible: ``main`` runs before torch is imported."""
    code = ("import sys, resmo.cli; heavy = {'torch', 'torchvision', 'lightning', 'timm', 'pydantic', "
            "'matplotlib', 'numpy', 'yaml'}; print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr


def wait_for(process: subprocess.Popen, ready, timeout: float = 240.0) -> None:
    """Read ``process``'s stdout until ``ready(line)`` (or, with ``ready`` a Path, until it exists)."""
    deadline = time.monotonic() + timeout
    if isinstance(ready, Path):
        while not ready.exists():
            assert process.poll() is None and time.monotonic() < deadline, "the run ended or hung first"
            time.sleep(0.05)
        return
    for line in process.stdout:
        if ready(line):
            return
        assert time.monotonic() < deadline
    raise AssertionError("the run ended before the line came")


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["set-up", "training"])
def test_ctrl_c_during_set_up_and_training_is_one_line(tmp_path, moment):
    out = tmp_path / "run"
    overrides = [*tiny_overrides(out, epochs=3), "train.progress_bar=true"]
    process = start([*ENTRIES["resmo script"], "pretrain", *overrides], tmp_path)
    if moment == "set-up":
        wait_for(process, out)  # the metrics log is made while the loop is built
    else:
        wait_for(process, lambda line: line.startswith("Epoch 1/3: 6/6 steps"))
    _, err = ctrl_c(process)
    line = assert_one_line_ctrl_c(process, err, "resmo pretrain")
    if moment == "training":
        assert (out / "checkpoints" / "last.ckpt").is_file()
        assert "checkpoint:" in line and f"--out {out} --resume auto" in line


@pytest.fixture
def sigint_at_a_terminal():
    """SIGINT's default handler, as at a terminal: a job started in the background
    (``nohup CMD &``) inherits SIGINT ignored, which ``main()`` respects by design."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_after_training_says_how_to_finish(tmp_path, monkeypatch, capsys, sigint_at_a_terminal):
    """A Ctrl+C while the backbones are saved (here the ``KeyboardInterrupt`` of a second
    Ctrl+C; a first one ends the process with the same line): the last checkpoint is kept,
    and the resume command it prints writes the backbones and the summary."""
    args = ["pretrain", *tiny_overrides(tmp_path / "run", epochs=1, samples=64)]
    save_backbone, handler = pretrain.save_backbone, signal.getsignal(signal.SIGINT)

    def interrupted(*args, **kwargs):
        assert signal.getsignal(signal.SIGINT) is not handler  # main's one-line exit is in charge
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrain, "save_backbone", interrupted)
    assert main(args) == 130
    assert signal.getsignal(signal.SIGINT) is handler  # given back
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("resmo pretrain:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("resmo pretrain: interrupted by SIGINT after training, while saving the "
                               f"backbones and the summary; checkpoint: {tmp_path / 'run' / 'checkpoints'}")
    command = lines[0].split("continue with: ")[1]
    assert command.startswith("resmo pretrain ") and command.endswith(f"--out {tmp_path / 'run'} --resume auto")
    assert not (tmp_path / "run" / "summary.json").exists()
    monkeypatch.setattr(pretrain, "save_backbone", save_backbone)
    assert main(shlex.split(command)[1:]) == 0
    assert (tmp_path / "run" / "summary.json").is_file() and (tmp_path / "run" / "student_backbone.pt").is_file()


#: ``resmo eval knn`` whose feature extraction gets a Ctrl+C, then keeps busy for 60 s.
EVAL_INTERRUPTED = """
import os, signal, sys, time
import resmo.eval.features as features
from resmo.cli import main

def extract(*args, **kwargs):
    os.killpg(os.getpgid(0), signal.SIGINT)
    for _ in range(600):
        time.sleep(0.1)

features.extract_features = extract
sys.exit(main())
"""


@pytest.mark.slow  # a fresh process (the fast lane does without it)
def test_ctrl_c_in_an_evaluation_command_is_one_line(tmp_path):
    run = make_run(tmp_path / "run", epochs=1, samples=64)
    process = start([sys.executable, "-c", EVAL_INTERRUPTED, "eval", "knn", str(run)], tmp_path)
    _, err = process.communicate(timeout=240)
    line = assert_one_line_ctrl_c(process, err, "resmo eval knn")
    assert "no result written" in line and "eval/cache/" in line
    assert not list((run / "eval").glob("knn-*.json"))
