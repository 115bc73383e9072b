"""SIGTERM and SIGINT while training: finish the step, save, and exit with a resume hint.

:class:`GracefulInterrupt` replaces the SIGTERM and SIGINT handlers while training runs
(Lightning's own SIGTERM handler only stops, without saving). A handler just records the
signal; at the end of the current batch (after the optimizer step and the EMA update)
the callback writes a checkpoint of the exact position, and at the start of the next
batch or epoch it raises :class:`~resmo.train.stopping.RunStopped` (exit code 128 +
signal number: 143 for SIGTERM, 130 for SIGINT). ``resmo pretrain ... --resume auto``
then continues from that checkpoint and reaches the same weights and metrics as a run
that was never interrupted (see :mod:`resmo.train.sampling`).

- A signal during the last step of training lets the run finish normally.
- With several processes, the request is OR-ed over ranks in the step's one fused
  check (``PretrainModule.stop_requested`` -> ``check.stop``, see resmo.train.module), so
  all stop after the same step (a cluster usually signals every rank, Lightning's
  launcher only the first).
- DataLoader workers outlive the signal (:data:`worker_ignores_stop_signals`, their
  ``worker_init_fn``, for the training loader and the kNN monitor's loaders): a terminal's
  Ctrl+C or a cluster's SIGTERM reaches the whole process group, and a worker that died
  of it would make torch raise in the main process in the middle of the step, the kNN
  after the last epoch (before its checkpoint) or the checkpoint being written.
- A second SIGINT (Ctrl+C twice) stops at once with ``KeyboardInterrupt``; the checkpoint
  files stay intact because writes are atomic (see :mod:`resmo.train.checkpoint_io`).
- Before the first training step there is nothing to save: a signal during set-up (the
  random-init kNN of ``on_train_start``, which takes minutes on large folders) stops at
  once with :class:`~resmo.train.stopping.RunStopped`, and so does one while ``resmo
  pretrain`` reads the recipe and builds data and model (:func:`stop_at_once_on_signals`).
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

import lightning.pytorch as pl
from lightning.fabric.utilities.seed import pl_worker_init_function

from resmo.train.resume import describe_position
from resmo.train.stopping import RunStopped, any_rank, existing, save_boundary_checkpoint

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class WorkerSignals:
    """DataLoader ``worker_init_fn`` that keeps workers alive through SIGINT / SIGTERM.

    Workers ignore SIGINT. They ignore SIGTERM while :attr:`training` is set (between
    ``on_train_start`` and the end of training, by :class:`GracefulInterrupt`); otherwise
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


@contextmanager
def stop_at_once_on_signals(where: str) -> Iterator[None]:
    """While active (main thread): SIGINT / SIGTERM raise :class:`RunStopped` at once,
    ``"interrupted by SIGINT <where>"``, exit code 128 + signal. For phases with nothing to
    save; :class:`GracefulInterrupt` takes over while training runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        raise RunStopped(f"interrupted by {name} {where}", exit_code=128 + int(signum), reason="signal")

    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum in SIGNALS:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


class GracefulInterrupt(pl.Callback):
    def __init__(self, checkpoint_path: str | os.PathLike) -> None:
        self.checkpoint_path = Path(checkpoint_path)
        self.received: int | None = None
        self._setting_up = False  # between on_train_start and the first step: stop at once
        self._trainer: pl.Trainer | None = None
        self._module: pl.LightningModule | None = None
        self._previous: dict[int, object] = {}
        self._pending: RunStopped | None = None

    # --- handlers -------------------------------------------------------------------
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received == signal.SIGINT and signum == signal.SIGINT:
            self.restore_handlers()
            raise KeyboardInterrupt  # a second Ctrl+C: stop now
        if self.received is None:
            self.received = signum
            if self._module is not None:
                self._module.stop_requested = True  # read by the next step's fused check
        if self._setting_up and self._trainer is not None:  # nothing trained yet: stop now
            self._setting_up = False
            raise self._stopped(self._trainer, "before the first training step")

    def install_handlers(self) -> None:
        """Route SIGINT and SIGTERM to this callback (main thread only)."""
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return
        for signum in SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def restore_handlers(self) -> None:
        worker_ignores_stop_signals.training = False
        for signum, handler in self._previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        self._previous = {}

    # --- hooks ----------------------------------------------------------------------
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # replaces Lightning's SIGTERM handler (registered just before); runs before the kNN
        # monitor's on_train_start, so the kNN at initialisation is covered too
        self._module, self._trainer = pl_module, trainer
        pl_module.stop_requested = self.received is not None
        self._setting_up = True
        self.install_handlers()
        worker_ignores_stop_signals.training = True

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs, batch, batch_idx: int) -> None:
        if self._pending is not None or not pl_module.check.stop:
            return
        save_boundary_checkpoint(trainer, self.checkpoint_path)
        position = describe_position(trainer.global_step, trainer.num_training_batches)
        self._pending = self._stopped(trainer, f"after {position}")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._setting_up = False
        self._raise_pending()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending is None and any_rank(trainer, self.received is not None):
            # the signal came between batches (epoch-end work, or before the first step):
            # the newest checkpoint already holds this position (or nothing was trained yet)
            self._pending = self._stopped(trainer, f"before epoch {trainer.current_epoch + 1}")
        self._raise_pending()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._pending = None  # training finished anyway: nothing to resume
        self.restore_handlers()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.restore_handlers()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.restore_handlers()

    # --- helpers --------------------------------------------------------------------
    def _stopped(self, trainer: pl.Trainer, where: str) -> RunStopped:
        signum = self.received if self.received is not None else signal.SIGTERM
        name = signal.Signals(signum).name
        checkpoint = existing(self.checkpoint_path)
        if checkpoint is None:
            kept = "no checkpoint yet: a new run starts from scratch"
        else:
            kept = f"checkpoint: {checkpoint} (step {trainer.global_step})"
        message = f"interrupted by {name} {where}; {kept}"
        return RunStopped(message, exit_code=128 + int(signum), reason="signal",
                          checkpoint=checkpoint, step=trainer.global_step)

    def _raise_pending(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            raise pending
