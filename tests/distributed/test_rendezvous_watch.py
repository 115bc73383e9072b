"""The rendezvous watch in a real process whose main thread is blocked in a C call that
Python signal handlers cannot interrupt for good (a blocking ``os.read``: after a handler
returns, PEP 475 retries the read), as ``init_process_group`` blocks in the TCP store."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

BLOCKED = """
import os, signal, sys
from resmo.distributed.rendezvous import RendezvousWatch
signal.signal(signal.SIGTERM, lambda *a: None)  # a Python handler, as resmo pretrain installs
read_end, _ = os.pipe()
with RendezvousWatch("2 processes (2 nodes x 1) at 127.0.0.1:1", timeout={timeout}, hint="start node 1",
                     notice_after=0.2):
    print("blocked", flush=True)
    os.read(read_end, 1)  # never returns by itself
"""


def start(timeout: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", BLOCKED.format(timeout=timeout)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_the_deadline_ends_a_blocked_wait_with_one_line_and_exit_code_2():
    process = start(timeout=1.5)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert err.splitlines() == [
        "# waiting up to 1.5 s (train.rendezvous_timeout) for 2 processes (2 nodes x 1) at 127.0.0.1:1",
        "resmo pretrain: error: 2 processes (2 nodes x 1) at 127.0.0.1:1 did not all join within "
        "train.rendezvous_timeout=1.5 s; start node 1",
    ]


def test_sigterm_ends_a_blocked_wait_at_once():
    process = start(timeout=120)
    assert process.stdout.readline() == "blocked\n"
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)  # not the 120 s deadline
    assert process.returncode == 143
    assert err.splitlines()[-1] == ("resmo pretrain: interrupted by SIGTERM while waiting for 2 processes "
                                    "(2 nodes x 1) at 127.0.0.1:1; nothing was trained")
