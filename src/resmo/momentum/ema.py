"""The EMA teacher (Tarvainen & Valpola 2017; MoCo, BYOL, DINO).

After each optimizer step, every teacher parameter becomes

    theta_teacher <- momentum * theta_teacher + (1 - momentum) * theta_student

as one fused ``torch._foreach_lerp_`` over all parameters. The teacher starts as an exact
deep copy of the student encoder (backbone and projector), has no gradients, and lives in
the parent module's state dict.

BatchNorm running statistics follow ``buffer_policy``:

- ``"own"`` (default, as in the MoCo v3 and DINO reference code): the teacher keeps the
  running statistics its own forward passes accumulate;
- ``"ema"``: floating-point buffers are averaged with the same momentum as parameters;
- ``"copy"``: buffers are copied from the student after each update.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from resmo.validation import check_choice

BUFFER_POLICIES = ("own", "ema", "copy")


class EMATeacher(nn.Module):
    """A frozen deep copy of ``student`` that only changes through :meth:`update`."""

    def __init__(self, student: nn.Module, *, buffer_policy: str = "own") -> None:
        super().__init__()
        self.buffer_policy = check_choice("buffer_policy", buffer_policy, BUFFER_POLICIES)
        self.module = copy.deepcopy(student)
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update(self, student: nn.Module, *, momentum: float) -> None:
        """Move the teacher toward ``student``: ``t <- m t + (1 - m) s``, ``m`` in [0, 1]
        (the method's momentum schedule, from settings checked when it was built)."""
        teacher_params = list(self.module.parameters())
        student_params = [p.detach() for p in student.parameters()]
        if len(teacher_params) != len(student_params):
            raise ValueError("teacher and student have different parameter lists")
        if momentum != 1.0:
            torch._foreach_lerp_(teacher_params, student_params, 1.0 - momentum)
        if self.buffer_policy == "own":
            return
        for teacher_buffer, student_buffer in zip(
            self.module.buffers(), student.buffers(), strict=True
        ):
            if self.buffer_policy == "ema" and teacher_buffer.is_floating_point():
                teacher_buffer.lerp_(student_buffer, 1.0 - momentum)
            else:
                teacher_buffer.copy_(student_buffer)
