"""The README's launcher commands ("Several GPUs and nodes"), run on localhost with gloo.

A two-node torchrun launch (two torchrun processes with one process each, c10d
rendezvous on 127.0.0.1) and a torchrun launch that does not pass ``--devices`` each
become one world-size-2 run equal, bit for bit, to ``resmo pretrain --devices 2``;
``--num-nodes 2`` with no second node ends by itself with one line, and SIGTERM ends the
wait at once.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.pretrain_helpers import tiny_overrides

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]
README = Path(__file__).resolve().parents[2] / "README.md"


def readme_multi_node_flags(port: int) -> list[str]:
    """The torchrun flags of the README's two-node command, for one process per node on
    127.0.0.1 (``HOST:29500`` -> ``127.0.0.1:port``, 8 processes per node -> 1)."""
    section = README.read_text().split("### Several GPUs and nodes", 1)[1].split("\n### ", 1)[0]
    line = next(line for line in section.splitlines() if line.startswith("torchrun --nnodes"))
    flags = shlex.split(line.split(" -m ", 1)[0].rstrip(" \\"))[1:]
    assert flags[flags.index("--rdzv-backend") + 1] == "c10d" and "--rdzv-id" in flags
    flags[flags.index("--nproc-per-node") + 1] = "1"
    return [flag.replace("HOST:29500", f"127.0.0.1:{port}") for flag in flags]


def tiny(out=None) -> list[str]:
    """The tiny recipe on CPU, one epoch; without ``out``: the default run folder."""
    overrides = [o for o in tiny_overrides(out, epochs=1) if out or not o.startswith("out=")]
    return [*overrides, "train.accelerator=cpu"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def finished(process: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def teacher(folder) -> dict[str, torch.Tensor]:
    return torch.load(folder / "teacher_backbone.pt", map_location="cpu", weights_only=False)["state_dict"]


def same_run(a, b) -> None:
    """Bit-identical teachers and the same numbers in summary.json."""
    first, second = teacher(a), teacher(b)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    keys = ("final_loss", "knn_top1_student", "knn_top1_teacher", "intra_gap", "world_size", "global_batch", "effective_lr")
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (a, b)]
    assert [{key: s[key] for key in keys} for s in summaries][0] == {key: summaries[1][key] for key in keys}


@pytest.mark.slow
def test_torchrun_two_nodes_and_torchrun_without_devices_equal_devices_2(tmp_path):
    reference = tmp_path / "devices2"
    launched = subprocess.Popen([sys.executable, "-m", "resmo.cli", "pretrain", "--devices", "2", *tiny(reference)],
                                cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    code, _, err = finished(launched)
    assert code == 0, err[-3000:]

    # two "nodes" of one process each: the README's multi-node command (c10d rendezvous)
    nodes_out, flags = tmp_path / "nodes", readme_multi_node_flags(free_port())
    assert flags[:2] == ["--nnodes", "2"]
    nodes = [subprocess.Popen([*TORCHRUN, *flags, "-m", "resmo.cli", "pretrain", *tiny(nodes_out)],
                              cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    for node in nodes:
        code, _, err = finished(node)
        assert code == 0, err[-3000:]
    same_run(reference, nodes_out)

    # torchrun without --devices: the launcher's 2 processes are adopted (one note), one run
    # folder (the default, timestamped name agreed between the processes)
    plain = tmp_path / "plain"
    plain.mkdir()
    code, out, err = finished(subprocess.Popen(
        [*TORCHRUN, "--nproc-per-node", "2", "--master-port", str(free_port()), "-m", "resmo.cli", "pretrain",
         *tiny()], cwd=plain, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    assert code == 0, err[-3000:]
    assert out.count("# note: torchrun started 2 processes (1 node x 2)") == 1
    folders = list((plain / "runs").iterdir())
    assert len(folders) == 1, folders
    assert "devices: 2" in (folders[0] / "config.yaml").read_text()
    same_run(reference, folders[0])


@pytest.mark.slow
def test_num_nodes_2_on_one_machine_ends_by_itself_and_on_sigterm(tmp_path):
    command = [sys.executable, "-m", "resmo.cli", "pretrain", "--num-nodes", "2", *tiny(tmp_path / "run")]
    start = time.monotonic()
    code, _, err = finished(subprocess.Popen([*command, "train.rendezvous_timeout=3"], cwd=tmp_path, env=ENV,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), 120)
    assert code == 2 and time.monotonic() - start < 120
    lines = err.splitlines()
    assert lines[0].startswith("# waiting up to 3 s (train.rendezvous_timeout) for 2 processes (2 nodes x 1) "
                               "at 127.0.0.1:")
    assert len(lines) == 2 and lines[1].startswith("resmo pretrain: error: 2 processes (2 nodes x 1) at ")
    assert "did not all join within train.rendezvous_timeout=3 s" in lines[1]
    assert not (tmp_path / "run").exists()

    waiting = subprocess.Popen(command, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert waiting.stderr.readline().startswith("# waiting up to 60 s")
    sent = time.monotonic()
    waiting.send_signal(signal.SIGTERM)
    code, _, err = finished(waiting, 60)
    assert code == 143 and time.monotonic() - sent < 30  # not the 60 s deadline
    assert len(err.splitlines()) == 1
    assert err.startswith("resmo pretrain: interrupted by SIGTERM while waiting for 2 processes (2 nodes x 1)")
