"""Every registered method through one full training step (src/resmo/methods), and each
method's SSL loss against the formula of its paper."""

from __future__ import annotations

import math

import pytest
import torch

from resmo import ResMoSettings, method_names
from resmo.losses import byol_regression, dino_cross_entropy, info_nce
from resmo.methods import method_options
from resmo.methods.base import cross_view_pairs

RESMO = {"on": ResMoSettings(weight=1.0), "off": ResMoSettings(weight=0.0)}


def test_every_method_has_tiny_test_sizes(tiny_sizes):
    # a method added without an entry in conftest.py would be tested at ImageNet sizes (slow)
    assert set(method_names()) == set(tiny_sizes)


def _full_step(method, views, *, step: int, total_steps: int, lr: float = 0.5):
    """forward, backward, SGD step, after_optimizer_step; checks the EMA update exactly."""
    optimizer = torch.optim.SGD(method.student_parameters(), lr=lr)
    teacher_before = [p.detach().clone() for p in method.teacher.parameters()]
    student_before = [p.detach().clone() for p in method.student.parameters()]

    result = method(views, step=step)
    assert result.loss.ndim == 0 and torch.isfinite(result.loss)
    optimizer.zero_grad()
    result.loss.backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    optimizer.step()
    # the optimizer alone leaves the teacher untouched
    for p, old in zip(method.teacher.parameters(), teacher_before, strict=True):
        assert torch.equal(p, old)
    student_after = [p.detach().clone() for p in method.student.parameters()]
    assert any(
        not torch.equal(new, old) for new, old in zip(student_after, student_before, strict=True)
    )

    momentum = method.after_optimizer_step(result, step=step, total_steps=total_steps)
    assert momentum == method.momentum_at(step, total_steps=total_steps)
    moved = 0
    for p, old, new in zip(method.teacher.parameters(), teacher_before, student_after, strict=True):
        assert p.grad is None and not p.requires_grad
        expected = momentum * old + (1.0 - momentum) * new
        torch.testing.assert_close(p, expected, rtol=1e-6, atol=1e-6)
        moved += not torch.equal(p, old)
    assert moved > 0
    return result, momentum


@pytest.mark.parametrize("resmo", ["on", "off"])
def test_training_step_of_every_method(method_name, resmo, make_method, make_views):
    method = make_method(method_name, resmo=RESMO[resmo], momentum=0.5, final_momentum=1.0)
    views = make_views(2, batch=4, size=32)
    # step 1 of 4 from 0.5 to 1.0: m = 1 - 0.5 * (cos(pi / 3) + 1) / 2 = 0.625
    result, momentum = _full_step(method, views, step=1, total_steps=4)
    assert momentum == pytest.approx(0.625)

    expected_terms = {"ssl", "loss"} | ({"resmo", "resmo_weight"} if resmo == "on" else set())
    if method_name == "densecl":  # its SSL loss's two parts are logged too
        expected_terms |= {"ssl_global", "ssl_dense"}
    assert set(result.terms) == expected_terms
    assert all(torch.isfinite(v) for v in result.terms.values())
    assert set(result.gaps) == {"features", "projection", "output"}
    assert all(torch.isfinite(g) for g in result.gaps.values())
    # DenseCL's student sees the query view only (its reference's asymmetric loss)
    student_views = 1 if method_name == "densecl" else 2
    assert len(result.student.outputs) == student_views and len(result.teacher.outputs) == 2
    assert result.student.features[0].shape == (4, method.backbone.feature_dim)
    # a second step runs from the updated state
    _full_step(method, make_views(2, batch=4, size=32, seed=5), step=2, total_steps=4)


