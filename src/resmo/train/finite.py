"""Finding non-finite numbers in a training step before they reach the weights.

- :func:`all_finite`: one device flag (no host synchronisation) that every tensor of a
  list is finite; the training step fuses the flags of its loss terms and gradients with
  its stop request into one tensor and reads it once (see resmo.train.module);
- :func:`first_non_finite_term`: the first named loss term (``loss``, ``ssl``, ``resmo``,
  ...) that is NaN or infinite, named once the step's fused check found one (the
  step's gradients are then cleared: nothing of it reaches the weights);
- :func:`first_non_finite_gradient`: the first parameter with a NaN / infinite gradient,
  checked after backward and before the optimizer step;
- :class:`NonFiniteStep`: what went wrong at which step, for messages and the summary;
- :class:`BatchNormSnapshot`: BatchNorm running statistics are updated *during* the
  forward pass, so a skipped step restores them from a copy taken before it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class NonFiniteStep:
    """A step whose loss term (``term``) or gradient (``term == "gradient"``) was not finite.

    ``value`` is the term's value (``nan``, ``inf``, ``-inf``); ``detail`` names the
    parameter for gradients, or says that another process saw it.
    """

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
        if self.detail:
            return f"{self.detail} {where}"
        return f"loss term '{self.term}' is {_fmt(self.value)} {where}"

    def as_dict(self) -> dict:
        return {**asdict(self), "value": _fmt(self.value)}


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else f"{value:g}"


def all_finite(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """A 0-dim bool tensor on the tensors' device: whether all of them are finite.

    One fused max-abs norm per tensor (``torch._foreach_norm`` with ``inf``), no read by the
    host. The max-abs norm is NaN / infinite exactly when a tensor holds NaN / inf (a
    2-norm could overflow on large but finite values). ``tensors`` must not be empty.
    """
    norms = torch._foreach_norm([t.detach() for t in tensors], float("inf"))
    return torch.isfinite(torch.stack([norm.float() for norm in norms])).all()


def first_non_finite_term(terms: Mapping[str, torch.Tensor], *, total: str = "loss") -> tuple[str, float] | None:
    """``(name, value)`` of the first term that is not finite, or ``None`` (one device sync).

    A component (``ssl``, ``resmo``, ...) is named in preference to the ``total`` it feeds,
    whatever the order of ``terms``: the component says where the problem started.
    """
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
    """``(name, value)`` for the first parameter whose gradient is not finite, or ``None``.

    One fused max-abs (infinity) norm over all gradients and a single device sync when all
    are finite. The max-abs norm is NaN / infinite exactly when a gradient holds NaN / inf
    (a 2-norm could overflow on large but finite gradients).
    """
    named = [(name, p.grad) for name, p in named_parameters if p.grad is not None]
    if not named:
        return None
    norms = torch._foreach_norm([grad for _, grad in named], float("inf"))
    flags = torch.isfinite(torch.stack([norm.float() for norm in norms]))
    if bool(flags.all()):
        return None
    name, grad = named[int((~flags).nonzero()[0])]
    bad = grad[~torch.isfinite(grad)]
    return name, float(bad.reshape(-1)[0])


def clear_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Set every gradient to ``None``: torch optimizers then leave those parameters alone
    (no update, no weight decay, no momentum or Adam moment change)."""
    for parameter in parameters:
        parameter.grad = None


def tensors_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every floating-point tensor holds only finite values."""
    return all(bool(torch.isfinite(t).all()) for t in tensors if t.is_floating_point())


class BatchNormSnapshot:
    """Copies of every BatchNorm layer's running statistics in ``module``.

    :meth:`take` before the forward pass (cheap: a few small tensors per layer),
    :meth:`restore` to undo what a skipped step's forward pass did to them.
    """

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
