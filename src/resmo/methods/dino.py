"""DINO (Caron et al. 2021, Alg. 1) with multi-crop, with the training-loop details of
facebookresearch/dino ``main_dino.py``.

Student: backbone -> DINO head on every crop; teacher: EMA copy on the global crops
(the first ``num_teacher_views``). Loss: :func:`resmo.losses.dino.dino_cross_entropy`
with the running centre and a teacher temperature warmed up linearly

    tau_t(step) = warmup_teacher_temperature -> teacher_temperature over
                  ``teacher_temperature_warmup_epochs`` (x ``steps_per_epoch`` steps)

The defaults are ``main_dino.py``'s: ``--teacher_temp 0.04``, ``--warmup_teacher_temp 0.04``,
``--warmup_teacher_temp_epochs 0`` (no warm-up), ``--student_temp 0.1``,
``--momentum_teacher 0.996``.

What the reference loop (``train_one_epoch``) does around the optimizer step, exposed for
the training loop (see :mod:`resmo.methods.base`, item 2):

- ``gradient_clip_norm`` (``--clip_grad 3.0``): after backward, every student parameter's
  gradient is clipped to norm ``3.0`` on its own (``utils.clip_gradients``,
  :func:`~resmo.methods.base.clip_gradients_per_parameter`), 0 disables;
- ``freeze_last_layer_epochs`` (``--freeze_last_layer 1``): during the first epochs the
  prototype layer's gradients are cancelled (``utils.cancel_gradients_last_layer``,
  :func:`cancel_last_layer_gradients`);
- ``weight_decay_start`` -> ``weight_decay_end`` (``--weight_decay 0.04``,
  ``--weight_decay_end 0.4``): the weight decay of the regularised group follows
  ``wd(step) = end + (start - end) (1 + cos(pi step / total_steps)) / 2`` per iteration
  (``utils.cosine_scheduler``, :func:`~resmo.momentum.schedule.cosine_schedule`);
  ``weight_decay_start=None`` keeps the optimizer's constant weight decay. (The reference
  README's ResNet-50 run uses a constant ``1e-4``: ``weight_decay_start = weight_decay_end
  = 1e-4``.)

ResMo compares the global crops, the only ones the teacher sees. For DINO the
``"output"`` and ``"projection"`` levels are both the prototype logits.
"""

from __future__ import annotations

import torch
from torch import nn

from resmo.losses.dino import DinoCenter, dino_cross_entropy
from resmo.losses.resmo import ResMoSettings
from resmo.methods.base import MomentumMethod, StepResult, ViewOutputs
from resmo.methods.registry import METHODS
from resmo.momentum.schedule import cosine_schedule, linear_warmup
from resmo.nn.encoder import Encoder
from resmo.nn.heads import DinoHead
from resmo.validation import check_non_negative, check_non_negative_int, check_positive