@pytest.mark.parametrize("resmo", ["on", "off"])
def test_dino_multi_crop_step(resmo, make_method):
    method = make_method("dino", resmo=RESMO[resmo], momentum=0.5)
    generator = torch.Generator().manual_seed(0)
    views = [torch.randn(4, 3, 32, 32, generator=generator) for _ in range(2)]
    views += [torch.randn(4, 3, 16, 16, generator=generator) for _ in range(2)]
    result, _ = _full_step(method, views, step=0, total_steps=3)
    assert len(result.student.outputs) == 4 and len(result.teacher.outputs) == 2
    # 2 teacher (global) views x 3 other student views = 6 pairs
    expected = dino_cross_entropy(
        result.student.outputs, teacher_logits=result.teacher.outputs,
        center=torch.zeros(1, 32), student_temperature=0.1, teacher_temperature=0.04,
    )
    assert torch.equal(result.terms["ssl"], expected.detach())
    if resmo == "on":  # ResMo compares only the global crops, the ones the teacher sees
        residual = result.terms["resmo"]
        torch.testing.assert_close(
            residual,
            torch.stack([
                (2 - 2 * torch.cosine_similarity(s, t, dim=-1)).mean()
                for s, t in zip(result.student.outputs[:2], result.teacher.outputs, strict=True)
            ]).mean().detach(),
        )
    _full_step(method, views, step=1, total_steps=3)


def test_cross_view_pairs():
    assert cross_view_pairs(2, 2) == [(1, 0), (0, 1)]
    assert cross_view_pairs(4, 2) == [(1, 0), (2, 0), (3, 0), (0, 1), (2, 1), (3, 1)]


# ---------------------------------------------------------------------------------------
# each method's SSL loss is its paper's formula
# ---------------------------------------------------------------------------------------
def _outputs(method, views):
    with torch.no_grad():
        return method.encode_student(views), method.encode_teacher(views)


def test_byol_loss_is_symmetrised_regression(make_method, make_views):
    method = make_method("byol")
    student, teacher = _outputs(method, make_views(2))
    p, z = student.outputs, teacher.outputs
    assert p[0].shape == (4, 16) and torch.equal(z[0], teacher.projections[0])
    expected = byol_regression(p[0], target=z[1]) + byol_regression(p[1], target=z[0])
    torch.testing.assert_close(method.ssl_loss(student, teacher, step=0), expected, rtol=0, atol=1e-6)


def test_mocov3_loss_is_2tau_symmetric_infonce(make_method, make_views):
    method = make_method("mocov3", temperature=0.3)
    student, teacher = _outputs(method, make_views(2))
    q, k = student.outputs, teacher.outputs
    expected = 2 * 0.3 * (
        info_nce(q[0], key=k[1], temperature=0.3) + info_nce(q[1], key=k[0], temperature=0.3)
    )
    torch.testing.assert_close(method.ssl_loss(student, teacher, step=0), expected, rtol=0, atol=1e-6)


def test_mocov2_loss_uses_queue_negatives(make_method, make_views):
    # solo-learn MoCo v2+: mean of the two terms, the negatives the queue of the key's view
    method = make_method("mocov2", temperature=0.2)
    student, teacher = _outputs(method, make_views(2))
    q, k, queue = student.outputs, teacher.outputs, method.queue.keys
    expected = (info_nce(q[0], key=k[1], temperature=0.2, queue=queue[1]) + info_nce(
        q[1], key=k[0], temperature=0.2, queue=queue[0]
    )) / 2
    torch.testing.assert_close(method.ssl_loss(student, teacher, step=0), expected, rtol=0, atol=1e-6)
    # the negatives are the queue: other keys give another loss
    with torch.no_grad():
        method.queue.keys.copy_(-method.queue.keys)
    assert not torch.allclose(method.ssl_loss(student, teacher, step=0), expected)


