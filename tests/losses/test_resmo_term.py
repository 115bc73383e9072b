"""The ResMo term (src/resmo/losses/resmo.py) alone and inside every method, and the
intra-representation gap (src/resmo/losses/gap.py)."""

from __future__ import annotations

import math

import pytest
import torch

from resmo import ResMoSettings, intra_gap, residual_momentum_loss
from resmo.losses import LEVELS


# ---------------------------------------------------------------------------------------
# the function
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("distance", ["cosine", "mse"])
def test_resmo_is_zero_for_identical_student_and_teacher(distance):
    views = [torch.randn(4, 8) for _ in range(3)]
    loss = residual_momentum_loss(views, teacher=[v.clone() for v in views], distance=distance)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    # and clearly positive when they differ
    other = residual_momentum_loss(views, teacher=[-v for v in views], distance=distance)
    assert other.item() > 0.1


def test_resmo_kd_for_identical_inputs_is_the_teacher_entropy():
    # KD is a cross-entropy: with identical logits it equals the entropy of softmax(t / T)
    logits = torch.tensor([[math.log(3.0), 0.0]])
    loss = residual_momentum_loss([logits], teacher=[logits.clone()], distance="kd", temperature=1.0)
    p = [0.75, 0.25]  # softmax([ln 3, 0])
    assert loss.item() == pytest.approx(-sum(x * math.log(x) for x in p), rel=1e-6)


@pytest.mark.parametrize("distance", ["cosine", "mse", "kd"])
def test_resmo_gradient_reaches_student_only(distance):
    student = [torch.randn(4, 6, requires_grad=True) for _ in range(2)]
    teacher = [torch.randn(4, 6, requires_grad=True) for _ in range(2)]
    snapshot = [t.detach().clone() for t in teacher]
    residual_momentum_loss(student, teacher=teacher, distance=distance).backward()
    assert all(t.grad is None for t in teacher)
    assert all(torch.equal(t.detach(), s) for t, s in zip(teacher, snapshot, strict=True))
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)


def test_resmo_pairs_same_views():
    generator = torch.Generator().manual_seed(0)
    student = [torch.randn(4, 6, generator=generator) for _ in range(2)]
    teacher = [s + 0.1 * torch.randn(4, 6, generator=generator) for s in student]
    same = residual_momentum_loss(student, teacher=teacher)
    swapped = residual_momentum_loss(student, teacher=teacher[::-1])
    per_view = [(2 - 2 * torch.cosine_similarity(s, t, dim=-1)).mean() for s, t in zip(student, teacher, strict=True)]
    torch.testing.assert_close(same, torch.stack(per_view).mean())
    assert swapped.item() > same.item() + 0.1


def test_resmo_settings_defaults_and_warmup():
    default = ResMoSettings()
    assert (default.weight, default.level, default.distance, default.warmup_epochs) == (
        1.0, "output", "cosine", 0.0
    )
    assert default.enabled and default.weight_at(0) == 1.0
    ramp = ResMoSettings(weight=2.0, warmup_epochs=4)  # 1 step per epoch: a 4-step ramp
    assert [ramp.weight_at(step) for step in range(7)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    # 0.5 epochs of 6 steps: round(3.0) = 3 steps
    assert [ResMoSettings(weight=3.0, warmup_epochs=0.5).weight_at(s, 6) for s in range(5)] == [0, 1, 2, 3, 3]
    off = ResMoSettings(weight=0.0, warmup_epochs=4)
    assert not off.enabled and off.weight_at(10) == 0.0


def test_one_resmo_settings_type_for_recipe_and_method():
    """The recipe's ``resmo`` section is the type the methods take, frozen."""
    from resmo.config.loader import load_config

    config = load_config(None, ["resmo.weight=0.3", "resmo.warmup_epochs=2"])
    assert type(config.resmo) is ResMoSettings
    assert config.resmo == ResMoSettings(weight=0.3, warmup_epochs=2)
    with pytest.raises(ValueError, match="frozen"):
        config.resmo.weight = 1.0


# ---------------------------------------------------------------------------------------
# inside the methods
# ---------------------------------------------------------------------------------------
def _levels_identical_at_init(method) -> list[str]:
    """Levels at which student and teacher compute the same function right after building
    (the teacher is a copy of backbone + projector; the student's output adds a predictor)."""
    levels = ["features", "projection"]
    if method.predictor is None:
        levels.append("output")
    return levels


def test_resmo_zero_when_teacher_equals_student(method_name, make_method, make_views):
    views = make_views(2)
    probe = make_method(method_name)
    for level in _levels_identical_at_init(probe):
        method = make_method(method_name, resmo=ResMoSettings(level=level))
        result = method(views)
        assert result.terms["resmo"].item() == pytest.approx(0.0, abs=1e-5), level
        assert result.gaps[level].item() == pytest.approx(0.0, abs=1e-5), level
        # same tensors on both sides: the loss is exactly the SSL loss plus ~0
        torch.testing.assert_close(result.terms["loss"], result.terms["ssl"], rtol=0, atol=1e-5)


def test_resmo_in_method_pairs_same_views(method_name, make_method, make_views):
    views = make_views(2)
    method = make_method(method_name, resmo=ResMoSettings(level="projection"))
    result = method(views)
    student = result.student.level("projection")
    teacher = result.teacher.level("projection")
    paired = min(len(student), len(teacher))  # DenseCL's student sees one view (its dense
    # ResMo term, 0 here as well, is checked in tests/methods/test_densecl.py)
    same = residual_momentum_loss(student[:paired], teacher=teacher[:paired])
    swapped = residual_momentum_loss(student[:paired], teacher=teacher[::-1][:paired])
    torch.testing.assert_close(result.terms["resmo"], same.detach())
    assert same.item() == pytest.approx(0.0, abs=1e-5)
    assert swapped.item() > 1e-3  # different views give different projections


@pytest.mark.parametrize("level", LEVELS)
def test_resmo_in_method_gradient_reaches_student_only(method_name, level, make_method, make_views):
    method = make_method(method_name, resmo=ResMoSettings(level=level))
    # move the student away from the teacher so the ResMo gradient is not ~0
    with torch.no_grad():
        for parameter in method.student_parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    result = method(make_views(2))
    teacher_before = {k: v.clone() for k, v in method.teacher.state_dict().items()}
    assert all(not t.requires_grad for t in result.teacher.level(level))
    paired = min(len(result.student.outputs), len(result.teacher.outputs))
    residual = residual_momentum_loss(
        result.student.level(level)[:paired], teacher=result.teacher.level(level)[:paired],
    )
    residual.backward()
    assert all(p.grad is None for p in method.teacher.parameters())
    for key, value in method.teacher.state_dict().items():
        assert torch.equal(value, teacher_before[key]), key
    backbone_grads = [p.grad for p in method.student.backbone.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in backbone_grads)


def _grads(method) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in method.student_parameters()]