class DINO(MomentumMethod):
    name = "dino"

    def __init__(
        self,
        student: Encoder,
        *,
        num_prototypes: int,
        student_temperature: float,
        teacher_temperature: float,
        warmup_teacher_temperature: float,
        teacher_temperature_warmup_epochs: float,
        center_momentum: float,
        gradient_clip_norm: float = 0.0,
        freeze_last_layer_epochs: int = 0,
        weight_decay_start: float | None = None,
        weight_decay_end: float = 0.4,
        **base_options,
    ) -> None:
        super().__init__(student, predictor=None, **base_options)
        self.student_temperature = check_positive("student_temperature", student_temperature)
        self.teacher_temperature = check_positive("teacher_temperature", teacher_temperature)
        self.warmup_teacher_temperature = check_positive(
            "warmup_teacher_temperature", warmup_teacher_temperature
        )
        self.teacher_temperature_warmup_epochs = check_non_negative(
            "teacher_temperature_warmup_epochs", teacher_temperature_warmup_epochs
        )
        self.center = DinoCenter(num_prototypes, center_momentum)
        self.gradient_clip_norm = check_non_negative("gradient_clip_norm", gradient_clip_norm)
        self.freeze_last_layer_epochs = check_non_negative_int(
            "freeze_last_layer_epochs", freeze_last_layer_epochs
        )
        self.weight_decay_start = (
            None if weight_decay_start is None
            else check_non_negative("weight_decay_start", weight_decay_start)
        )
        self.weight_decay_end = check_non_negative("weight_decay_end", weight_decay_end)

    @property
    def teacher_temperature_warmup_steps(self) -> int:
        """The teacher-temperature ramp in optimizer steps: ``round(epochs x steps_per_epoch)``."""
        return round(self.teacher_temperature_warmup_epochs * self.steps_per_epoch)

    def teacher_temperature_at(self, step: int) -> float:
        return linear_warmup(
            step,
            warmup_steps=self.teacher_temperature_warmup_steps,
            start=self.warmup_teacher_temperature,
            end=self.teacher_temperature,
        )

    @torch.no_grad()
    def before_optimizer_step(self, *, step: int, epoch: int) -> None:
        """In the order of DINO's ``train_one_epoch``: ``clip_gradients`` (the base class),
        then ``cancel_gradients_last_layer`` (:func:`cancel_last_layer_gradients`)."""
        super().before_optimizer_step(step=step, epoch=epoch)
        cancel_last_layer_gradients(self, epoch)

    def last_layer_parameters(self) -> list[nn.Parameter]:
        """The student's prototype layer (DINO's ``last_layer``), frozen during the first
        ``freeze_last_layer_epochs``."""
        return list(self.student.projector.prototypes.parameters())

    def weight_decay_at(self, step: int, *, total_steps: int) -> float | None:
        """DINO's cosine weight-decay schedule (module docstring); ``None`` when off."""
        if self.weight_decay_start is None:
            return None
        return cosine_schedule(step, total_steps, self.weight_decay_start, self.weight_decay_end)

    def ssl_loss(self, student: ViewOutputs, teacher: ViewOutputs, *, step: int) -> torch.Tensor:
        return dino_cross_entropy(
            student.outputs,
            teacher_logits=teacher.outputs,
            center=self.center.center,
            student_temperature=self.student_temperature,
            teacher_temperature=self.teacher_temperature_at(step),
        )

    def update_state(self, result: StepResult) -> None:
        self.center.update(result.teacher.outputs)


@METHODS.register("dino")
def dino(
    backbone: nn.Module,
    *,
    resmo: ResMoSettings | None = None,
    hidden_dim: int = 2048,
    bottleneck_dim: int = 256,
    num_prototypes: int = 65536,
    head_batch_norm: bool = False,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.04,
    warmup_teacher_temperature: float = 0.04,
    teacher_temperature_warmup_epochs: float = 0.0,
    center_momentum: float = 0.9,
    gradient_clip_norm: float = 3.0,
    freeze_last_layer_epochs: int = 1,
    weight_decay_start: float | None = 0.04,
    weight_decay_end: float = 0.4,
    momentum: float = 0.996,
    **base_options,
) -> DINO:
    head = DinoHead(
        backbone.feature_dim, hidden_dim, bottleneck_dim, num_prototypes, batch_norm=head_batch_norm
    )
    return DINO(
        Encoder(backbone, head),
        num_prototypes=num_prototypes,
        student_temperature=student_temperature,
        teacher_temperature=teacher_temperature,
        warmup_teacher_temperature=warmup_teacher_temperature,
        teacher_temperature_warmup_epochs=teacher_temperature_warmup_epochs,
        center_momentum=center_momentum,
        gradient_clip_norm=gradient_clip_norm,
        freeze_last_layer_epochs=freeze_last_layer_epochs,
        weight_decay_start=weight_decay_start,
        weight_decay_end=weight_decay_end,
        resmo=resmo,
        momentum=momentum,
        **base_options,
    )


def cancel_last_layer_gradients(method: DINO, epoch: int) -> None:
    """DINO's ``cancel_gradients_last_layer(epoch, model, freeze_last_layer)``
    (facebookresearch/dino ``utils.py``): while ``epoch < method.freeze_last_layer_epochs``
    the gradients of ``method.last_layer_parameters()`` (DINO's ``last_layer``: here the
    prototype layer) are set to ``None``, so the optimizer skips those parameters
    entirely (no update, no weight decay, no momentum) in the first epochs."""
    if epoch >= method.freeze_last_layer_epochs:
        return
    for parameter in method.last_layer_parameters():
        parameter.grad = None
