"""The progress output of ``resmo pretrain`` suits where it goes: a live bar on a terminal,
plain lines without ``\\r`` in a pipe, a file or a terminal of 0 columns."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import termios

import pytest

from resmo.train.progress import EpochProgress, is_live_terminal


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_stream_that_is_no_terminal_gets_one_plain_line_per_epoch():
    stream, clock = io.StringIO(), Clock()
    progress = EpochProgress(enabled=True, epochs=2, steps_per_epoch=4, stream=stream, every=60, clock=clock)
    for epoch in range(2):
        progress.open(epoch, 0)
        for done in range(1, 5):
            clock.now += 2.5
            progress.update(done, loss=4.0 - epoch - done / 10)
    progress.close()
    assert stream.getvalue() == ("Epoch 1/2: 4/4 steps, loss 3.600, 10.0 s\n"
                                 "Epoch 2/2: 4/4 steps, loss 2.600, 10.0 s\n")


def test_a_long_epoch_prints_a_line_every_interval_and_a_resumed_one_where_it_resumes():
    stream, clock = io.StringIO(), Clock()
    progress = EpochProgress(enabled=True, epochs=3, steps_per_epoch=100, stream=stream, every=60, clock=clock)
    progress.open(1, 40)  # epoch 2, resumed after 40 of its 100 batches
    for done in range(41, 101):
        clock.now += 2.0  # a line when 60 s have passed since the last one
        progress.update(done, loss=1.0 if done < 100 else 0.5)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "Epoch 2/3: 40/100 steps (resumed)",
        "Epoch 2/3: 70/100 steps, loss 1.000, 60.0 s",
        "Epoch 2/3: 100/100 steps, loss 0.500, 120.0 s",  # the epoch's end: its own line only
    ]
    assert "\r" not in stream.getvalue()


def test_disabled_progress_prints_nothing():
    stream = io.StringIO()
    progress = EpochProgress(enabled=False, epochs=1, steps_per_epoch=4, stream=stream)
    progress.open(0, 0)
    progress.update(4, loss=1.0)
    progress.close()
    assert stream.getvalue() == ""


@pytest.fixture
def terminal():
    """A pseudo-terminal: its writing end, a function setting its width, and one reading
    what was written to it."""
    leader, follower = pty.openpty()
    stream = os.fdopen(follower, "w")

    def set_columns(columns: int) -> None:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))

    def written() -> str:
        stream.flush()
        text = b""
        while select.select([leader], [], [], 0.5)[0]:
            text += os.read(leader, 65536)
        return text.decode()

    yield stream, set_columns, written
    stream.close()
    os.close(leader)


def run_one_epoch(stream) -> None:
    progress = EpochProgress(enabled=True, epochs=1, steps_per_epoch=4, stream=stream)
    progress.open(0, 0)
    for done in range(1, 5):
        progress.update(done, loss=2.0)
    progress.close()


def test_a_terminal_gets_a_live_bar(terminal):
    stream, set_columns, written = terminal
    set_columns(80)
    assert is_live_terminal(stream)
    run_one_epoch(stream)
    text = written()
    assert "\r" in text and "Epoch 1/1: 100%" in text and "4/4" in text and "loss=2.000" in text


def test_a_terminal_of_zero_columns_gets_plain_lines(terminal):
    stream, set_columns, written = terminal
    set_columns(0)
    assert not is_live_terminal(stream)
    run_one_epoch(stream)
    text = written().replace("\r\n", "\n")  # the terminal's own line ends
    assert "\r" not in text and text.startswith("Epoch 1/1: 4/4 steps, loss 2.000, "), text
