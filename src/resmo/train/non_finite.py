"""What happens after a non-finite step: skip it (up to a budget) or stop with a checkpoint.

The loop (resmo.train.loop) never applies a step whose loss terms or gradients are NaN /
infinite and hands the step's check to :meth:`NonFiniteBudget.after_step`:

- while at most ``train.max_bad_steps`` steps were bad, the step stays skipped (no weight,
  EMA, queue or BatchNorm-statistics change) with a warning;
- beyond that (the default budget is 0: the first bad step), the loop writes a checkpoint
  at this batch boundary (the weights of the last good step, checked to be finite) and
  stops the run with :meth:`NonFiniteBudget.stop_message`, which names the step and the
  term, e.g. ``loss term 'ssl' is nan at step 37 (epoch 2, batch 5)``. Continuing from that
  checkpoint goes on with the next batch (the bad one stays skipped).

Under ``16-mixed`` the gradient scaler skips steps whose gradients overflow and lowers
its scale: normal while the scale settles, so such steps are counted
(``scaler_skipped_steps``, in checkpoints, logs and ``summary.json``) but do not use the
budget. More than ``train.max_scaler_skips_in_a_row`` of them in a row means the loss scale
collapsed (the weights are frozen): the run stops as above.
"""

from __future__ import annotations

import warnings

from resmo.train.finite import NonFiniteStep

EXIT_CODE = 1


class NonFiniteBudget:
    def __init__(self, *, max_bad_steps: int = 0, max_scaler_skips_in_a_row: int = 24) -> None:
        self.max_bad_steps = max_bad_steps
        self.max_scaler_skips_in_a_row = max_scaler_skips_in_a_row
        self.bad_steps: list[dict] = []
        self.scaler_skipped_steps = 0
        self.scaler_skips_in_a_row = 0

    def after_step(self, bad: NonFiniteStep | None, scaler_skipped: bool, *, warn: bool) -> bool:
        """Count the step; ``True`` when the run must stop (see :meth:`stop_message`)."""
        self.scaler_skips_in_a_row = self.scaler_skips_in_a_row + 1 if scaler_skipped else 0
        self.scaler_skipped_steps += int(scaler_skipped)
        if bad is not None:
            self.bad_steps.append(bad.as_dict())
            if len(self.bad_steps) > self.max_bad_steps:
                return True
            if warn:
                warnings.warn(f"skipped a step: {bad.describe()} ({len(self.bad_steps)} of at most "
                              f"{self.max_bad_steps} bad steps, train.max_bad_steps)", stacklevel=2)
        return self.scaler_skips_in_a_row > self.max_scaler_skips_in_a_row

    def stop_message(self, bad: NonFiniteStep | None, step: int, kept: str) -> str:
        """Why the run stops after step ``step`` (``bad``: the step's bad term, if any) and
        what was kept (``kept``: the checkpoint), in one line."""
        if bad is None:
            return (
                f"stopped: the fp16 gradient scaler skipped {self.scaler_skips_in_a_row} steps in a row "
                f"(gradients overflow at every loss scale; more than "
                f"train.max_scaler_skips_in_a_row={self.max_scaler_skips_in_a_row}) at step {step}; "
                f"{kept}. Use --precision bf16-mixed or 32-true, or lower optimizer.lr, then continue "
                "with --resume auto"
            )
        budget = (f"more than train.max_bad_steps={self.max_bad_steps} bad steps"
                  if self.max_bad_steps else "train.max_bad_steps=0")
        return (
            f"stopped: {bad.describe()} ({budget}); {kept}; the bad step was not applied. "
            "Lower optimizer.lr, check the data, or set train.max_bad_steps=N to skip up to N "
            "such steps, then continue with --resume auto"
        )

    def state_dict(self) -> dict:
        return {"bad_steps": list(self.bad_steps), "scaler_skipped_steps": self.scaler_skipped_steps,
                "scaler_skips_in_a_row": self.scaler_skips_in_a_row}

    def load_state_dict(self, state: dict) -> None:
        self.bad_steps = list(state["bad_steps"])
        self.scaler_skipped_steps = int(state["scaler_skipped_steps"])
        self.scaler_skips_in_a_row = int(state["scaler_skips_in_a_row"])
