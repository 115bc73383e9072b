"""What every momentum method shares: student, predictor, EMA teacher, ResMo and gaps.

One training step (the same for every method):

1. ``result = method(views, step=step)``: the student runs on every view, the teacher
   (no grad) on the first ``num_teacher_views``; ``result.loss`` is

       L = L_ssl(student, teacher) + lambda(step) * L_resmo(student level, sg[teacher level])

   and ``result.terms`` / ``result.gaps`` hold every named term and the intra gap per level;
2. the caller runs backward, then (gradients final: after the DDP all-reduce and, under
   fp16, after the scaler's ``unscale_``) ``method.before_optimizer_step(step=step,
   epoch=epoch)``, which edits the gradients the way the method's reference loop does
   (DINO: per-parameter clipping, then the prototype layer's gradients cancelled during
   the first epochs; a no-op for the other methods), and, when
   ``method.weight_decay_at(step, total_steps=T)`` is not ``None``,
   ``resmo.optim.optimizers.set_weight_decay(optimizer, value)``; then the optimizer step;
3. ``method.after_optimizer_step(result, step=step, total_steps=T)`` updates explicit state
   (queue, centre), then the teacher by EMA with ``momentum = cosine_momentum(step)``.

A subclass defines ``ssl_loss`` and, when it has state, ``update_state``; for the loop-side
steps of item 2 it sets ``gradient_clip_norm`` and overrides ``weight_decay_at`` or
``before_optimizer_step`` (DINO's frozen last layer lives in resmo.methods.dino). A method whose SSL loss has named
parts (DenseCL: global and dense) overrides ``ssl_loss_and_parts``; one whose ResMo term
compares more than one tensor per view (DenseCL: also the dense grids) overrides
``residual_loss``. ResMo and the gaps pair the first ``min(student views, teacher views)``
views one to one (DenseCL's student sees one view, the teacher two).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from resmo.losses.default_weight import default_weight
from resmo.losses.gap import intra_gap
from resmo.losses.resmo import LEVELS, ResMoSettings, residual_momentum_loss
from resmo.momentum.ema import EMATeacher
from resmo.momentum.schedule import cosine_momentum
from resmo.nn.encoder import Encoder
from resmo.validation import (
    check_positive_int,
    check_unit_interval,
)


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
    #: Per-parameter gradient-norm threshold of :meth:`before_optimizer_step` (DINO's
    #: ``--clip_grad``; see :func:`clip_gradients_per_parameter`); 0 = no clipping.
    gradient_clip_norm: float = 0.0

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
        steps_per_epoch: int = 1,
    ) -> None:
        super().__init__()
        self.student = student
        self.predictor = predictor
        self.teacher = EMATeacher(student, buffer_policy=buffer_policy)
        self.resmo = resmo if resmo is not None else ResMoSettings(weight=default_weight(self.name))
        self.base_momentum = check_unit_interval("momentum", momentum)
        self.final_momentum = check_unit_interval("final_momentum", final_momentum)
        self.num_teacher_views = check_positive_int("num_teacher_views", num_teacher_views)
        #: Optimizer steps per epoch of the run: the length of ResMo's epoch-based warm-up.
        self.steps_per_epoch = check_positive_int("steps_per_epoch", steps_per_epoch)

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
        """Parameters the optimizer trains: student encoder and predictor, without frozen
        ones (``requires_grad=False``, e.g. MoCo v3's fixed random ViT patch embedding)."""
        params = list(self.student.parameters())
        if self.predictor is not None:
            params += list(self.predictor.parameters())
        return [p for p in params if p.requires_grad]

    @torch.no_grad()
    def before_optimizer_step(self, *, step: int, epoch: int) -> None:
        """Gradient edits between backward and the optimizer step (item 2 of the module
        docstring): DINO's ``clip_gradients`` on every student parameter when
        ``gradient_clip_norm`` > 0 (facebookresearch/dino ``train_one_epoch``). ``step`` is the
        global optimizer step, ``epoch`` the epoch from 0."""
        if self.gradient_clip_norm > 0:
            clip_gradients_per_parameter(self.student_parameters(), self.gradient_clip_norm)

    def weight_decay_at(self, step: int, *, total_steps: int) -> float | None:
        """Weight decay of the regularised parameter group at ``step``; ``None`` (default)
        keeps the optimizer's constant ``weight_decay``."""
        return None

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

    def ssl_loss_and_parts(
        self, student: ViewOutputs, teacher: ViewOutputs, *, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_ssl`` and its named parts, logged (detached) next to ``ssl``. Default:
        :meth:`ssl_loss` and no parts."""
        return self.ssl_loss(student, teacher, step=step), {}

    def residual_loss(self, student: ViewOutputs, teacher: ViewOutputs) -> torch.Tensor:
        """``L_resmo`` (:func:`~resmo.losses.resmo.residual_momentum_loss`) at
        ``resmo.level`` over the same-view pairs of :func:`paired_views`."""
        views = paired_views(student, teacher)
        return residual_momentum_loss(
            student.level(self.resmo.level)[:views],
            teacher=teacher.level(self.resmo.level)[:views],
            distance=self.resmo.distance,
            temperature=self.resmo.temperature,
        )

    def forward(self, views: Sequence[torch.Tensor], *, step: int = 0) -> StepResult:
        if len(views) < max(2, self.num_teacher_views):
            raise ValueError(
                f"{self.name} needs at least {max(2, self.num_teacher_views)} views, got {len(views)}"
            )
        student = self.encode_student(views)
        teacher = self.encode_teacher(views)
        ssl, parts = self.ssl_loss_and_parts(student, teacher, step=step)
        loss, terms = ssl, {"ssl": ssl.detach(), **{name: part.detach() for name, part in parts.items()}}
        weight = self.resmo.weight_at(step, self.steps_per_epoch)
        if self.resmo.enabled:
            residual = self.residual_loss(student, teacher)
            if weight > 0:
                loss = loss + weight * residual
            terms["resmo"] = residual.detach()
            # on the loss's device, built there (no host-to-device copy)
            terms["resmo_weight"] = torch.full((), weight, device=ssl.device)
        terms["loss"] = loss.detach()
        paired = paired_views(student, teacher)
        gaps = {
            level: intra_gap(student.level(level)[:paired], teacher=teacher.level(level)[:paired])
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


def paired_views(student: ViewOutputs, teacher: ViewOutputs) -> int:
    """How many leading views ResMo and the gaps pair one to one: the views both branches
    encoded (the teacher's views for every method but DenseCL, whose student sees one)."""
    return min(len(student.outputs), len(teacher.outputs))


def cross_view_pairs(num_student: int, num_teacher: int) -> list[tuple[int, int]]:
    """(student view, teacher view) pairs of different views: the SSL loss's pairs."""
    return [(s, t) for t in range(num_teacher) for s in range(num_student) if s != t]


#: DINO's ``clip_gradients`` adds this to each norm before dividing (utils.py).
CLIP_EPSILON = 1e-6


@torch.no_grad()
def clip_gradients_per_parameter(
    parameters: Iterable[nn.Parameter], max_norm: float
) -> list[torch.Tensor]:
    """Clip each parameter's gradient norm separately (DINO, facebookresearch/dino
    ``utils.py``, ``clip_gradients(model, clip)``; solo-learn's ``DINO.clip_gradients``):

        c_p = max_norm / (||g_p||_2 + 1e-6);   g_p <- c_p * g_p   if c_p < 1

    for every parameter ``p`` with a gradient. Unlike
    ``torch.nn.utils.clip_grad_norm_`` (one coefficient from the norm of all gradients
    together), a parameter with a small gradient is never scaled down because another one
    has a large gradient. Computed on the device, ``min(c_p, 1)`` multiplied in (``* 1.0``
    is exact), so nothing is read back to the host. Multi-tensor: the norms are one
    ``torch._foreach_norm``, the coefficients one vector computation on the stacked norms
    (per device and dtype), the scaling one ``torch._foreach_mul_``; the values are those of
    the per-parameter loop, bit for bit. Returns the gradient norms before clipping (device
    tensors; DINO returns them as floats for logging). ``max_norm`` > 0: the method
    calls this only for a positive ``gradient_clip_norm``, checked when it was built.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return []
    norms = torch._foreach_norm(grads)
    parts: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, norm in enumerate(norms):
        parts.setdefault((norm.device, norm.dtype), []).append(i)
    for part in parts.values():
        coefficients = (max_norm / (torch.stack([norms[i] for i in part]) + CLIP_EPSILON)).clamp(max=1.0)
        torch._foreach_mul_([grads[i] for i in part], coefficients.unbind(0))
    return list(norms)
