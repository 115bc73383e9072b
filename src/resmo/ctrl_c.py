"""Ctrl+C outside the training loop: one line on stderr and exit code 130, no traceback.

Inside ``resmo pretrain``'s set-up and training, :class:`resmo.train.interrupt.StopSignals`
handles SIGINT (stop after the step, save, say how to continue). Everywhere else — Python
importing torch and the other libraries (seconds on a small machine), the evaluation
commands, the export after training — :class:`ExitAtOnce`, which :func:`resmo.cli.main`
holds for the whole command, prints ``<prog>: interrupted by SIGINT <where>; <what was
kept, how to continue>`` and ends the process at once.

Why end at once rather than raise ``KeyboardInterrupt``: an exception raised in the middle
of importing torch can be swallowed by a library's import code, which then goes on with
half-imported modules and fails later with a traceback of its own (seen: a
``RecursionError`` from numpy's lazy ``linalg`` after a Ctrl+C inside torch._dynamo's
imports). Ending at once loses nothing that the raise would have saved: checkpoints,
exported backbones and cached evaluation features are written atomically (resmo.files),
and an evaluation writes its results only at the end of its work.

This module imports only the standard library, so ``resmo.cli`` can use it before
anything heavy is loaded.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

#: Exit code of a command ended by SIGINT (128 + 2), as shells report it.
EXIT_CODE = 128 + int(signal.SIGINT)


def interrupted_line(prog: str, kept: str, where: str = "") -> str:
    """``"<prog>: interrupted by SIGINT[ <where>]; <kept>"``."""
    return f"{prog}: interrupted by SIGINT{' ' + where if where else ''}; {kept}"


def interrupted(prog: str, kept: str, where: str = "") -> int:
    """Print :func:`interrupted_line` on stderr and return :data:`EXIT_CODE` (for a
    ``KeyboardInterrupt`` that reached the command, e.g. a second Ctrl+C while training)."""
    print(interrupted_line(prog, kept, where), file=sys.stderr, flush=True)
    return EXIT_CODE


class ExitAtOnce:
    """While active, SIGINT writes ``line()`` to stderr and ends the process with
    :data:`EXIT_CODE` (``os._exit``: no clean-up that could print or hang).

    Installed only in the main thread and only over Python's default handling: a SIGINT
    that is ignored (``nohup``, a background job) stays ignored, and a handler someone else
    installed stays theirs. Handlers installed on top of it (StopSignals) put it back when
    they end. ``line`` may be replaced while active, as the command learns what it keeps.
    """

    def __init__(self, line: Callable[[], str]) -> None:
        self.line = line
        self._previous: object = None
        self._installed = False

    def __enter__(self) -> ExitAtOnce:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._exit)
            self._installed = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _exit(self, signum: int, frame: FrameType | None) -> None:
        try:
            text = self.line()
        except Exception:  # the line must not stop the exit
            text = "resmo: interrupted by SIGINT"
        try:
            sys.stdout.flush()  # what was printed so far (a pipe or file is block-buffered)
        except Exception:  # a flush already under way in the interrupted code
            pass
        os.write(2, f"{text}\n".encode(errors="replace"))
        os._exit(EXIT_CODE)
