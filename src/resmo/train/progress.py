"""The progress output of ``resmo pretrain`` (rank 0, on stdout), suited to where it goes.

- On a terminal: a live tqdm bar per epoch, ``Epoch 2/3: 40%| 8/20 [..., loss=4.110]``.
- Anywhere else (a pipe, a file, ``nohup``; or a terminal that reports 0 columns, where a
  bar would be drawn empty): plain lines without ``\\r``, one when an epoch ends,
  ``Epoch 2/3: 20/20 steps, loss 4.110, 12.3 s``, one more mid-epoch every
  :data:`PLAIN_EVERY_SECONDS` of a long epoch, and one when an epoch resumes part-way.

Epochs are counted from 1, with the total, as in resmo's stop and resume messages
(resmo.train.resume.describe_position); an epoch resumed mid-way opens at the batch it
resumes from, with the epoch's total.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

#: Seconds between the mid-epoch lines of the plain output (epochs shorter than this print
#: one line, at their end).
PLAIN_EVERY_SECONDS = 60.0


def is_live_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal with a width to draw a bar in."""
    try:
        if not stream.isatty():
            return False
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, ValueError, OSError):  # closed, or no file descriptor
        return False


class PlainLines:
    """One epoch's progress as whole lines: resumed part-way, every ``every`` seconds, done."""

    def __init__(self, stream: TextIO, desc: str, total: int, done: int, *,
                 every: float, clock: Callable[[], float]) -> None:
        self.stream, self.desc, self.total, self.n = stream, desc, total, done
        self.every, self.clock = every, clock
        self.start = self.last_line = clock()
        self.loss: float | None = None
        if done:
            self._line(f"{self.desc}: {done}/{total} steps (resumed)")

    def update(self, done: int, loss: float | None) -> None:
        self.n = done
        if loss is not None:
            self.loss = loss
        if done < self.total and self.clock() - self.last_line >= self.every:
            self._line(self._status())

    def close(self) -> None:
        self._line(self._status())

    def _status(self) -> str:
        loss = "" if self.loss is None else f", loss {self.loss:.3f}"
        return f"{self.desc}: {self.n}/{self.total} steps{loss}, {self.clock() - self.start:.1f} s"

    def _line(self, text: str) -> None:
        self.last_line = self.clock()
        print(text, file=self.stream, flush=True)


class LiveBar:
    """One epoch's tqdm bar on a terminal."""

    def __init__(self, stream: TextIO, desc: str, total: int, done: int) -> None:
        self.bar = tqdm(total=total, initial=done, file=stream, desc=desc, dynamic_ncols=True,
                        smoothing=0, leave=True)

    def update(self, done: int, loss: float | None) -> None:
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class EpochProgress:
    """Shows progress when ``enabled`` (rank 0 with ``train.progress_bar``); else does nothing.

    ``stream`` defaults to ``sys.stdout`` as it is when an epoch opens; a :class:`LiveBar`
    when it is a live terminal (:func:`is_live_terminal`), else :class:`PlainLines`.
    """

    def __init__(self, *, enabled: bool, epochs: int, steps_per_epoch: int, stream: TextIO | None = None,
                 every: float = PLAIN_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled, self.epochs, self.steps_per_epoch = enabled, epochs, steps_per_epoch
        self.stream, self.every, self.clock = stream, every, clock
        self.bar: LiveBar | PlainLines | None = None

    def open(self, epoch: int, done: int) -> None:
        """Progress of epoch ``epoch`` (from 0) with ``done`` of its batches already trained."""
        self.close()
        if not self.enabled:
            return
        stream = self.stream if self.stream is not None else sys.stdout
        desc = f"Epoch {epoch + 1}/{self.epochs}"
        if is_live_terminal(stream):
            self.bar = LiveBar(stream, desc, self.steps_per_epoch, done)
        else:
            self.bar = PlainLines(stream, desc, self.steps_per_epoch, done, every=self.every, clock=self.clock)

    def update(self, done: int, loss: float | None = None) -> None:
        if self.bar is not None:
            self.bar.update(done, loss)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
