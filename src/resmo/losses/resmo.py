"""Residual momentum (ResMo; Pham et al., arXiv 2211.09861): pull the student toward the
teacher on the *same* view.

For views ``v = 1..V`` with student tensors ``s_v`` and teacher tensors ``t_v`` at one level:

    L_resmo = (1 / V) * sum_v mean_batch d(s_v, sg[t_v])

with the distance ``d``:

- ``"cosine"`` (default):   d = 2 - 2 cos(s, t)
- ``"mse"``:                d = mean_dims (normalize(s) - normalize(t))^2  = (2 - 2 cos) / D
- ``"kd"``:                 d = -sum_k softmax(t / T)[k] log_softmax(s / T)[k]
  (knowledge-distillation cross-entropy, which the paper reports as useless for SSL)

``sg`` is stop-gradient: the teacher tensors are detached, so only the student learns. The
total loss is ``L_ssl + weight(step) * L_resmo`` where ``weight`` ramps linearly from 0 over
``warmup_epochs`` when that is set (:class:`ResMoSettings`). ``d`` is computed in float32 even under autocast
(:mod:`resmo.precision`): ``2 - 2 cos`` near 0 is below bfloat16's resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F

from resmo.momentum.schedule import linear_warmup
from resmo.precision import at_least_float32, autocast_off
from resmo.settings import FiniteNumber, Section, one_of, setting

LEVELS = ("output", "projection", "features")
DISTANCES = ("cosine", "mse", "kd")


def residual_momentum_loss(
    student: Sequence[torch.Tensor],
    *,
    teacher: Sequence[torch.Tensor],
    distance: str = "cosine",
    temperature: float = 0.1,
) -> torch.Tensor:
    """The ResMo term for same-view lists ``student[v]`` and ``teacher[v]`` (see module doc);
    ``distance`` and ``temperature`` are checked where they are read (:class:`ResMoSettings`)."""
    if len(student) != len(teacher) or not student:
        raise ValueError(
            f"ResMo pairs views one to one: got {len(student)} student and {len(teacher)} teacher views"
        )
    per_view = [
        _distance(s, t.detach(), distance, temperature) for s, t in zip(student, teacher, strict=True)
    ]
    return torch.stack(per_view).mean()


def _distance(student: torch.Tensor, teacher: torch.Tensor, distance: str, temperature: float):
    with autocast_off(student.device):
        student, teacher = at_least_float32(student), at_least_float32(teacher)
        if distance == "cosine":
            return (2.0 - 2.0 * F.cosine_similarity(student, teacher, dim=-1)).mean()
        if distance == "mse":
            return F.mse_loss(F.normalize(student, dim=-1), F.normalize(teacher, dim=-1))
        if distance == "kd":
            return kd_cross_entropy(student, teacher=teacher, temperature=temperature)
    allowed = ", ".join(sorted(DISTANCES))
    raise ValueError(f"resmo.distance={distance!r} is not valid; allowed values: {allowed}")


def kd_cross_entropy(
    student_logits: torch.Tensor, *, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Knowledge distillation (Hinton et al. 2015): ``-sum softmax(t/T) log_softmax(s/T)``,
    ``T > 0``."""
    target = F.softmax(teacher.detach() / temperature, dim=-1)
    return -(target * F.log_softmax(student_logits / temperature, dim=-1)).sum(dim=-1).mean()


class ResMoSettings(Section):
    """How a method adds the ResMo term: the recipe's ``resmo:`` section and the methods'
    ``resmo=`` argument (one type). ``weight=0`` turns it off.

    - ``weight``: lambda, >= 0 (default 1.0 here; a method built without this section, or a
      recipe that sets no weight, takes the method's default, :mod:`resmo.losses.default_weight`);
    - ``level``: which same-view tensors are compared: ``"output"`` (what the SSL loss
      compares: the student's prediction or prototypes vs the teacher's projection or
      prototypes), ``"projection"`` or ``"features"`` (backbone);
    - ``distance``: ``"cosine"``, ``"mse"`` or ``"kd"``; ``temperature`` is used by ``"kd"``;
    - ``warmup_epochs``: linear ramp of lambda from 0 over this many epochs (0 = no ramp),
      ``round(warmup_epochs x steps_per_epoch)`` optimizer steps (:meth:`weight_at`).

    Frozen; a bad value raises one ``ValueError`` line (``resmo.weight=-1.0 is not valid;
    allowed values: a number >= 0``).
    """

    key_prefix: ClassVar[str] = "resmo"

    weight: FiniteNumber = setting(1.0, "a number >= 0", ge=0)
    level: one_of(LEVELS) = "output"
    distance: one_of(DISTANCES) = "cosine"
    temperature: FiniteNumber = setting(0.1, "a number > 0", gt=0)
    warmup_epochs: FiniteNumber = setting(0.0, "a number >= 0", ge=0)

    @property
    def enabled(self) -> bool:
        return self.weight > 0

    def warmup_steps(self, steps_per_epoch: int) -> int:
        """The ramp's length in optimizer steps: ``round(warmup_epochs x steps_per_epoch)``."""
        return round(self.warmup_epochs * steps_per_epoch)

    def weight_at(self, step: int, steps_per_epoch: int = 1) -> float:
        """lambda at optimizer step ``step`` (0-based) of a run with ``steps_per_epoch`` steps
        per epoch: ``weight x min(1, step / warmup_steps)`` (``weight`` without a ramp)."""
        return linear_warmup(step, warmup_steps=self.warmup_steps(steps_per_epoch), start=0.0, end=self.weight)
