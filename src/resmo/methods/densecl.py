"""DenseCL (Wang et al., CVPR 2021, "Dense Contrastive Learning"), MoCo v2 style, with ResMo.

Student: a ResNet whose last feature map feeds a global and a dense head
(:class:`~resmo.nn.dense.DenseEncoder`); teacher: its EMA copy; two queues of past teacher
keys, one of global keys and one of pooled dense keys. As the reference, the loss is
asymmetric: the student sees view 1 only, the teacher view 2 (and view 1, for ResMo and the
gaps). With ``q`` / ``k`` the student's / teacher's global projections, ``r`` / ``t`` their
dense vectors, ``Q_g`` / ``Q_d`` the queues and ``lambda_d = loss_lambda`` (Sec. 3.2):

    L_ssl = (1 - lambda_d) * InfoNCE(q(v1), k(v2), Q_g) + lambda_d * L_dense(r(v1), t(v2), Q_d)

``L_dense`` (:func:`~resmo.losses.dense.dense_info_nce`) matches each student position of
view 1 with the teacher position of view 2 whose *backbone* feature is the most similar
(cosine, student backbone of view 1 against teacher backbone of view 2) and averages an
InfoNCE over all positions. A transcription of WXinlong/DenseCL
``openselfsup/models/densecl.py`` (``DenseCL.forward_train``, commit 5d1c456)::

    losses['loss_contra_single'] = loss_single * (1 - self.loss_lambda)
    losses['loss_contra_dense'] = loss_dense * self.loss_lambda
    self._dequeue_and_enqueue(k);  self._dequeue_and_enqueue2(k2)

After the optimizer step, ``Q_g`` receives the teacher's global keys of view 2 and ``Q_d``
one pooled dense vector per image (the reference's ``k2 = avgpool2(dense)``), both gathered
from all ranks (:class:`~resmo.losses.queue.MoCoQueue`). ``dense_warmup_steps`` sets
``lambda_d = 0`` for the first optimizer steps, as the reference's ``DenseCLWarmupHook``
(``start_iters``), which its recipes do not enable (default 0).

Differences from the reference that are not settings: the teacher is updated after each
optimizer step (the reference updates it at the start of the next forward: the same
sequence of teachers), and no shuffle BN (the key encoder's batch is not permuted across
GPUs; synchronised BatchNorm, ``train.sync_batchnorm``, is the project's remedy).

ResMo on DenseCL, at ``resmo.level`` (the outputs are the projections: no predictor), pairs
student and teacher on view 1:

    L_resmo = (1 - lambda_d) * d(q(v1), sg[k(v1)])  +  lambda_d * mean_i d(r_i(v1), sg[t_i(v1)])

the global term as for every method and the dense term per position ``i`` at the *same*
position (same view, so no correspondence), averaged over images and positions; at level
``features`` the dense term compares the backbone feature maps. ``lambda_d`` is
``loss_lambda`` (not warmed up). ``resmo.weight = 0`` gives plain DenseCL, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from resmo.backbones.registry import has_feature_map
from resmo.losses.dense import dense_info_nce, positions_as_rows
from resmo.losses.infonce import info_nce
from resmo.losses.queue import MoCoQueue
from resmo.losses.resmo import ResMoSettings, residual_momentum_loss
from resmo.methods.base import MomentumMethod, StepResult, ViewOutputs
from resmo.methods.registry import METHODS
from resmo.nn.dense import DenseEncoder, densecl_dense_projector, densecl_projector
from resmo.validation import check_non_negative_int, check_positive, check_unit_interval

#: The student's (query) view and the teacher's key view of the SSL loss.
QUERY_VIEW, KEY_VIEW = 0, 1


@dataclass
class DenseViewOutputs(ViewOutputs):
    """:class:`ViewOutputs` plus, per view, the backbone maps ``[B, C, h, w]``, the dense
    vectors ``[B, D, h*w]`` and their average ``[B, D]``."""

    feature_maps: list[torch.Tensor] = field(default_factory=list)
    dense: list[torch.Tensor] = field(default_factory=list)
    dense_pooled: list[torch.Tensor] = field(default_factory=list)

    def dense_level(self, name: str) -> list[torch.Tensor]:
        """The spatial counterpart of :meth:`level`: backbone maps for ``features``, the
        dense vectors for ``projection`` and ``output``."""
        return self.feature_maps if name == "features" else self.dense


def _encode(encoder: nn.Module, views: Sequence[torch.Tensor]) -> DenseViewOutputs:
    encoded = [encoder(view) for view in views]
    projections = [e.projection for e in encoded]
    return DenseViewOutputs(
        [e.features for e in encoded], projections, projections,
        feature_maps=[e.feature_map for e in encoded],
        dense=[e.dense for e in encoded],
        dense_pooled=[e.dense_pooled for e in encoded],
    )


class DenseCL(MomentumMethod):
    name = "densecl"

    def __init__(
        self,
        student: DenseEncoder,
        *,
        queue_size: int,
        temperature: float,
        loss_lambda: float,
        dense_warmup_steps: int = 0,
        **base_options,
    ) -> None:
        super().__init__(student, predictor=None, **base_options)
        if self.num_teacher_views != 2:
            raise ValueError(
                f"densecl compares view 1 with view 2: num_teacher_views must be 2, got {self.num_teacher_views}"
            )
        self.temperature = check_positive("temperature", temperature)
        self.loss_lambda = check_unit_interval("loss_lambda", loss_lambda)
        self.dense_warmup_steps = check_non_negative_int("dense_warmup_steps", dense_warmup_steps)
        global_dim = [m for m in student.projector.modules() if isinstance(m, nn.Linear)][-1].out_features
        dense_dim = [m for m in student.dense_projector.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        self.queue = MoCoQueue(global_dim, queue_size)
        self.dense_queue = MoCoQueue(dense_dim, queue_size)

    def encode_student(self, views: Sequence[torch.Tensor]) -> DenseViewOutputs:
        """The student on the query view (the first) only, as the reference."""
        return _encode(self.student, views[: QUERY_VIEW + 1])

    @torch.no_grad()
    def encode_teacher(self, views: Sequence[torch.Tensor]) -> DenseViewOutputs:
        return _encode(self.teacher, views[: self.num_teacher_views])

    def loss_lambda_at(self, step: int) -> float:
        """``lambda_d`` at optimizer step ``step``: 0 during ``dense_warmup_steps``."""
        return 0.0 if step < self.dense_warmup_steps else self.loss_lambda

    def ssl_loss_and_parts(
        self, student: ViewOutputs, teacher: ViewOutputs, *, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L_ssl`` of the module docstring and its parts ``ssl_global`` / ``ssl_dense``
        (unweighted). The queues are used in place (unit rows; they change only in
        :meth:`update_state`, after backward)."""
        global_loss = info_nce(
            student.outputs[QUERY_VIEW], key=teacher.outputs[KEY_VIEW],
            queue=self.queue.keys.detach(), normalize_queue=False, temperature=self.temperature,
        )
        dense_loss = dense_info_nce(
            student.dense[QUERY_VIEW], key=teacher.dense[KEY_VIEW],
            student_map=student.feature_maps[QUERY_VIEW], teacher_map=teacher.feature_maps[KEY_VIEW],
            queue=self.dense_queue.keys.detach(), normalize_queue=False, temperature=self.temperature,
        )
        weight = self.loss_lambda_at(step)
        loss = global_loss * (1.0 - weight) + dense_loss * weight
        return loss, {"ssl_global": global_loss, "ssl_dense": dense_loss}

    def ssl_loss(self, student: ViewOutputs, teacher: ViewOutputs, *, step: int) -> torch.Tensor:
        return self.ssl_loss_and_parts(student, teacher, step=step)[0]

    def residual_loss(self, student: ViewOutputs, teacher: ViewOutputs) -> torch.Tensor:
        """``L_resmo`` of the module docstring (global and same-position dense terms)."""
        global_term = super().residual_loss(student, teacher)
        dense_term = residual_momentum_loss(
            [positions_as_rows(student.dense_level(self.resmo.level)[QUERY_VIEW])],
            teacher=[positions_as_rows(teacher.dense_level(self.resmo.level)[QUERY_VIEW])],
            distance=self.resmo.distance,
            temperature=self.resmo.temperature,
        )
        return global_term * (1.0 - self.loss_lambda) + dense_term * self.loss_lambda

    def update_state(self, result: StepResult) -> None:
        self.queue.enqueue(result.teacher.outputs[KEY_VIEW])
        self.dense_queue.enqueue(result.teacher.dense_pooled[KEY_VIEW])


@METHODS.register("densecl")
def densecl(
    backbone: nn.Module,
    *,
    resmo: ResMoSettings | None = None,
    hidden_dim: int = 2048,
    out_dim: int = 128,
    queue_size: int = 65536,
    temperature: float = 0.2,
    loss_lambda: float = 0.5,
    dense_warmup_steps: int = 0,
    momentum: float = 0.999,
    final_momentum: float = 0.999,
    **base_options,
) -> DenseCL:
    """DenseCL with the reference's settings as defaults (``densecl_coco_800ep.py``)."""
    if not has_feature_map(backbone):
        raise ValueError(
            f"densecl needs a backbone with a spatial feature map, and {type(backbone).__name__} has "
            f"none; use a ResNet: backbone=resnet50 (or resnet18, resnet_small)"
        )
    student = DenseEncoder(
        backbone,
        densecl_projector(backbone.feature_dim, hidden_dim, out_dim),
        densecl_dense_projector(backbone.feature_dim, hidden_dim, out_dim),
    )
    return DenseCL(
        student, queue_size=queue_size, temperature=temperature, loss_lambda=loss_lambda,
        dense_warmup_steps=dense_warmup_steps, resmo=resmo, momentum=momentum,
        final_momentum=final_momentum, **base_options,
    )
