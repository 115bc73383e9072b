"""MoCo v3 (Chen, Xie, He 2021, Alg. 1; facebookresearch/moco-v3 ``moco/builder.py``).

Student: backbone -> projector (BN, last BN without affine) -> predictor. Teacher: EMA copy
of backbone and projector. For the two views, with in-batch negatives gathered from all
ranks (``MoCo.contrastive_loss``, which returns ``CrossEntropy(logits, labels) * 2T``):

    L_ssl = 2 tau * ( InfoNCE(q_1, k_2) + InfoNCE(q_2, k_1) )

The heads follow the backbone, as the reference's two builders:

- ResNet (``MoCo_ResNet``): 2-layer projector, 2-layer predictor without a last BN;
- ViT (``MoCo_ViT``, a :class:`~resmo.backbones.vit.TimmViT` backbone): 3-layer projector
  ``embed_dim -> 4096 -> 4096 -> 256`` (BN after every layer, the last without affine),
  2-layer predictor ``256 -> 4096 -> 256`` ending in a BN without affine; and the patch
  embedding frozen at a random initialisation (``vits.py`` ``stop_grad_conv1``, as every
  ViT recipe of the reference's ``CONFIG.md`` sets ``--stop-grad-conv1``): it gets no
  gradient and is not among :meth:`student_parameters`; the EMA teacher still copies it
  (it is a parameter of the student encoder, unchanged by the EMA since both are equal).

``projector_layers``, ``predictor_last_batch_norm`` and ``freeze_patch_embedding`` set to
``None`` (defaults) take these per-backbone values; a value given is used as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from resmo.backbones.vit import TimmViT
from resmo.distributed import all_gather_no_grad, rank
from resmo.losses.infonce import info_nce
from resmo.losses.resmo import ResMoSettings
from resmo.methods.base import MomentumMethod, ViewOutputs, cross_view_pairs
from resmo.methods.registry import METHODS
from resmo.nn.encoder import Encoder
from resmo.nn.heads import moco_v3_predictor, moco_v3_projector
from resmo.validation import check_positive


class MoCoV3(MomentumMethod):
    name = "mocov3"

    def __init__(self, student: Encoder, *, predictor: nn.Module, temperature: float, **base_options):
        super().__init__(student, predictor=predictor, **base_options)
        self.temperature = check_positive("temperature", temperature)

    def ssl_loss(self, student: ViewOutputs, teacher: ViewOutputs, *, step: int) -> torch.Tensor:
        keys = [all_gather_no_grad(k) for k in teacher.outputs]
        offset = rank() * teacher.outputs[0].shape[0]
        loss = sum(
            info_nce(student.outputs[s], key=keys[t], temperature=self.temperature, key_offset=offset)
            for s, t in cross_view_pairs(len(student.outputs), len(keys))
        )
        return 2.0 * self.temperature * loss


@METHODS.register("mocov3")
def mocov3(
    backbone: nn.Module,
    *,
    resmo: ResMoSettings | None = None,
    hidden_dim: int = 4096,
    out_dim: int = 256,
    projector_layers: int | None = None,
    predictor_hidden_dim: int = 4096,
    predictor_last_batch_norm: bool | None = None,
    freeze_patch_embedding: bool | None = None,
    temperature: float = 0.2,
    momentum: float = 0.99,
    **base_options,
) -> MoCoV3:
    vit = isinstance(backbone, TimmViT)
    if projector_layers is None:
        projector_layers = 3 if vit else 2
    if predictor_last_batch_norm is None:
        predictor_last_batch_norm = vit
    if freeze_patch_embedding is None:
        freeze_patch_embedding = vit
    if freeze_patch_embedding:
        if not vit:
            raise ValueError(
                "freeze_patch_embedding=True is not valid for a backbone without a patch "
                f"embedding ({type(backbone).__name__}); allowed values: null, false"
            )
        backbone.freeze_patch_embedding()  # before the teacher copies the student
    projector = moco_v3_projector(backbone.feature_dim, hidden_dim, out_dim, projector_layers)
    predictor = moco_v3_predictor(
        out_dim, predictor_hidden_dim, out_dim, last_batch_norm=predictor_last_batch_norm
    )
    return MoCoV3(
        Encoder(backbone, projector), predictor=predictor, temperature=temperature,
        resmo=resmo, momentum=momentum, **base_options,
    )