def test_mocov2_pairs_every_student_view(make_method, make_views):
    # with more student than teacher views (multi-crop), every student view is a query
    method = make_method("mocov2")
    student, teacher = _outputs(method, make_views(3))
    q, k, queue = student.outputs, teacher.outputs, method.queue.keys
    assert len(q) == 3 and len(k) == 2
    expected = sum(
        info_nce(q[s], key=k[t], temperature=0.2, queue=queue[t]) for s, t in cross_view_pairs(3, 2)
    ) / 4
    torch.testing.assert_close(method.ssl_loss(student, teacher, step=0), expected, rtol=0, atol=1e-6)


def test_dino_loss_uses_centre_and_teacher_temperature_warmup(make_method, make_views):
    method = make_method(
        "dino", teacher_temperature=0.07, warmup_teacher_temperature=0.04,
        teacher_temperature_warmup_epochs=1.5, steps_per_epoch=2,  # round(1.5 x 2) = 3 steps
    )
    assert method.teacher_temperature_warmup_steps == 3
    assert [method.teacher_temperature_at(s) for s in (0, 3, 10)] == [0.04, 0.07, 0.07]
    student, teacher = _outputs(method, make_views(2))
    with torch.no_grad():
        method.center.center.copy_(torch.randn(1, 32))
    for step, tau_t in ((0, 0.04), (3, 0.07)):
        expected = dino_cross_entropy(
            student.outputs, teacher_logits=teacher.outputs, center=method.center.center,
            student_temperature=0.1, teacher_temperature=tau_t,
        )
        assert torch.equal(method.ssl_loss(student, teacher, step=step), expected)


# ---------------------------------------------------------------------------------------
# explicit state updates after the optimizer step
# ---------------------------------------------------------------------------------------
def test_mocov2_enqueues_teacher_keys_after_the_step(make_method, make_views):
    method = make_method("mocov2", queue_size=64)
    old_keys = method.queue.keys.clone()
    result = method(make_views(2))
    assert torch.equal(method.queue.keys, old_keys)  # forward has no side effect on the queue
    method.after_optimizer_step(result, step=0, total_steps=10)
    assert int(method.queue.pointer) == 4  # keys per view: view v's keys go to queue v
    expected = torch.nn.functional.normalize(torch.stack(result.teacher.outputs), dim=-1)
    torch.testing.assert_close(method.queue.keys[:, :4], expected, rtol=0, atol=1e-6)
    assert torch.equal(method.queue.keys[:, 4:], old_keys[:, 4:])


def test_dino_updates_centre_after_the_step(make_method, make_views):
    method = make_method("dino", center_momentum=0.9)
    result = method(make_views(2))
    assert torch.equal(method.center.center, torch.zeros(1, 32))  # forward leaves it alone
    method.after_optimizer_step(result, step=0, total_steps=10)
    expected = 0.1 * torch.cat(result.teacher.outputs).mean(dim=0, keepdim=True)
    torch.testing.assert_close(method.center.center, expected, rtol=1e-6, atol=1e-7)


def test_teacher_sees_first_views_only(make_method, make_views):
    method = make_method("byol", num_teacher_views=2)
    result = method(make_views(4))
    assert len(result.student.outputs) == 4 and len(result.teacher.outputs) == 2
    with pytest.raises(ValueError, match="needs at least 2 views"):
        method(make_views(1))


def test_method_options_are_listed(method_name, tiny_sizes):
    options = method_options(method_name)
    for shared in ("momentum", "final_momentum", "buffer_policy", "num_teacher_views"):
        assert shared in options
    assert "resmo" not in options and "predictor" not in options
    assert set(tiny_sizes[method_name]) <= set(options)


def test_student_parameters_exclude_teacher(method_name, make_method):
    method = make_method(method_name)
    student_ids = {id(p) for p in method.student_parameters()}
    teacher_ids = {id(p) for p in method.teacher.parameters()}
    assert not student_ids & teacher_ids
    expected = len(list(method.student.parameters()))
    if method.predictor is not None:
        expected += len(list(method.predictor.parameters()))
    assert len(student_ids) == expected
    assert math.isfinite(sum(p.sum().item() for p in method.student_parameters()))
