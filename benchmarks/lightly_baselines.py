"""MoCo v3 and BYOL built from LightlySSL's building blocks, as a LightlySSL user writes them.

The peer baselines of the quality protocol (``quality_cifar10.py``) and of the speed
benchmark (``speed_cpu.py``). LightlySSL (``pip install lightly``) is needed for these
only; it is not a dependency of resmo.

From LightlySSL: the heads (``MoCoProjectionHead`` with batch norm, ``BYOLProjectionHead``,
``BYOLPredictionHead``), the losses (``NTXentLoss`` without memory bank for MoCo v3,
``NegativeCosineSimilarity`` for BYOL), ``update_momentum`` (EMA of the parameters),
``deactivate_requires_grad``, ``cosine_schedule`` (teacher momentum, base -> 1) and
``CosineWarmupScheduler`` (learning rate). Shared with the resmo runs so that only the
method implementation differs: the backbone (``resnet_small``), the views (the method's
32 px views, made by resmo's batched path from the same seeds) and the optimizer (AdamW,
no weight decay on norms and biases).

MoCo v3: ``loss = NTXent(q1, k2) + NTXent(q2, k1)`` with ``q = predictor(projector(f(x)))``
of the student and ``k = projector(f(x))`` of the teacher (NTXent without memory bank
also uses the other queries as negatives, as LightlySSL's loss does). BYOL:
``loss = 0.5 * (-cos(p1, z2) - cos(p2, z1))``.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from resmo import create_backbone
from resmo.data import build_train_loader, build_view_spec
from resmo.data.batched import BatchedViews, DeviceViews

METHODS = ("mocov3", "byol")


def lightly_blocks():
    """The LightlySSL modules used here (imported lazily: lightly is optional)."""
    try:
        from lightly.loss import NegativeCosineSimilarity, NTXentLoss
        from lightly.models.modules.heads import (
            BYOLPredictionHead,
            BYOLProjectionHead,
            MoCoProjectionHead,
        )
        from lightly.models.utils import deactivate_requires_grad, update_momentum
        from lightly.utils.scheduler import CosineWarmupScheduler, cosine_schedule
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise SystemExit("the LightlySSL baselines need LightlySSL: pip install lightly") from error
    return {
        "NTXentLoss": NTXentLoss, "NegativeCosineSimilarity": NegativeCosineSimilarity,
        "MoCoProjectionHead": MoCoProjectionHead, "BYOLProjectionHead": BYOLProjectionHead,
        "BYOLPredictionHead": BYOLPredictionHead, "update_momentum": update_momentum,
        "deactivate_requires_grad": deactivate_requires_grad, "cosine_schedule": cosine_schedule,
        "CosineWarmupScheduler": CosineWarmupScheduler,
    }


class LightlyModel(nn.Module):
    """Student (backbone, projector, predictor) and EMA teacher (backbone, projector)."""

    def __init__(self, method: str, backbone: nn.Module, feature_dim: int, *, hidden_dim: int,
                 out_dim: int, temperature: float = 0.2) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"method={method!r} is not valid; allowed values: {', '.join(METHODS)}")
        blocks = lightly_blocks()
        self.method = method
        self.backbone = backbone
        if method == "mocov3":
            self.projector = blocks["MoCoProjectionHead"](feature_dim, hidden_dim, out_dim, num_layers=2,
                                                          batch_norm=True)
            self.criterion = blocks["NTXentLoss"](temperature=temperature, memory_bank_size=0)
        else:
            self.projector = blocks["BYOLProjectionHead"](feature_dim, hidden_dim, out_dim)
            self.criterion = blocks["NegativeCosineSimilarity"]()
        self.predictor = blocks["BYOLPredictionHead"](out_dim, hidden_dim, out_dim)
        self.teacher_backbone = copy.deepcopy(backbone)
        self.teacher_projector = copy.deepcopy(self.projector)
        blocks["deactivate_requires_grad"](self.teacher_backbone)
        blocks["deactivate_requires_grad"](self.teacher_projector)
        self._update_momentum = blocks["update_momentum"]

    def student_parameters(self) -> list[nn.Parameter]:
        return [*self.backbone.parameters(), *self.projector.parameters(), *self.predictor.parameters()]

    def student(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(x)
        return features, self.predictor(self.projector(features))

    @torch.no_grad()
    def teacher(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.teacher_backbone(x)
        return features, self.teacher_projector(features)

    def loss(self, views: list[torch.Tensor]) -> torch.Tensor:
        (_, p1), (_, p2) = self.student(views[0]), self.student(views[1])
        (_, z1), (_, z2) = self.teacher(views[0]), self.teacher(views[1])
        if self.method == "mocov3":
            return self.criterion(p1, z2) + self.criterion(p2, z1)
        return 0.5 * (self.criterion(p1, z2) + self.criterion(p2, z1))

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        self._update_momentum(self.backbone, self.teacher_backbone, m=momentum)
        self._update_momentum(self.projector, self.teacher_projector, m=momentum)


def adamw(parameters: list[nn.Parameter], *, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW without weight decay on norms and biases (one-dimensional parameters)."""
    decay = [p for p in parameters if p.ndim > 1]
    no_decay = [p for p in parameters if p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def build_model(method: str, *, width: int, hidden_dim: int, out_dim: int, temperature: float,
                seed: int) -> LightlyModel:
    torch.manual_seed(seed)
    backbone = create_backbone("resnet_small", width=width)
    return LightlyModel(method, backbone, backbone.feature_dim, hidden_dim=hidden_dim, out_dim=out_dim,
                        temperature=temperature)


def train(method: str, train_set, *, width: int, epochs: int, batch_size: int, lr: float,
          weight_decay: float, warmup_epochs: float, momentum: float, hidden_dim: int, out_dim: int,
          temperature: float, seed: int, workers: int = 1, log=print) -> tuple[LightlyModel, dict]:
    """Pretrain on ``train_set`` (``(PIL image, label)`` pairs); returns the model and timings."""
    blocks = lightly_blocks()
    model = build_model(method, width=width, hidden_dim=hidden_dim, out_dim=out_dim,
                        temperature=temperature, seed=seed)
    spec = build_view_spec(method, 32)
    views = DeviceViews(BatchedViews(spec))
    loader = build_train_loader(train_set, spec, pipeline="batched", batch_size=batch_size, seed=seed,
                                workers=workers)
    steps_per_epoch = len(train_set) // batch_size
    total_steps = steps_per_epoch * epochs
    optimizer = adamw(model.student_parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = blocks["CosineWarmupScheduler"](
        optimizer, warmup_epochs=int(warmup_epochs * steps_per_epoch), max_epochs=total_steps,
    )
    model.train()
    step, images, start = 0, 0, time.perf_counter()
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        for batch_index, batch in enumerate(loader):
            if batch_index >= steps_per_epoch:
                break
            pair, _labels = views(batch)
            loss = model.loss(pair)
            if not torch.isfinite(loss):
                raise RuntimeError(f"LightlySSL {method}: loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            model.update_teacher(blocks["cosine_schedule"](step, total_steps, momentum, 1.0))
            step += 1
            images += pair[0].shape[0]
        log(f"lightly {method} seed {seed}: epoch {epoch + 1}/{epochs} done, step {step}, loss {loss.item():.4f}")
    seconds = time.perf_counter() - start
    return model, {"steps": step, "train_seconds": seconds, "images_per_second": images / seconds}
