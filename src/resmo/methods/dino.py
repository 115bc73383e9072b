"""DINO (Caron et al. 2021, Alg. 1) with multi-crop.

Student: backbone -> DINO head on every crop; teacher: EMA copy on the global crops
(the first ``num_teacher_views``). Loss: :func:`resmo.losses.dino.dino_cross_entropy`
with the running centre and a teacher temperature warmed up linearly

    tau_t(step) = warmup_teacher_temperature -> teacher_temperature over
                  ``teacher_temperature_warmup_steps``

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
from resmo.momentum.schedule import linear_warmup
from resmo.nn.encoder import Encoder
from resmo.nn.heads import DinoHead
from resmo.validation import check_non_negative_int, check_positive


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
        teacher_temperature_warmup_steps: int,
        center_momentum: float,
        **base_options,
    ) -> None:
        super().__init__(student, predictor=None, **base_options)
        self.student_temperature = check_positive("student_temperature", student_temperature)
        self.teacher_temperature = check_positive("teacher_temperature", teacher_temperature)
        self.warmup_teacher_temperature = check_positive(
            "warmup_teacher_temperature", warmup_teacher_temperature
        )
        self.teacher_temperature_warmup_steps = check_non_negative_int(
            "teacher_temperature_warmup_steps", teacher_temperature_warmup_steps
        )
        self.center = DinoCenter(num_prototypes, center_momentum)

    def teacher_temperature_at(self, step: int) -> float:
        return linear_warmup(
            step,
            warmup_steps=self.teacher_temperature_warmup_steps,
            start=self.warmup_teacher_temperature,
            end=self.teacher_temperature,
        )

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
    teacher_temperature: float = 0.07,
    warmup_teacher_temperature: float = 0.04,
    teacher_temperature_warmup_steps: int = 0,
    center_momentum: float = 0.9,
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
        teacher_temperature_warmup_steps=teacher_temperature_warmup_steps,
        center_momentum=center_momentum,
        resmo=resmo,
        momentum=momentum,
        **base_options,
    )