def test_resmo_weight_zero_is_bitwise_the_method_without_resmo(method_name, make_method, make_views):
    views = make_views(2)
    off = make_method(method_name, resmo=ResMoSettings(weight=0.0))
    state = off.state_dict()

    # the method without ResMo written out: the SSL loss of the same encoders
    plain = make_method(method_name, seed=7, resmo=ResMoSettings(weight=0.0))
    plain.load_state_dict(state)
    student, teacher = plain.encode_student(views), plain.encode_teacher(views)
    plain_loss = plain.ssl_loss(student, teacher, step=0)
    plain_loss.backward()

    # ResMo enabled but its warm-up puts lambda at 0 on step 0: the term is computed, not added
    ramp = make_method(method_name, seed=8, resmo=ResMoSettings(weight=1.0, warmup_epochs=5))
    ramp.load_state_dict(state)
    on = make_method(method_name, seed=9, resmo=ResMoSettings(weight=1.0))
    on.load_state_dict(state)

    results = {}
    for label, method in (("off", off), ("ramp", ramp), ("on", on)):
        results[label] = method(views, step=0)
        results[label].loss.backward()

    assert "resmo" not in results["off"].terms
    assert results["ramp"].terms["resmo_weight"].item() == 0.0
    reference = _grads(plain)
    for label in ("off", "ramp"):
        assert torch.equal(results[label].loss, plain_loss), label
        for got, want in zip(_grads(off if label == "off" else ramp), reference, strict=True):
            assert (got is None and want is None) or torch.equal(got, want), label
    # with lambda = 1 the total differs wherever the ResMo gradient is not zero
    if off.predictor is not None:
        assert not torch.equal(results["on"].loss, plain_loss)
        assert any(
            not torch.equal(got, want)
            for got, want in zip(_grads(on), reference, strict=True)
            if got is not None
        )


def test_resmo_weight_warmup_in_method(make_method, make_views):
    views = make_views(2)
    method = make_method("byol", resmo=ResMoSettings(weight=2.0, warmup_epochs=4))
    for step, weight in ((0, 0.0), (1, 0.5), (3, 1.5), (4, 2.0), (9, 2.0)):
        result = method(views, step=step)
        assert result.terms["resmo_weight"].item() == weight
        expected = result.terms["ssl"] + weight * result.terms["resmo"]
        torch.testing.assert_close(result.loss.detach(), expected)


def test_create_method_accepts_resmo_dict(make_method):
    method = make_method("mocov3", resmo={"weight": 0.5, "level": "features", "distance": "mse"})
    assert method.resmo == ResMoSettings(weight=0.5, level="features", distance="mse")


# ---------------------------------------------------------------------------------------
# intra gap
# ---------------------------------------------------------------------------------------
def test_intra_gap_hand_computed():
    # cosines: view 1 -> 0 and 1; view 2 -> -1 and 1/sqrt2; gap = 1 - mean
    student = [torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 0.0], [1.0, 0.0]])]
    teacher = [torch.tensor([[0.0, 1.0], [2.0, 2.0]]), torch.tensor([[-1.0, 0.0], [1.0, 1.0]])]
    expected = 1 - (0 + 1 - 1 + 1 / math.sqrt(2)) / 4
    assert intra_gap(student, teacher=teacher).item() == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="one to one"):
        intra_gap(student, teacher=teacher[:1])
