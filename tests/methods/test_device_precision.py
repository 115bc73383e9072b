"""Device- and precision-agnostic modelling core, tested without a GPU.

- ``meta`` device: an op mixing devices raises there, and so does every host read
  (``.item()``, ``int()``), so one training step on ``meta`` catches what CUDA would hit (a
  term built on the CPU, a host synchronisation per step).
- bf16 / fp16 autocast on the CPU: the numbers that decide the loss (InfoNCE logits, DINO's
  softmaxes and prototype layer, ResMo distances, BYOL cosines, the intra gap) are float32,
  i.e. equal to the float32 computation on the same head outputs (:mod:`resmo.precision`).
- ViT backbones accept DINO's local crops; the MoCo queue's Python pointer follows loads.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from resmo import ResMoSettings, create_backbone, create_method, intra_gap
from resmo.losses import (
    DISTANCES,
    LEVELS,
    MoCoQueue,
    byol_regression,
    dino_cross_entropy,
    info_nce,
    residual_momentum_loss,
)
from resmo.methods import ViewOutputs
from resmo.nn import DinoHead

#: ResMo off, then on at every level with every distance.
RESMO_SETTINGS = [ResMoSettings(weight=0.0)] + [
    ResMoSettings(weight=1.0, level=level, distance=distance)
    for level in LEVELS for distance in DISTANCES
]


def _views(method_name: str, *, device: str = "cpu", seed: int = 0) -> list[torch.Tensor]:
    """2 views of 16 px; DINO also gets 2 local crops of 8 px (student-only views)."""
    generator = torch.Generator().manual_seed(seed)
    sizes = (16, 16, 8, 8) if method_name == "dino" else (16, 16)
    return [torch.randn(4, 3, s, s, generator=generator).to(device) for s in sizes]


def _float32(outputs: ViewOutputs) -> ViewOutputs:
    """The same per-view tensors, upcast to float32 (what a float32 loss would be given);
    every list field, so DenseCL's dense tensors too."""
    return dataclasses.replace(outputs, **{
        f.name: [t.detach().float() for t in getattr(outputs, f.name)] for f in dataclasses.fields(outputs)
    })


# ---------------------------------------------------------------------------------------
# a training step on the meta device
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("resmo", RESMO_SETTINGS, ids=lambda r: f"{r.level}-{r.distance}-w{r.weight:g}")
def test_training_step_on_meta_device(method_name, resmo, make_method):
    method = make_method(method_name, resmo=resmo).to("meta")
    optimizer = torch.optim.SGD(method.student_parameters(), lr=0.1)
    result = method(_views(method_name, device="meta"), step=0)
    # the training loop stacks every term (and gap) into one tensor to check them at once
    logged = torch.stack([t.float().reshape(()) for t in (*result.terms.values(), *result.gaps.values())])
    assert logged.is_meta and result.loss.is_meta
    optimizer.zero_grad()
    result.loss.backward()
    optimizer.step()
    method.after_optimizer_step(result, step=0, total_steps=10)
    assert all(p.is_meta for p in method.teacher.parameters())


