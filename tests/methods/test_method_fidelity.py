"""Each method against its reference implementation, transcribed here line by line:

- MoCo v2+: vturrisi/solo-learn ``solo/methods/mocov2plus.py`` (one queue per view, the
  two InfoNCE terms averaged) and ``solo/losses/moco.py`` (``moco_loss_func``);
- DINO: facebookresearch/dino ``main_dino.py`` (argument defaults, ``train_one_epoch``) and
  ``utils.py`` (``clip_gradients``, ``cancel_gradients_last_layer``, ``cosine_scheduler``);
- MoCo v3: facebookresearch/moco-v3 ``moco/builder.py`` (``_build_mlp``, ``MoCo_ResNet``,
  ``MoCo_ViT``) and ``vits.py`` (``stop_grad_conv1``).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resmo import create_backbone, create_method
from resmo.losses import info_nce
from resmo.losses import queue as queue_module
from resmo.losses.queue import MoCoQueue
from resmo.methods.base import clip_gradients_per_parameter
from resmo.methods.dino import cancel_last_layer_gradients
from resmo.momentum.schedule import cosine_schedule
from resmo.optim.optimizers import build_optimizer, set_weight_decay
from tests.nn.test_heads import _layout


def _outputs(method, views):
    with torch.no_grad():
        return method.encode_student(views), method.encode_teacher(views)


# ---------------------------------------------------------------------------------------
# MoCo v2+ (solo-learn)
# ---------------------------------------------------------------------------------------
def solo_moco_loss_func(query, key, queue, temperature):
    """solo-learn ``solo/losses/moco.py``: ``queue`` is ``[D, K]`` (solo's layout)."""
    pos = torch.einsum("nc,nc->n", [query, key]).unsqueeze(-1)
    neg = torch.einsum("nc,ck->nk", [query, queue])
    logits = torch.cat([pos, neg], dim=1) / temperature
    targets = torch.zeros(query.size(0), dtype=torch.long)
    return F.cross_entropy(logits, targets)


def test_mocov2_has_one_queue_per_view_in_the_state_dict(make_method):
    method = make_method("mocov2", queue_size=64)
    assert method.queue.keys.shape == (2, 64, 16)  # solo-learn: (2, proj_output_dim, queue_size)
    torch.testing.assert_close(method.queue.keys.norm(dim=-1), torch.ones(2, 64))
    assert not torch.equal(method.queue.keys[0], method.queue.keys[1])
    state = method.state_dict()
    assert state["queue.keys"].shape == (2, 64, 16) and int(state["queue.pointer"]) == 0


def test_mocov2_loss_is_solo_learns_mean_over_views_with_the_other_views_queue(
    make_method, make_views
):
    method = make_method("mocov2", temperature=0.2)
    student, teacher = _outputs(method, make_views(2))
    q1, q2 = (F.normalize(q, dim=-1) for q in student.outputs)
    k1, k2 = (F.normalize(k, dim=-1) for k in teacher.outputs)
    queue = method.queue.keys.transpose(1, 2)  # solo-learn's [2, D, K]
    # solo-learn MoCoV2Plus.training_step, verbatim
    expected = (
        solo_moco_loss_func(q1, k2, queue[1], 0.2) + solo_moco_loss_func(q2, k1, queue[0], 0.2)
    ) / 2
    loss = method.ssl_loss(student, teacher, step=0)
    torch.testing.assert_close(loss, expected, rtol=0, atol=1e-6)
    # neither the sum, nor the queues the other way round
    swapped = (
        solo_moco_loss_func(q1, k2, queue[0], 0.2) + solo_moco_loss_func(q2, k1, queue[1], 0.2)
    ) / 2
    assert not torch.allclose(loss, swapped, atol=1e-4)
    assert not torch.allclose(loss, 2 * expected, atol=1e-4)


def test_mocov2_multi_crop_averages_every_pair_against_the_keys_view_queue(make_method, make_views):
    method = make_method("mocov2")
    student, teacher = _outputs(method, make_views(3))
    q, k, rings = student.outputs, teacher.outputs, method.queue.keys
    pairs = [(1, 0), (2, 0), (0, 1), (2, 1)]
    expected = sum(info_nce(q[s], key=k[t], temperature=0.2, queue=rings[t]) for s, t in pairs) / 4
    torch.testing.assert_close(method.ssl_loss(student, teacher, step=0), expected, rtol=0, atol=1e-6)


def test_mocov2_enqueues_each_views_keys_into_its_own_queue(make_method, make_views):
    method = make_method("mocov2", queue_size=64)
    old = method.queue.keys.clone()
    result = method(make_views(2))
    assert torch.equal(method.queue.keys, old)  # the forward pass leaves the queue alone
    method.after_optimizer_step(result, step=0, total_steps=10)
    assert int(method.queue.pointer) == 4  # keys per view, as solo-learn's queue_ptr
    for view in range(2):
        torch.testing.assert_close(
            method.queue.keys[view, :4], F.normalize(result.teacher.outputs[view], dim=1),
            rtol=0, atol=1e-6,
        )
        assert torch.equal(method.queue.keys[view, 4:], old[view, 4:])
    second = method(make_views(2, seed=7))
    method.after_optimizer_step(second, step=1, total_steps=10)
    assert int(method.queue.pointer) == 8
    torch.testing.assert_close(
        method.queue.keys[1, 4:8], F.normalize(second.teacher.outputs[1], dim=1), rtol=0, atol=1e-6
    )


def test_view_queue_wraps_and_reloads_its_pointer():
    queue = MoCoQueue(2, 5, views=2)
    first = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]], [[-1.0, 0.0], [0.0, -1.0], [0.0, 5.0]]])
    queue.enqueue(first)
    assert int(queue.pointer) == 3 and queue.size == 5
    restored = MoCoQueue(2, 5, views=2)
    restored.load_state_dict(queue.state_dict())
    second = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [0.0, -4.0]], [[6.0, 8.0], [-2.0, 0.0], [1.0, 0.0]]])
    restored.enqueue(second)  # slots 3, 4, then 0 of each ring
    assert int(restored.pointer) == 1
    expected = torch.tensor([
        [[0.0, -1.0], [0.0, 1.0], [0.6, 0.8], [1.0, 0.0], [0.0, 1.0]],
        [[1.0, 0.0], [0.0, -1.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]],
    ])
    torch.testing.assert_close(restored.keys, expected, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match=r"takes keys \[2, n, dim\]"):
        restored.enqueue(torch.ones(3, 2))


