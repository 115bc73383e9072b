"""MoCo v2+ (Chen et al. 2020, "Improved baselines"; symmetric loss as in solo-learn).

Student: backbone -> 2-layer MLP (no BN). Teacher: EMA copy. Loss, for the two views:

    L_ssl = InfoNCE(q_1, k_2, queue) + InfoNCE(q_2, k_1, queue)

with ``q`` the student projections, ``k`` the teacher projections and a queue of past
teacher keys as negatives. After the optimizer step the keys of all teacher views (from
all ranks) are enqueued.
"""

from __future__ import annotations

import torch
from torch import nn

from resmo.losses.infonce import info_nce
from resmo.losses.queue import MoCoQueue
from resmo.losses.resmo import ResMoSettings
from resmo.methods.base import MomentumMethod, StepResult, ViewOutputs, cross_view_pairs
from resmo.methods.registry import METHODS
from resmo.nn.encoder import Encoder
from resmo.nn.heads import moco_v2_projector
from resmo.validation import check_positive


class MoCoV2(MomentumMethod):
    name = "mocov2"

    def __init__(
        self, student: Encoder, *, queue_size: int, temperature: float, **base_options
    ) -> None:
        super().__init__(student, predictor=None, **base_options)
        self.temperature = check_positive("temperature", temperature)
        out_dim = _out_features(student.projector)
        self.queue = MoCoQueue(out_dim, queue_size)

    def ssl_loss(self, student: ViewOutputs, teacher: ViewOutputs, *, step: int) -> torch.Tensor:
        """The symmetric InfoNCE of the module docstring against the queue's keys.

        The queue buffer is used in place (a detached view, no copy, not re-normalised: it
        holds unit vectors). It changes only in :meth:`update_state`, after backward; an
        in-place write before backward would make autograd raise, not compute wrong grads.
        """
        negatives = self.queue.keys.detach()
        return sum(
            info_nce(student.outputs[s], key=teacher.outputs[t], queue=negatives,
                     normalize_queue=False, temperature=self.temperature)
            for s, t in cross_view_pairs(len(student.outputs), len(teacher.outputs))
        )

    def update_state(self, result: StepResult) -> None:
        self.queue.enqueue(torch.cat(result.teacher.outputs))


def _out_features(module: nn.Module) -> int:
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features


@METHODS.register("mocov2")
def mocov2(
    backbone: nn.Module,
    *,
    resmo: ResMoSettings | None = None,
    hidden_dim: int = 2048,
    out_dim: int = 256,
    queue_size: int = 65536,
    temperature: float = 0.2,
    momentum: float = 0.99,
    **base_options,
) -> MoCoV2:
    student = Encoder(backbone, moco_v2_projector(backbone.feature_dim, hidden_dim, out_dim))
    return MoCoV2(
        student, queue_size=queue_size, temperature=temperature, resmo=resmo,
        momentum=momentum, **base_options,
    )
