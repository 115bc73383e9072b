"""The LightlySSL-built baselines compute what their docstring says."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("lightly")

from benchmarks import lightly_baselines
from resmo.data.textures import SyntheticTextures


def tiny(method: str) -> lightly_baselines.LightlyModel:
    return lightly_baselines.build_model(method, width=4, hidden_dim=16, out_dim=8, temperature=0.2, seed=0)


def loss_and_outputs(method: str):
    """The model's loss on two random views, and the student / teacher outputs of each view."""
    model = tiny(method).train()
    views = [torch.randn(6, 3, 16, 16), torch.randn(6, 3, 16, 16)]
    loss = model.loss(views)
    (_, p1), (_, p2) = model.student(views[0]), model.student(views[1])
    (_, z1), (_, z2) = model.teacher(views[0]), model.teacher(views[1])
    return loss, p1, p2, z1, z2


def test_byol_loss_is_the_symmetric_negative_cosine():
    loss, p1, p2, z1, z2 = loss_and_outputs("byol")
    expected = 0.5 * (-F.cosine_similarity(p1, z2).mean() - F.cosine_similarity(p2, z1).mean())
    assert torch.allclose(loss, expected, atol=1e-6)


def test_mocov3_loss_is_ntxent_with_queries_as_extra_negatives():
    loss, p1, p2, z1, z2 = loss_and_outputs("mocov3")

    def ntxent(a, b, tau=0.2):
        z = F.normalize(torch.cat([a, b]), dim=1)
        logits = z @ z.T / tau
        logits.fill_diagonal_(float("-inf"))
        n = a.shape[0]
        targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
        return F.cross_entropy(logits, targets)

    assert torch.allclose(loss, ntxent(p1, z2) + ntxent(p2, z1), atol=1e-5)


def test_teacher_is_the_ema_of_the_student_parameters():
    model = tiny("byol")
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(1.0)
    before = [t.clone() for t in model.teacher_backbone.parameters()]
    model.update_teacher(0.9)
    for old, new, student in zip(before, model.teacher_backbone.parameters(), model.backbone.parameters(), strict=True):
        assert torch.allclose(new, 0.9 * old + 0.1 * student, atol=1e-6)
    assert not any(p.requires_grad for p in model.teacher_backbone.parameters())


def test_train_runs_every_step_and_moves_the_student():
    data = SyntheticTextures("train", image_size=32, num_samples=48, seed=0)
    start = tiny("mocov3").backbone.state_dict()
    model, timing = lightly_baselines.train(
        "mocov3", data, width=4, epochs=2, batch_size=16, lr=1e-3, weight_decay=1e-4, warmup_epochs=0.5,
        momentum=0.9, hidden_dim=16, out_dim=8, temperature=0.2, seed=0, workers=0, log=lambda _: None,
    )
    assert timing["steps"] == 6 and timing["images_per_second"] > 0
    moved = [not torch.equal(start[name], value) for name, value in model.backbone.state_dict().items()
             if value.dtype.is_floating_point]
    assert all(moved)
    teacher = dict(model.teacher_backbone.named_parameters())
    assert any(not torch.equal(p, teacher[name]) for name, p in model.backbone.named_parameters())