def test_view_queue_gathers_all_ranks_once_per_step_in_rank_order(monkeypatch):
    calls = []

    def two_ranks(tensor):  # rank 0 sends ``tensor``, rank 1 sends ``-tensor``
        calls.append(tuple(tensor.shape))
        assert tensor.is_contiguous()
        return torch.cat([tensor, -tensor])

    monkeypatch.setattr(queue_module, "all_gather_no_grad", two_ranks)
    queue = MoCoQueue(2, 8, views=2)
    keys = F.normalize(torch.randn(2, 3, 2), dim=-1)
    queue.enqueue(keys)
    assert calls == [(3, 2, 2)]  # one collective for both views
    assert int(queue.pointer) == 6  # 2 ranks x 3 keys per view
    for view in range(2):
        torch.testing.assert_close(queue.keys[view, :6], torch.cat([keys[view], -keys[view]]))


# ---------------------------------------------------------------------------------------
# DINO (facebookresearch/dino)
# ---------------------------------------------------------------------------------------
def dino_clip_gradients(parameters, clip):
    """facebookresearch/dino ``utils.py``, ``clip_gradients``, verbatim."""
    for p in parameters:
        if p.grad is not None:
            param_norm = p.grad.data.norm(2)
            clip_coef = clip / (param_norm + 1e-6)
            if clip_coef < 1:
                p.grad.data.mul_(clip_coef)


def dino_cosine_scheduler(base_value, final_value, epochs, niter_per_ep):
    """facebookresearch/dino ``utils.py``, ``cosine_scheduler`` without warm-up."""
    iters = list(range(epochs * niter_per_ep))
    return [
        final_value + 0.5 * (base_value - final_value) * (1 + math.cos(math.pi * i / len(iters)))
        for i in iters
    ]


def test_dino_defaults_are_main_dinos(make_method):
    method = make_method("dino")
    # --teacher_temp 0.04, --warmup_teacher_temp 0.04, --warmup_teacher_temp_epochs 0
    assert method.teacher_temperature == 0.04 and method.warmup_teacher_temperature == 0.04
    assert method.teacher_temperature_warmup_steps == 0
    assert method.student_temperature == 0.1 and method.base_momentum == 0.996
    # --clip_grad 3.0, --freeze_last_layer 1, --weight_decay 0.04, --weight_decay_end 0.4
    assert method.gradient_clip_norm == 3.0 and method.freeze_last_layer_epochs == 1
    assert method.weight_decay_start == 0.04 and method.weight_decay_end == 0.4
    assert method.last_layer_parameters() == [method.student.projector.prototypes.weight]


