"""A run that ends early on purpose (a signal, too many non-finite steps), at a batch boundary."""

from __future__ import annotations

from pathlib import Path


class RunStopped(Exception):  # noqa: N818 - a stop on purpose, not an error
    """Training ended early on purpose; ``message`` is one line, ``exit_code`` for the shell.

    ``reason`` is ``"signal"`` or ``"non-finite"``; ``checkpoint`` is the file to continue
    from (``None`` when none was written yet); ``step`` the global step it holds.
    """

    def __init__(self, message: str, *, exit_code: int, reason: str,
                 checkpoint: Path | None = None, step: int | None = None) -> None:
        super().__init__(message)
        self.message, self.exit_code, self.reason = message, exit_code, reason
        self.checkpoint, self.step = checkpoint, step