# ---------------------------------------------------------------------------------------
# losses and heads under autocast equal their float32 computation
# ---------------------------------------------------------------------------------------
LOSSES = {
    "info_nce": lambda a, b, c: info_nce(a, key=b, temperature=0.07),
    # the queue is MoCoQueue's float32 buffer of unit keys
    "info_nce_queue": lambda a, b, c: info_nce(
        a, key=b, queue=F.normalize(c.float(), dim=1), normalize_queue=False, temperature=0.07),
    "dino": lambda a, b, c: dino_cross_entropy(
        [a, b, c], teacher_logits=[b, a], center=c[:1], student_temperature=0.1,
        teacher_temperature=0.04),
    "byol": lambda a, b, c: byol_regression(a, target=b),
    **{f"resmo_{d}": (lambda a, b, c, d=d: residual_momentum_loss([a, c], teacher=[b, b], distance=d))
       for d in DISTANCES},
    "intra_gap": lambda a, b, c: intra_gap([a, c], teacher=[b, b]),
}
#: (autocast dtype, dtype of the inputs: float32 or what a head under that autocast gives)
AUTOCAST_INPUTS = [
    (torch.bfloat16, torch.float32), (torch.bfloat16, torch.bfloat16),
    (torch.float16, torch.float32), (torch.float16, torch.float16),
]


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize(("autocast_dtype", "input_dtype"), AUTOCAST_INPUTS, ids=str)
def test_loss_under_autocast_is_float32(name, autocast_dtype, input_dtype):
    generator = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(16, 32, generator=generator).to(input_dtype) for _ in range(3))
    with torch.autocast("cpu", dtype=autocast_dtype):
        loss = LOSSES[name](a, b, c)
    expected = LOSSES[name](a.float(), b.float(), c.float())
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("autocast_dtype", [torch.bfloat16, torch.float16], ids=str)
def test_dino_head_prototypes_under_autocast_are_float32(autocast_dtype):
    torch.manual_seed(0)
    head = DinoHead(24, hidden_dim=32, bottleneck_dim=16, num_prototypes=32)
    x = torch.randn(8, 24)
    with torch.autocast("cpu", dtype=autocast_dtype):
        logits = head(x)
        bottleneck = head.mlp(x)  # the MLP itself runs in 16 bits
        prototypes = head.prototypes(F.normalize(bottleneck.float(), dim=-1))
    assert bottleneck.dtype == autocast_dtype and logits.dtype == torch.float32
    # the L2 normalisation and the prototype layer are the float32 forward
    expected = head.prototypes(F.normalize(bottleneck.float(), dim=-1))
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(prototypes, expected, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------
# every method under bf16 autocast: float32 losses, float32 state
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("distance", DISTANCES)
def test_bf16_autocast_step_matches_float32_losses(method_name, distance, make_method):
    method = make_method(method_name, resmo=ResMoSettings(weight=1.0, distance=distance))
    optimizer = torch.optim.SGD(method.student_parameters(), lr=0.1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = method(_views(method_name), step=0)
    assert result.loss.dtype == torch.float32 and torch.isfinite(result.loss)
    # the terms are the float32 losses of the (bf16) head outputs
    student, teacher = _float32(result.student), _float32(result.teacher)
    paired = min(len(student.outputs), len(teacher.outputs))
    torch.testing.assert_close(result.terms["ssl"], method.ssl_loss(student, teacher, step=0),
                               rtol=0, atol=1e-5)
    if method_name == "densecl":  # global and dense terms (tests/methods/test_densecl.py checks the formula)
        expected_resmo = method.residual_loss(student, teacher)
    else:
        expected_resmo = residual_momentum_loss(student.outputs[:paired], teacher=teacher.outputs[:paired],
                                                distance=distance)
    torch.testing.assert_close(result.terms["resmo"], expected_resmo, rtol=0, atol=1e-5)

    optimizer.zero_grad()
    result.loss.backward()
    optimizer.step()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        method.after_optimizer_step(result, step=0, total_steps=10)
    if method_name == "dino":
        center = method.center.center
        assert center.dtype == torch.float32
        expected_center = 0.1 * torch.cat(teacher.outputs).mean(dim=0, keepdim=True)
        torch.testing.assert_close(center, expected_center, rtol=0, atol=1e-6)
    if method_name == "densecl":
        for queue, keys in ((method.queue, teacher.outputs[1]), (method.dense_queue, teacher.dense_pooled[1])):
            assert queue.keys.dtype == torch.float32
            torch.testing.assert_close(queue.keys[:4], F.normalize(keys, dim=-1), rtol=0, atol=1e-6)
    if method_name == "mocov2":
        keys = method.queue.keys
        assert keys.dtype == torch.float32
        torch.testing.assert_close(keys[:, :4], F.normalize(torch.stack(teacher.outputs), dim=-1),
                                   rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------
# every method under fp16 autocast with a gradient scaler
# ---------------------------------------------------------------------------------------
def test_fp16_autocast_with_grad_scaler(method_name, make_method):
    method = make_method(method_name, resmo=ResMoSettings(weight=1.0))
    optimizer = torch.optim.SGD(method.student_parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu")
    for step in range(3):
        with torch.autocast("cpu", dtype=torch.float16):
            result = method(_views(method_name, seed=step), step=step)
        assert torch.isfinite(result.loss) and result.loss.dtype == torch.float32
        optimizer.zero_grad()
        scaler.scale(result.loss).backward()
        scaler.step(optimizer)
        scaler.update()
        method.after_optimizer_step(result, step=step, total_steps=3)
    assert all(torch.isfinite(p).all() for p in method.student_parameters())


# ---------------------------------------------------------------------------------------
# ViT: DINO's local crops, exports unchanged
# ---------------------------------------------------------------------------------------
def test_dino_on_vit_accepts_local_crops():
    pytest.importorskip("timm")
    torch.manual_seed(0)
    backbone = create_backbone("vit_tiny", img_size=32, patch_size=4)
    method = create_method("dino", backbone, hidden_dim=32, bottleneck_dim=16, num_prototypes=32)
    generator = torch.Generator().manual_seed(0)
    views = [torch.randn(2, 3, s, s, generator=generator) for s in (32, 32, 16, 16)]
    result = method(views, step=0)
    assert [o.shape for o in result.student.outputs] == [(2, 32)] * 4
    assert torch.isfinite(result.loss)
    result.loss.backward()
    assert torch.isfinite(backbone.net.pos_embed.grad).all()


def test_vit_weights_load_into_plain_timm():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    backbone = create_backbone("vit_tiny", img_size=32, patch_size=4).eval()
    plain = timm.create_model("vit_tiny_patch16_224", num_classes=0, img_size=32, patch_size=4)
    plain.load_state_dict(backbone.net.state_dict(), strict=True)
    assert backbone.net.pos_embed.shape == (1, 1 + 8 * 8, 192)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(images), backbone(images), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------
# the MoCo queue's Python pointer follows a loaded state dict
# ---------------------------------------------------------------------------------------
def test_loaded_queue_continues_at_the_loaded_pointer():
    queue = MoCoQueue(2, 5)
    queue.enqueue(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    restored = MoCoQueue(2, 5)  # its own pointer is 0
    restored.load_state_dict(queue.state_dict())
    restored.enqueue(torch.tensor([[0.0, -2.0], [3.0, 4.0], [2.0, 0.0]]))  # slots 3, 4, 0
    assert int(restored.pointer) == 1
    expected = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.6, 0.8]])
    torch.testing.assert_close(restored.keys, expected, rtol=0, atol=1e-7)


def test_whole_method_load_refreshes_the_queue_pointer(make_method):
    trained = make_method("mocov2", queue_size=64)
    for step in range(2):  # 2 steps x 4 keys per view: pointer 8
        trained.after_optimizer_step(trained(_views("mocov2", seed=step)), step=step, total_steps=10)
    fresh = make_method("mocov2", queue_size=64, seed=1)
    fresh.load_state_dict(trained.state_dict())
    result = fresh(_views("mocov2", seed=2))
    fresh.after_optimizer_step(result, step=2, total_steps=10)
    assert int(fresh.queue.pointer) == 12
    new_keys = F.normalize(torch.stack(result.teacher.outputs), dim=-1)
    torch.testing.assert_close(fresh.queue.keys[:, 8:12], new_keys, rtol=0, atol=1e-6)
    assert torch.equal(fresh.queue.keys[:, :8], trained.queue.keys[:, :8])
    assert torch.equal(fresh.queue.keys[:, 12:], trained.queue.keys[:, 12:])