def _params(*grads):
    params = [nn.Parameter(torch.zeros(len(g))) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = torch.tensor(g)
    return params


def test_per_parameter_clipping_hand_computed():
    # norms 5, 1 and exactly 3: only the first is scaled to norm 3 (and the third by the
    # reference's 1e-6: 3 / (3 + 1e-6) < 1); a global-norm clip would scale all three
    big, small, at, none = (*_params([3.0, 4.0], [0.6, 0.8], [0.0, 3.0]), nn.Parameter(torch.ones(2)))
    norms = clip_gradients_per_parameter([big, small, at, none], 3.0)
    torch.testing.assert_close(torch.stack(norms), torch.tensor([5.0, 1.0, 3.0]))
    coefficient = 3.0 / (5.0 + 1e-6)
    torch.testing.assert_close(big.grad, torch.tensor([3.0, 4.0]) * coefficient, rtol=1e-6, atol=0)
    torch.testing.assert_close(big.grad, torch.tensor([1.8, 2.4]), rtol=0, atol=1e-6)
    assert torch.equal(small.grad, torch.tensor([0.6, 0.8]))  # untouched, bit for bit
    torch.testing.assert_close(at.grad, torch.tensor([0.0, 3.0 * 3.0 / (3.0 + 1e-6)]), rtol=1e-6, atol=0)
    assert at.grad[1] < 3.0  # scaled, though its norm was not above the threshold
    assert none.grad is None
    # the reference gives the same, bit for bit; the global-norm clip does not
    reference = _params([3.0, 4.0], [0.6, 0.8], [0.0, 3.0])
    dino_clip_gradients(reference, 3.0)
    for ours, theirs in zip([big, small, at], reference, strict=True):
        assert torch.equal(ours.grad, theirs.grad)
    global_clip = _params([3.0, 4.0], [0.6, 0.8], [0.0, 3.0])
    torch.nn.utils.clip_grad_norm_(global_clip, 3.0)
    assert not torch.allclose(global_clip[1].grad, small.grad)


def _dino_backward(method, make_views, scale: float = 1e4):
    result = method(make_views(2), step=0)
    method.zero_grad(set_to_none=True)
    (scale * result.loss).backward()  # large gradients, so that clipping acts
    return result


@pytest.mark.parametrize("epoch", [0, 1])
def test_dino_before_optimizer_step_is_main_dinos_clip_then_cancel(epoch, make_method, make_views):
    method = make_method("dino")
    _dino_backward(method, make_views)
    params = method.student_parameters()
    before = [None if p.grad is None else p.grad.clone() for p in params]
    assert any(g is not None and g.norm() > 3.0 for g in before)
    method.before_optimizer_step(step=0, epoch=epoch)
    # train_one_epoch: clip_gradients(student, 3.0); cancel_gradients_last_layer(epoch, student, 1)
    reference = [nn.Parameter(p.detach().clone()) for p in params]
    for r, g in zip(reference, before, strict=True):
        r.grad = None if g is None else g.clone()
    dino_clip_gradients(reference, 3.0)
    if epoch < 1:
        for r, p in zip(reference, params, strict=True):
            if p is method.student.projector.prototypes.weight:
                r.grad = None
    for ours, theirs in zip(params, reference, strict=True):
        if theirs.grad is None:
            assert ours.grad is None
        else:
            torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-6, atol=0)
            assert ours.grad.norm() <= 3.0 + 1e-4
    prototypes = method.student.projector.prototypes.weight
    assert (prototypes.grad is None) == (epoch == 0)


def test_dino_prototypes_stay_fixed_in_the_first_epoch(make_method, make_views):
    method = make_method("dino")
    optimizer = torch.optim.SGD(method.student_parameters(), lr=0.1, momentum=0.9)
    prototypes = method.student.projector.prototypes.weight
    start = prototypes.detach().clone()
    others = [p.detach().clone() for p in method.student.projector.mlp.parameters()]
    for step, epoch in ((0, 0), (1, 0)):
        result = _dino_backward(method, make_views, scale=1.0)
        method.before_optimizer_step(step=step, epoch=epoch)
        optimizer.step()
        method.after_optimizer_step(result, step=step, total_steps=4)
    assert torch.equal(prototypes, start)
    assert all(not torch.equal(p, o) for p, o in zip(method.student.projector.mlp.parameters(), others, strict=True))
    result = _dino_backward(method, make_views, scale=1.0)
    method.before_optimizer_step(step=2, epoch=1)
    optimizer.step()
    assert not torch.equal(prototypes, start)


