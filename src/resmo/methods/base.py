"""What every momentum method shares: student, predictor, EMA teacher, ResMo and gaps.

One training step (the same for every method):

1. ``result = method(views, step=step)``: the student runs on every view, the teacher
   (no grad) on the first ``num_teacher_views``; ``result.loss`` is

       L = L_ssl(student, teacher) + lambda(step) * L_resmo(student level, sg[teacher level])

   and ``result.terms`` / ``result.gaps`` hold every named term and the intra gap per level;
2. the caller runs backward and the optimizer step;
3. ``method.after_optimizer_step(result, step=step, total_steps=T)`` updates explicit state
   (queue, centre), then the teacher by EMA with ``momentum = cosine_momentum(step)``.

A subclass defines ``ssl_loss`` and, when it has state, ``update_state``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from resmo.eval.gap import intra_gap
from resmo.losses.resmo import LEVELS, ResMoSettings, residual_momentum_loss
from resmo.momentum.ema import EMATeacher
from resmo.momentum.schedule import cosine_momentum
from resmo.nn.encoder import Encoder
from resmo.validation import check_positive_int, check_unit_interval


@dataclass
class ViewOutputs:
    """Per-view tensors of one branch; ``outputs`` are what the SSL loss compares."""

    features: list[torch.Tensor]
    projections: list[torch.Tensor]
    outputs: list[torch.Tensor]

    def level(self, name: str) -> list[torch.Tensor]:
        return {"features": self.features, "projection": self.projections, "output": self.outputs}[name]


@dataclass
class StepResult:
    """The loss to back-propagate and everything worth logging about the step."""

    loss: torch.Tensor
    student: ViewOutputs
    teacher: ViewOutputs
    terms: dict[str, torch.Tensor] = field(default_factory=dict)
    gaps: dict[str, torch.Tensor] = field(default_factory=dict)


class MomentumMethod(nn.Module):
    """Base class; see the module docstring for the step protocol."""

    name: str = "base"

    def __init__(
        self,
        student: Encoder,
        *,
        predictor: nn.Module | None = None,
        resmo: ResMoSettings | None = None,
        momentum: float = 0.99,
        final_momentum: float = 1.0,
        buffer_policy: str = "own",
        num_teacher_views: int = 2,
    ) -> None:
        super().__init__()
        self.student = student
        self.predictor = predictor
        self.teacher = EMATeacher(student, buffer_policy=buffer_policy)
        self.resmo = resmo if resmo is not None else ResMoSettings()
        self.base_momentum = check_unit_interval("momentum", momentum)
        self.final_momentum = check_unit_interval("final_momentum", final_momentum)
        self.num_teacher_views = check_positive_int("num_teacher_views", num_teacher_views)

    # -- the pieces a subclass defines -------------------------------------------------
    def ssl_loss(self, student: ViewOutputs, teacher: ViewOutputs, *, step: int) -> torch.Tensor:
        raise NotImplementedError

    def update_state(self, result: StepResult) -> None:
        """Explicit state updates after the optimizer step (queue, centre). Default: none."""

    # -- the shared step -----------------------------------------------------------------
    @property
    def backbone(self) -> nn.Module:
        """The student backbone (the encoder that is evaluated and exported)."""
        return self.student.backbone

    def student_parameters(self) -> list[nn.Parameter]:
        """Parameters the optimizer trains: student encoder and predictor."""
        params = list(self.student.parameters())
        if self.predictor is not None:
            params += list(self.predictor.parameters())
        return params

    def encode_student(self, views: Sequence[torch.Tensor]) -> ViewOutputs:
        encoded = [self.student(view) for view in views]
        projections = [e.projection for e in encoded]
        outputs = projections if self.predictor is None else [self.predictor(p) for p in projections]
        return ViewOutputs([e.features for e in encoded], projections, outputs)

    @torch.no_grad()
    def encode_teacher(self, views: Sequence[torch.Tensor]) -> ViewOutputs:
        encoded = [self.teacher(view) for view in views[: self.num_teacher_views]]
        projections = [e.projection for e in encoded]
        return ViewOutputs([e.features for e in encoded], projections, projections)

    def forward(self, views: Sequence[torch.Tensor], *, step: int = 0) -> StepResult:
        if len(views) < max(2, self.num_teacher_views):
            raise ValueError(
                f"{self.name} needs at least {max(2, self.num_teacher_views)} views, got {len(views)}"
            )
        student = self.encode_student(views)
        teacher = self.encode_teacher(views)
        ssl = self.ssl_loss(student, teacher, step=step)
        loss, terms = ssl, {"ssl": ssl.detach()}
        weight = self.resmo.weight_at(step)
        if self.resmo.enabled:
            residual = residual_momentum_loss(
                student.level(self.resmo.level)[: len(teacher.outputs)],
                teacher=teacher.level(self.resmo.level),
                distance=self.resmo.distance,
                temperature=self.resmo.temperature,
            )
            if weight > 0:
                loss = loss + weight * residual
            terms["resmo"] = residual.detach()
            # on the loss's device, built there (no host-to-device copy)
            terms["resmo_weight"] = torch.full((), weight, device=ssl.device)
        terms["loss"] = loss.detach()
        gaps = {
            level: intra_gap(student.level(level)[: len(teacher.outputs)], teacher=teacher.level(level))
            for level in LEVELS
        }
        return StepResult(loss=loss, student=student, teacher=teacher, terms=terms, gaps=gaps)

    def momentum_at(self, step: int, *, total_steps: int) -> float:
        """EMA momentum for ``step``: cosine from ``momentum`` to ``final_momentum``."""
        return cosine_momentum(
            step, total_steps=total_steps, base=self.base_momentum, final=self.final_momentum
        )

    @torch.no_grad()
    def after_optimizer_step(self, result: StepResult, *, step: int, total_steps: int) -> float:
        """State updates, then the EMA update of the teacher. Returns the momentum used."""
        self.update_state(result)
        momentum = self.momentum_at(step, total_steps=total_steps)
        self.teacher.update(self.student, momentum=momentum)
        return momentum


def cross_view_pairs(num_student: int, num_teacher: int) -> list[tuple[int, int]]:
    """(student view, teacher view) pairs of different views: the SSL loss's pairs."""
    return [(s, t) for t in range(num_teacher) for s in range(num_student) if s != t]
