"""Non-finite steps: found before they reach the weights, skipped up to a budget, or the run
stops with a checkpoint.

The loop stacks :func:`all_finite` of the loss terms and gradients (device flags) into the
step's one synchronisation. A bad step's gradients are cleared (torch optimizers then leave
parameters, moments and weight decay alone), its BatchNorm statistics restored
(:class:`BatchNormSnapshot`), and :func:`find_bad_step` names the term or gradient.
:meth:`NonFiniteBudget.after_step` skips it with a warning while at most
``train.max_bad_steps`` were bad; beyond (default 0) the loop checkpoints the last good,
finite weights and stops: ``loss term 'ssl' is nan at step 37 (epoch 2, batch 5)``.
Under ``16-mixed`` the gradient scaler skips overflowing steps itself (counted, not in the
budget); more than ``train.max_scaler_skips_in_a_row`` in a row stops the run as above.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

EXIT_CODE = 1


@dataclass(frozen=True)
class NonFiniteStep:
    """A step whose loss term ``term`` (or gradient: ``term == "gradient"``, ``detail`` the
    parameter) was ``value`` (nan / inf / -inf); ``detail`` may say another process saw it."""

    step: int
    epoch: int
    batch: int
    term: str
    value: float
    detail: str = ""

    def describe(self) -> str:
        """``"loss term 'ssl' is nan at step 12 (epoch 1, batch 5)"``."""
        where = f"at step {self.step} (epoch {self.epoch + 1}, batch {self.batch + 1})"
        if self.term == "gradient":
            what = f"the gradient of '{self.detail}' is {_fmt(self.value)}" if self.detail else "a gradient is not finite"
            return f"{what} {where}"
        return f"{self.detail} {where}" if self.detail else f"loss term '{self.term}' is {_fmt(self.value)} {where}"

    def as_dict(self) -> dict:
        return {**asdict(self), "value": _fmt(self.value)}


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else f"{value:g}"


def _finite_flags(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """One flag per tensor from its max-abs norm (one fused ``torch._foreach_norm``): NaN /
    infinite exactly when the tensor holds NaN / inf (a 2-norm could overflow on large but
    finite values)."""
    norms = torch._foreach_norm([t.detach() for t in tensors], float("inf"))
    return torch.isfinite(torch.stack([norm.float() for norm in norms]))


def all_finite(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """A 0-dim bool tensor on the tensors' device (no host read): all of them are finite.
    ``tensors`` must not be empty."""
    return _finite_flags(tensors).all()


def first_non_finite_term(terms: Mapping[str, torch.Tensor], *, total: str = "loss") -> tuple[str, float] | None:
    """``(name, value)`` of the first term that is not finite, or ``None``; a component
    (``ssl``, ``resmo``, ...) is named before the ``total`` it feeds: it says where the
    problem started."""
    if not terms:
        return None
    names = sorted(terms, key=lambda name: name == total)  # stable: the total goes last
    values = torch.stack([terms[name].detach().float().reshape(()) for name in names])
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return None
    position = int((~finite).nonzero()[0])
    return names[position], float(values[position])


def first_non_finite_gradient(named_parameters: Iterable[tuple[str, nn.Parameter]]) -> tuple[str, float] | None:
    """``(name, value)`` for the first parameter whose gradient is not finite, or ``None``."""
    named = [(name, p.grad) for name, p in named_parameters if p.grad is not None]
    if not named:
        return None
    flags = _finite_flags([grad for _, grad in named])
    if bool(flags.all()):
        return None
    name, grad = named[int((~flags).nonzero()[0])]
    return name, float(grad[~torch.isfinite(grad)].reshape(-1)[0])


def find_bad_step(step: int, epoch: int, batch: int, terms: Mapping[str, torch.Tensor] | None,
                  named_parameters: Iterable[tuple[str, nn.Parameter]]) -> NonFiniteStep:
    """The step's bad term (``terms`` given: a term was not finite) or else its bad gradient
    (extra host reads: bad steps only)."""
    if terms is not None:
        found = first_non_finite_term(terms)
        if found is None:
            return NonFiniteStep(step, epoch, batch, "loss", float("nan"),
                                 detail="a loss term is not finite on another process")
        return NonFiniteStep(step, epoch, batch, *found)
    name, value = first_non_finite_gradient(named_parameters) or ("", float("nan"))
    return NonFiniteStep(step, epoch, batch, "gradient", value, detail=name)


def clear_gradients(parameters: Iterable[nn.Parameter]) -> None:
    for parameter in parameters:
        parameter.grad = None


def tensors_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every floating-point tensor holds only finite values."""
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


class BatchNormSnapshot:
    """Copies of the BatchNorm running statistics of ``module``: :meth:`take` before the
    forward pass (which updates them), :meth:`restore` after a skipped step."""

    def __init__(self, module: nn.Module) -> None:
        self.buffers = [
            buffer for layer in module.modules() if isinstance(layer, nn.modules.batchnorm._BatchNorm)
            for buffer in (layer.running_mean, layer.running_var, layer.num_batches_tracked)
            if buffer is not None
        ]
        self.copies = [buffer.detach().clone() for buffer in self.buffers]

    def take(self) -> None:
        if self.buffers:
            torch._foreach_copy_(self.copies, self.buffers)

    def restore(self) -> None:
        if self.buffers:
            with torch.no_grad():
                torch._foreach_copy_(self.buffers, self.copies)


class NonFiniteBudget:
    def __init__(self, *, max_bad_steps: int = 0, max_scaler_skips_in_a_row: int = 24) -> None:
        self.max_bad_steps, self.max_scaler_skips_in_a_row = max_bad_steps, max_scaler_skips_in_a_row
        self.bad_steps: list[dict] = []
        self.scaler_skipped_steps = self.scaler_skips_in_a_row = 0

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
        """One line: why the run stops after step ``step`` (``bad``: its bad term, if any) and
        what was kept (``kept``: the checkpoint)."""
        if bad is None:
            return (
                f"stopped: the fp16 gradient scaler skipped {self.scaler_skips_in_a_row} steps in a row "
                f"(gradients overflow at every loss scale; more than "
                f"train.max_scaler_skips_in_a_row={self.max_scaler_skips_in_a_row}) at step {step}; "
                f"{kept}. Start a new run (--out NEW) with --precision bf16-mixed or 32-true, or a lower "
                "optimizer.lr (a resume keeps the run's settings)"
            )
        budget = (f"more than train.max_bad_steps={self.max_bad_steps} bad steps"
                  if self.max_bad_steps else "train.max_bad_steps=0")
        return (
            f"stopped: {bad.describe()} ({budget}); {kept}; the bad step was not applied. "
            "Set train.max_bad_steps=N to skip up to N such steps and continue with --resume auto, "
            "or check the data, or lower optimizer.lr in a new run (--out NEW)"
        )

    def state_dict(self) -> dict:
        return {"bad_steps": list(self.bad_steps), "scaler_skipped_steps": self.scaler_skipped_steps,
                "scaler_skips_in_a_row": self.scaler_skips_in_a_row}

    def load_state_dict(self, state: dict) -> None:
        self.bad_steps = list(state["bad_steps"])
        self.scaler_skipped_steps = int(state["scaler_skipped_steps"])
        self.scaler_skips_in_a_row = int(state["scaler_skips_in_a_row"])
