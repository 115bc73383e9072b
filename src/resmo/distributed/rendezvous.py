"""A deadline, a message and working Ctrl+C / SIGTERM while the processes of a run meet.

``torch.distributed.init_process_group`` waits in C++ (the TCP store on
``MASTER_ADDR:MASTER_PORT``) until every process of the world has joined, for as long as
its ``timeout`` (the same timeout then bounds every collective, so it cannot be short).
While the main thread is blocked there, Python runs no signal handler: a SIGTERM or
SIGINT is only acted on once the wait ends (measured with a 20 s store timeout: a
SIGTERM sent during the wait ran its handler only when the 20 s had passed).
:class:`RendezvousWatch` therefore watches from a second thread:

- after ``notice_after`` seconds it prints one line saying what it waits for
  (processes, nodes, address and port);
- at ``timeout`` seconds it prints a one-line error and ends the process with exit code 2;
- on SIGINT / SIGTERM it prints one line and ends the process with 128 + signal.

Signals reach the thread through ``signal.set_wakeup_fd``: Python's C-level handler
writes the signal number into a pipe that the thread reads, even while the main thread is
blocked (this needs a Python handler for the signal, which ``resmo pretrain`` installs
during set-up; under the default SIGTERM disposition the process simply ends). The
process ends with ``os._exit``: the main thread is still inside C++ and cannot unwind.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from types import TracebackType

EXIT_BAD_INPUT = 2


class RendezvousWatch:
    """Context manager around the wait for the other processes (see the module docstring).

    ``waiting_for``: ``"2 processes (2 nodes x 1) at 127.0.0.1:29500"``; ``hint``: what to
    do when they never come. Only the main thread can watch signals; elsewhere only the
    deadline and the message apply.
    """

    def __init__(self, waiting_for: str, *, timeout: float, hint: str, notice_after: float = 5.0,
                 prefix: str = "resmo pretrain") -> None:
        self.waiting_for, self.timeout, self.hint, self.prefix = waiting_for, timeout, hint, prefix
        self.notice_after = min(notice_after, timeout / 2)
        self._thread: threading.Thread | None = None
        self._signals_read = self._signals_written = None
        self._stop_read = self._stop_written = None
        self._previous_wakeup_fd = -1
        self.noticed = False

    def __enter__(self) -> RendezvousWatch:
        self._stop_read, self._stop_written = os.pipe()
        if threading.current_thread() is threading.main_thread():
            self._signals_read, self._signals_written = os.pipe()
            os.set_blocking(self._signals_written, False)
            self._previous_wakeup_fd = signal.set_wakeup_fd(self._signals_written, warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._watch, name="resmo-rendezvous-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        os.write(self._stop_written, b"x")
        if self._thread is not None:
            self._thread.join()
        if self._signals_written is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
        for fd in (self._stop_read, self._stop_written, self._signals_read, self._signals_written):
            if fd is not None:
                os.close(fd)

    def _say(self, text: str) -> None:
        sys.stdout.flush()
        os.write(2, (text + "\n").encode())

    def _watch(self) -> None:
        start = time.monotonic()
        watched = [self._stop_read] + ([self._signals_read] if self._signals_read is not None else [])
        while True:
            elapsed = time.monotonic() - start
            next_event = self.timeout if self.noticed else self.notice_after
            ready, _, _ = select.select(watched, [], [], max(0.0, next_event - elapsed))
            if self._stop_read in ready:
                return
            if self._signals_read is not None and self._signals_read in ready:
                for signum in os.read(self._signals_read, 64):
                    if signum in (signal.SIGINT, signal.SIGTERM):
                        self._say(f"{self.prefix}: interrupted by {signal.Signals(signum).name} while waiting "
                                  f"for {self.waiting_for}; nothing was trained")
                        os._exit(128 + signum)
                continue
            elapsed = time.monotonic() - start
            if not self.noticed and elapsed >= self.notice_after:
                self.noticed = True
                self._say(f"# waiting up to {self.timeout:g} s (train.rendezvous_timeout) for {self.waiting_for}")
            elif elapsed >= self.timeout:
                self._say(f"{self.prefix}: error: {self.waiting_for} did not all join within "
                          f"train.rendezvous_timeout={self.timeout:g} s; {self.hint}")
                os._exit(EXIT_BAD_INPUT)