def test_cancel_last_layer_gradients_follows_freeze_last_layer_epochs(make_method, make_views):
    method = make_method("dino", freeze_last_layer_epochs=2, gradient_clip_norm=0.0)
    _dino_backward(method, make_views, scale=1.0)
    grads = [p.grad.clone() for p in method.student_parameters()]
    method.before_optimizer_step(step=0, epoch=0)  # no clipping: gradients as they were
    prototypes = method.student.projector.prototypes.weight
    for p, g in zip(method.student_parameters(), grads, strict=True):
        assert (p.grad is None) if p is prototypes else torch.equal(p.grad, g)
    prototypes.grad = torch.ones_like(prototypes)
    cancel_last_layer_gradients(method, 1)
    assert prototypes.grad is None
    prototypes.grad = torch.ones_like(prototypes)
    cancel_last_layer_gradients(method, 2)
    assert prototypes.grad is not None


def test_cosine_schedule_is_dinos_cosine_scheduler():
    # hand-computed: end + (start - end) (1 + cos(pi s / T)) / 2 with T = 10
    assert cosine_schedule(0, 10, 0.04, 0.4) == pytest.approx(0.04, abs=1e-15)
    assert cosine_schedule(5, 10, 0.04, 0.4) == pytest.approx(0.22, abs=1e-15)
    assert cosine_schedule(10, 10, 0.04, 0.4) == pytest.approx(0.4, abs=1e-15)
    assert cosine_schedule(99, 10, 0.04, 0.4) == pytest.approx(0.4, abs=1e-15)
    # the reference array, every iteration of 3 epochs x 4 iterations
    reference = dino_cosine_scheduler(0.04, 0.4, 3, 4)
    ours = [cosine_schedule(it, 12, 0.04, 0.4) for it in range(12)]
    assert ours == pytest.approx(reference, rel=0, abs=1e-15)
    assert ours[-1] < 0.4  # denominator T, not T - 1: the reference never reaches the end


def test_dino_weight_decay_schedule_sets_the_regularised_group(make_method):
    method = make_method("dino")
    assert method.weight_decay_at(0, total_steps=8) == pytest.approx(0.04)
    assert method.weight_decay_at(4, total_steps=8) == pytest.approx(0.22)
    optimizer = build_optimizer(method.student_parameters(), name="adamw", lr=1e-3, weight_decay=1e-4)
    set_weight_decay(optimizer, method.weight_decay_at(4, total_steps=8))
    decayed = [g for g in optimizer.param_groups if all(p.ndim > 1 for p in g["params"])]
    plain = [g for g in optimizer.param_groups if any(p.ndim <= 1 for p in g["params"])]
    assert decayed and plain  # weights; norms and biases
    assert all(g["weight_decay"] == pytest.approx(0.22) for g in decayed)
    assert all(g["weight_decay"] == 0.0 for g in plain)  # never decayed, as in DINO
    assert make_method("dino", weight_decay_start=None).weight_decay_at(4, total_steps=8) is None


def test_other_methods_leave_the_loop_alone(make_method, make_views):
    for name in ("mocov2", "mocov3", "byol"):
        method = make_method(name)
        assert method.weight_decay_at(3, total_steps=10) is None
        assert method.gradient_clip_norm == 0.0 and not hasattr(method, "last_layer_parameters")  # DINO's alone
        result = method(make_views(2))
        (1e4 * result.loss).backward()
        grads = [p.grad.clone() for p in method.student_parameters()]
        method.before_optimizer_step(step=0, epoch=0)
        assert all(torch.equal(p.grad, g) for p, g in zip(method.student_parameters(), grads, strict=True))


# ---------------------------------------------------------------------------------------
# MoCo v3 (facebookresearch/moco-v3): heads per backbone, frozen ViT patch embedding
# ---------------------------------------------------------------------------------------
def moco_v3_build_mlp(num_layers, input_dim, mlp_dim, output_dim, last_bn=True):
    """facebookresearch/moco-v3 ``moco/builder.py``, ``MoCo._build_mlp``, verbatim."""
    mlp = []
    for layer in range(num_layers):
        dim1 = input_dim if layer == 0 else mlp_dim
        dim2 = output_dim if layer == num_layers - 1 else mlp_dim
        mlp.append(nn.Linear(dim1, dim2, bias=False))
        if layer < num_layers - 1:
            mlp.append(nn.BatchNorm1d(dim2))
            mlp.append(nn.ReLU(inplace=True))
        elif last_bn:
            mlp.append(nn.BatchNorm1d(dim2, affine=False))
    return nn.Sequential(*mlp)


def _vit_mocov3(**options):
    pytest.importorskip("timm")
    torch.manual_seed(0)
    backbone = create_backbone("vit_tiny", img_size=32, patch_size=4)
    sizes = {"hidden_dim": 32, "out_dim": 16, "predictor_hidden_dim": 32, **options}
    return create_method("mocov3", backbone, **sizes)


