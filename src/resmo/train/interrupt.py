"""SIGTERM and SIGINT while training: finish the step, save, and exit with a resume hint.

:class:`StopSignals` (around the loop, main thread only) records the first signal; the
loop reads the record in the step's one fused check (OR-ed over processes, so all ranks
stop after the same step), checkpoints the exact position after that step's optimizer and
EMA update and raises ``RunStopped`` (exit code 128 + signal: 143 for SIGTERM, 130 for
SIGINT); ``--resume auto`` then reaches the weights of a run never interrupted.

- A signal in the last step lets the run finish; one between batches stops before the
  next epoch, whose start the epoch-end checkpoint holds. Ctrl+C twice stops at once
  (``KeyboardInterrupt``; checkpoint writes are atomic: resmo.files).
- Where nothing is saved yet (recipe, data and model being built; the random-init kNN) a
  signal stops at once (:meth:`StopSignals.at_once`).
- DataLoader workers outlive the signal (:data:`worker_ignores_stop_signals`): Ctrl+C or
  a cluster's SIGTERM reaches the whole process group, and a dead worker would make torch
  raise in the middle of a step, the kNN or the checkpoint write.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from lightning.fabric.utilities.seed import pl_worker_init_function

from resmo.train.stopping import RunStopped

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerSignals:
    """DataLoader ``worker_init_fn`` that keeps workers alive through SIGINT / SIGTERM.

    Workers ignore SIGINT. They ignore SIGTERM while :attr:`training` is set (while
    :class:`StopSignals` is active); otherwise
    SIGTERM ends them quietly (exit code 0), which keeps the clean-up path of torch and
    of ``multiprocessing`` at interpreter exit (``terminate()``) working. The flag is in
    shared memory, so forked and spawned workers read the main process's value. Then
    Lightning's worker seeding when ``seed_everything(workers=True)`` asked for it.
    """

    def __init__(self) -> None:
        self._training = multiprocessing.RawValue(ctypes.c_bool, False)

    @property
    def training(self) -> bool:
        return bool(self._training.value)

    @training.setter
    def training(self, value: bool) -> None:
        self._training.value = bool(value)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if not self._training.value:
            os._exit(0)  # as torch's own worker handler does for its parent's SIGTERM

    def __call__(self, worker_id: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        if os.environ.get("PL_SEED_WORKERS") == "1":
            pl_worker_init_function(worker_id)


#: The ``worker_init_fn`` of resmo's training loaders (one flag per process).
worker_ignores_stop_signals = WorkerSignals()


class StopSignals:
    """Records the first SIGINT / SIGTERM (:attr:`received`) while active."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._at_once: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None and signum == signal.SIGINT:
            self.restore_handlers()
            raise KeyboardInterrupt  # Ctrl+C after a first signal: stop now
        if self.received is None:
            self.received = signum
        if self._at_once is not None:
            where, self._at_once = self._at_once, None
            raise self.stopped(where, checkpoint=None, step=0)

    @contextmanager
    def at_once(self, where: str) -> Iterator[None]:
        """While active, a signal raises ``RunStopped`` at once (nothing to save yet); the
        handlers are installed for that time if they were not already."""
        installed_here = not self._previous
        self.install_handlers()
        self._at_once = where
        try:
            if self.received is not None:
                raise self.stopped(where, checkpoint=None, step=0)
            yield
        finally:
            self._at_once = None
            if installed_here:
                self.restore_handlers()

    def stopped(self, where: str, *, checkpoint: Path | None, step: int) -> RunStopped:
        """The ``RunStopped`` for the received signal, ``where`` it was acted on."""
        signum = self.received if self.received is not None else signal.SIGTERM
        kept = (f"checkpoint: {checkpoint} (step {step})" if checkpoint is not None
                else "no checkpoint yet: a new run starts from scratch")
        return RunStopped(f"interrupted by {signal.Signals(signum).name} {where}; {kept}",
                          exit_code=128 + int(signum), reason="signal", checkpoint=checkpoint, step=step)

    def install_handlers(self) -> None:
        """Route SIGINT and SIGTERM here (main thread only); workers ignore them from now."""
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return
        for signum in SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)
        worker_ignores_stop_signals.training = True

    def restore_handlers(self) -> None:
        worker_ignores_stop_signals.training = False
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def __enter__(self) -> StopSignals:
        self.install_handlers()
        return self

    def __exit__(self, *exc_info) -> None:
        self.restore_handlers()
