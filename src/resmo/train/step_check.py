"""What a training step's one host synchronisation reads, and what it decides.

After backward the loop stacks three device flags (:func:`step_flags`), max-reduces them
over processes and reads them once (resmo.train.loop), so every process decides alike:

- a gradient that is not finite while every loss term is, under ``16-mixed`` / ``16``:
  the fp16 gradient scaler skips the step itself and lowers its scale
  (:func:`scaler_skips`; counted, outside the non-finite budget);
- otherwise a term or gradient that is not finite: a bad step, cleared and named
  (resmo.train.non_finite);
- "stop requested": a signal reached some process (resmo.train.interrupt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from resmo.train.non_finite import NonFiniteStep, all_finite

#: Precisions whose gradient scaler skips steps with non-finite gradients by itself.
SCALED_PRECISIONS = ("16-mixed", "16")


@dataclass
class StepCheck:
    """What the step's one synchronisation decided (the same on every process)."""

    bad: NonFiniteStep | None = None  # a term or gradient was not finite
    scaler_skipped: bool = False  # the fp16 gradient scaler skipped the step (overflow)
    stop: bool = False  # some process asked to stop after this step (a signal)

    @property
    def applied(self) -> bool:
        return self.bad is None and not self.scaler_skipped


def step_flags(terms_finite: torch.Tensor, gradients: Sequence[torch.Tensor], *,
               stop_requested: bool) -> torch.Tensor:
    """``[term not finite, gradient not finite, stop requested]`` as a float tensor on the
    device of ``terms_finite`` (no host read)."""
    stop = torch.full((), stop_requested, dtype=torch.bool, device=terms_finite.device)
    return torch.stack([~terms_finite, ~all_finite(gradients), stop]).float()


def scaler_skips(bad_terms: bool, bad_gradients: bool, precision: str) -> bool:
    """Whether the gradient scaler of ``precision`` skips this step: gradients overflowed
    from finite terms (a term that is not finite makes a bad step at any precision)."""
    return bad_gradients and not bad_terms and precision in SCALED_PRECISIONS
