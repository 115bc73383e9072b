"""MoCo v2+ (Chen et al. 2020, "Improved baselines"), the symmetric variant of solo-learn.

Student: backbone -> 2-layer MLP (no BN). Teacher: EMA copy. One queue of past teacher keys
per teacher view. For the two views, with ``q`` the student projections, ``k`` the teacher
projections and ``Q_v`` the queue of view ``v``'s keys:

    L_ssl = ( InfoNCE(q_1, k_2, Q_2) + InfoNCE(q_2, k_1, Q_1) ) / 2

a transcription of vturrisi/solo-learn ``solo/methods/mocov2plus.py``
(``MoCoV2Plus.training_step``)::

    nce_loss = (moco_loss_func(q1, k2, queue[1], T) + moco_loss_func(q2, k1, queue[0], T)) / 2
    keys = torch.stack((gather(k1), gather(k2)));  self._dequeue_and_enqueue(keys)

so the negatives of a query are the queue of the view its positive key comes from: the
keys of view 1 are negatives for the queries of view 2 and vice versa, and the loss is the
mean (not the sum) of the two terms. With more student views (multi-crop), every pair
``(s, t)``, ``s != t``, of :func:`~resmo.methods.base.cross_view_pairs` adds
``InfoNCE(q_s, k_t, Q_t)`` and the loss is the mean over the pairs (for two views exactly
the formula above).

After the optimizer step the keys of view ``v`` (from all ranks) are enqueued into ``Q_v``:
``queue.keys`` is ``[views, queue_size, dim]`` with one shared ``queue.pointer`` (the keys
written per view), as solo-learn's ``queue`` / ``queue_ptr``.
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
        self.queue = MoCoQueue(out_dim, queue_size, views=self.num_teacher_views)

    def ssl_loss(self, student: ViewOutputs, teacher: ViewOutputs, *, step: int) -> torch.Tensor:
        """The mean InfoNCE of the module docstring, key of view ``t`` against ``Q_t``.

        The queue buffer is used in place (a detached view, no copy, not re-normalised: it
        holds unit vectors). It changes only in :meth:`update_state`, after backward; an
        in-place write before backward would make autograd raise, not compute wrong grads.
        """
        pairs = cross_view_pairs(len(student.outputs), len(teacher.outputs))
        total = sum(
            info_nce(student.outputs[s], key=teacher.outputs[t],
                     queue=self.queue.view_keys(t).detach(), normalize_queue=False,
                     temperature=self.temperature)
            for s, t in pairs
        )
        return total / len(pairs)

    def update_state(self, result: StepResult) -> None:
        self.queue.enqueue(torch.stack(result.teacher.outputs))


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