def _vit_views(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, 32, 32, generator=generator) for _ in range(2)]


def test_mocov3_vit_heads_are_moco_vits():
    method = _vit_mocov3()
    embed = method.backbone.feature_dim
    # MoCo_ViT: projector _build_mlp(3, embed, mlp_dim, dim), predictor _build_mlp(2, dim, mlp_dim, dim)
    assert _layout(method.student.projector) == _layout(moco_v3_build_mlp(3, embed, 32, 16))
    assert _layout(method.predictor) == _layout(moco_v3_build_mlp(2, 16, 32, 16))
    assert sum(isinstance(m, nn.Linear) for m in method.student.projector) == 3
    assert sum(isinstance(m, nn.Linear) for m in method.predictor) == 2
    assert method.student.projector[-1].affine is False and method.predictor[-1].affine is False


def test_mocov3_resnet_heads_are_unchanged(make_method):
    method = make_method("mocov3")
    # MoCo_ResNet: projector _build_mlp(2, ...); predictor 2 layers without a last BN
    features = method.backbone.feature_dim
    assert _layout(method.student.projector) == _layout(moco_v3_build_mlp(2, features, 32, 16))
    assert _layout(method.predictor) == [
        ("Linear", 16, 32, False), ("BN", 32, True), ("ReLU",), ("Linear", 32, 16, True),
    ]
    assert all(p.requires_grad for p in method.student.parameters())


def test_mocov3_vit_patch_embedding_is_frozen_random_and_copied_by_the_teacher():
    method = _vit_mocov3()
    proj = method.backbone.net.patch_embed.proj
    teacher_proj = method.teacher.module.backbone.net.patch_embed.proj
    frozen = {id(proj.weight), id(proj.bias)}
    assert not proj.weight.requires_grad and not proj.bias.requires_grad
    assert method.backbone.patch_embedding_frozen
    # vits.py: uniform(-val, val), val = sqrt(6 / (3 * 4 * 4 + embed_dim)); bias zero
    bound = math.sqrt(6.0 / (3 * 4 * 4 + 192))
    assert proj.weight.abs().max() <= bound and proj.weight.abs().max() > 0.9 * bound
    assert torch.equal(proj.bias, torch.zeros_like(proj.bias))
    # not trained: not among the student parameters, nor in the optimizer's groups
    trained = method.student_parameters()
    assert not frozen & {id(p) for p in trained}
    assert len(trained) == sum(1 for p in method.student.parameters()) - 2 + sum(
        1 for _ in method.predictor.parameters()
    )
    optimizer = build_optimizer(trained, name="adamw", lr=1e-3, weight_decay=0.1)
    assert not frozen & {id(p) for group in optimizer.param_groups for p in group["params"]}
    # the teacher starts as a copy of it
    assert torch.equal(teacher_proj.weight, proj.weight) and torch.equal(teacher_proj.bias, proj.bias)
    start = proj.weight.detach().clone()

    teacher_blocks = [p.detach().clone() for p in method.teacher.module.backbone.net.blocks.parameters()]
    result = method(_vit_views(), step=0)
    result.loss.backward()
    assert proj.weight.grad is None and proj.bias.grad is None  # no gradient
    assert method.backbone.net.blocks[0].attn.qkv.weight.grad is not None
    optimizer.step()
    method.after_optimizer_step(result, step=0, total_steps=10)
    assert torch.equal(proj.weight, start)
    # the EMA teacher still holds (copies) the patch embedding, and moved elsewhere
    assert torch.equal(teacher_proj.weight, proj.weight) and torch.equal(teacher_proj.bias, proj.bias)
    assert any(
        not torch.equal(p, old)
        for p, old in zip(method.teacher.module.backbone.net.blocks.parameters(), teacher_blocks, strict=True)
    )
    assert "student.backbone.net.patch_embed.proj.weight" in method.state_dict()
    assert "teacher.module.backbone.net.patch_embed.proj.weight" in method.state_dict()


def test_mocov3_vit_options_override_the_reference_defaults():
    method = _vit_mocov3(freeze_patch_embedding=False, projector_layers=2, predictor_last_batch_norm=False)
    assert all(p.requires_grad for p in method.student.parameters())
    assert sum(isinstance(m, nn.Linear) for m in method.student.projector) == 2
    assert isinstance(method.predictor[-1], nn.Linear)


def test_mocov3_freezing_needs_a_vit(make_method):
    with pytest.raises(ValueError, match="freeze_patch_embedding=True is not valid"):
        make_method("mocov3", freeze_patch_embedding=True)
