"""resmo's LARS against solo-learn's LARS step, written out independently below.

Reference: ``vturrisi/solo-learn``, ``solo/utils/lars.py`` at commit
``c32f9cee5ff925d2f61bf572322abbe87684072c`` (``LARS.step``; its clip flag is named
``clip_lars_lr`` there, ``clip_lr`` in the version the recipes' kwargs are passed to), used
with ``scripts/pretrain/cifar/{mocov3,dino}.yaml`` at ``07f8c3bb3ec1c78a984d6e77d44bfbe882a4870c``
and ``byol.yaml``: ``optimizer.kwargs = {clip_lr: True, eta: 0.02, exclude_bias_n_norm: True}``,
momentum 0.9 (``solo/args/pretrain.py``), one weight decay for every parameter.

The model is Linear(6, 8) + BatchNorm1d(8) + ReLU + Linear(8, 3) in float64 with fixed
gradients: the first layer's are small, so its trust ratio exceeds the lr and the clip binds;
the last layer's are large, so it never binds; the BatchNorm bias starts at zero and one
weight gets an all-zero gradient, so the reference's "a norm is zero" branch runs too.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from torch import nn

from resmo.config.schema import OptimizerSection
from resmo.optim.lars import LARS
from resmo.optim.optimizers import build_optimizer

TOLERANCE = 1e-6
#: one learning rate per step, as a schedule sets them (1.5 > 1, and the clip compares with it)
LRS = (0.3, 0.15, 1.5, 0.05)
ETA, EPS = 0.02, 1e-8
#: gradient scale per parameter (others: 1.0)
GRADIENT_SCALE = {"0.weight": 1e-3, "0.bias": 0.1, "1.weight": 0.1, "1.bias": 0.1}
#: (step, parameter) with an all-zero gradient
ZERO_GRADIENTS = {(1, "3.weight")}


@torch.no_grad()
def solo_learn_step(params, state, *, lr, momentum, dampening, weight_decay, nesterov, eta, eps,
                    clip_lr, exclude_bias_n_norm):
    """``LARS.step`` of solo-learn for one parameter group, line by line (see module docstring)."""
    for p in params:
        if p.grad is None:
            continue

        d_p = p.grad
        p_norm = torch.norm(p.data)
        g_norm = torch.norm(p.grad.data)

        # lars scaling + weight decay part
        if p.ndim != 1 or not exclude_bias_n_norm:
            if p_norm != 0 and g_norm != 0:
                lars_lr = p_norm / (g_norm + p_norm * weight_decay + eps)
                lars_lr *= eta

                # clip lr
                if clip_lr:
                    lars_lr = min(lars_lr / lr, 1)

                d_p = d_p.add(p, alpha=weight_decay)
                d_p *= lars_lr

        # sgd part
        if momentum != 0:
            param_state = state.setdefault(p, {})
            if "momentum_buffer" not in param_state:
                buf = param_state["momentum_buffer"] = torch.clone(d_p).detach()
            else:
                buf = param_state["momentum_buffer"]
                buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
            if nesterov:
                d_p = d_p.add(buf, alpha=momentum)
            else:
                d_p = buf

        p.add_(d_p, alpha=-lr)


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()


def fixed_gradients(model: nn.Module, steps: int, zero=ZERO_GRADIENTS) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    per_step = []
    for step in range(steps):
        gradients = {}
        for name, parameter in model.named_parameters():
            gradient = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            scale = 0.0 if (step, name) in zero else GRADIENT_SCALE.get(name, 1.0)
            gradients[name] = gradient * scale
        per_step.append(gradients)
    return per_step


def set_gradients(model: nn.Module, gradients: dict[str, torch.Tensor]) -> None:
    for name, parameter in model.named_parameters():
        parameter.grad = gradients[name].clone()


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def lockstep(model: nn.Module, reference: nn.Module, optimizer: torch.optim.Optimizer,
             options: dict):
    """Step ``optimizer`` on ``model`` and the transcribed solo-learn step on ``reference``
    with the same fixed gradients and learning rates (``LRS``); yields after each step."""
    state: dict = {}
    for lr, gradients in zip(LRS, fixed_gradients(model, len(LRS)), strict=True):
        set_gradients(model, gradients)
        set_gradients(reference, gradients)
        set_lr(optimizer, lr)
        optimizer.step()
        solo_learn_step(list(reference.parameters()), state, lr=lr, **options)
        yield lr


def assert_same_parameters(model: nn.Module, reference: nn.Module, atol: float = TOLERANCE) -> None:
    for (name, parameter), expected in zip(model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(parameter, expected, rtol=0, atol=atol,
                                   msg=lambda message, name=name: f"{name}: {message}")


SGD_SETTINGS = {
    "momentum": {"momentum": 0.9, "dampening": 0.0, "nesterov": False},
    "nesterov": {"momentum": 0.9, "dampening": 0.0, "nesterov": True},
    "dampening": {"momentum": 0.9, "dampening": 0.1, "nesterov": False},
    "no-momentum": {"momentum": 0.0, "dampening": 0.0, "nesterov": False},
}


@pytest.mark.parametrize("sgd", sorted(SGD_SETTINGS))
@pytest.mark.parametrize("weight_decay", [1e-6, 1e-2])
@pytest.mark.parametrize("exclude_bias_n_norm", [True, False])
@pytest.mark.parametrize("clip_lr", [True, False])
def test_lars_matches_the_solo_learn_step(clip_lr, exclude_bias_n_norm, weight_decay, sgd):
    model = small_model()
    reference, initial = copy.deepcopy(model), copy.deepcopy(model)
    options = {"weight_decay": weight_decay, "eta": ETA, "eps": EPS, "clip_lr": clip_lr,
               "exclude_bias_n_norm": exclude_bias_n_norm, **SGD_SETTINGS[sgd]}
    optimizer = LARS(model.parameters(), lr=LRS[0], **options)
    for _ in lockstep(model, reference, optimizer, options):
        assert_same_parameters(model, reference)
    for (name, parameter), start in zip(model.named_parameters(), initial.parameters(), strict=True):
        assert (parameter - start).abs().max() > 1e-5, f"{name} did not move: the check is empty"


def test_clipping_binds_where_the_trust_ratio_exceeds_the_lr():
    """One step, no momentum history: the first layer is clipped (multiplier exactly 1), the
    last is not (its step is ``r * (g + wd * w)``, whatever the lr); without the clip both
    take ``lr * r * (g + wd * w)``."""
    lr, weight_decay = 0.3, 1e-2
    model = small_model()
    gradients = fixed_gradients(model, 1)[0]

    def trust(name):
        weight, gradient = dict(model.named_parameters())[name].detach(), gradients[name]
        return ETA * weight.norm() / (gradient.norm() + weight_decay * weight.norm() + EPS)

    assert trust("0.weight") / lr > 1  # the clip binds on the first layer
    assert trust("3.weight") / lr < 1  # and not on the last

    def one_step(clip_lr):
        stepped = copy.deepcopy(model)
        set_gradients(stepped, gradients)
        LARS(stepped.parameters(), lr=lr, weight_decay=weight_decay, eta=ETA, clip_lr=clip_lr).step()
        return dict(stepped.named_parameters())

    clipped, unclipped = one_step(True), one_step(False)
    for name, multiplier_clipped in (("0.weight", lr), ("3.weight", trust("3.weight"))):
        weight = dict(model.named_parameters())[name].detach()
        direction = gradients[name] + weight_decay * weight
        torch.testing.assert_close(clipped[name], weight - multiplier_clipped * direction,
                                   rtol=0, atol=1e-12)
        torch.testing.assert_close(unclipped[name], weight - lr * trust(name) * direction,
                                   rtol=0, atol=1e-12)
        assert (clipped[name] - unclipped[name]).abs().max() > 1e-4
    # the trust ratio divides by ||g|| + wd ||w||: ||g + wd w|| would give another step
    weight = dict(model.named_parameters())["0.weight"].detach()
    direction = gradients["0.weight"] + weight_decay * weight
    other = ETA * weight.norm() / direction.norm()
    assert (unclipped["0.weight"] - (weight - lr * other * direction)).abs().max() > 1e2 * TOLERANCE


@pytest.mark.parametrize("sgd", ["momentum", "nesterov", "dampening"])
@pytest.mark.parametrize("clip_lr", [True, False])
def test_excluded_parameters_take_plain_sgd_with_momentum_and_no_weight_decay(clip_lr, sgd):
    model = small_model()
    twin = copy.deepcopy(model)
    settings = SGD_SETTINGS[sgd]
    lars = LARS(model.parameters(), lr=LRS[0], weight_decay=1e-2, eta=ETA, clip_lr=clip_lr,
                exclude_bias_n_norm=True, **settings)
    plain = torch.optim.SGD([p for p in twin.parameters() if p.ndim == 1], lr=LRS[0],
                            weight_decay=0.0, **settings)
    zero_for_norms = {(1, "1.weight"), (1, "1.bias")}  # a decayed norm would move here
    for lr, gradients in zip(LRS, fixed_gradients(model, len(LRS), zero=zero_for_norms), strict=True):
        set_gradients(model, gradients)
        set_gradients(twin, gradients)
        set_lr(lars, lr)
        set_lr(plain, lr)
        lars.step()
        plain.step()
    one_dimensional = [name for name, p in model.named_parameters() if p.ndim == 1]
    assert one_dimensional == ["0.bias", "1.weight", "1.bias", "3.bias"]
    twin_parameters = dict(twin.named_parameters())
    for name, parameter in model.named_parameters():
        if parameter.ndim == 1:
            torch.testing.assert_close(parameter, twin_parameters[name], rtol=0, atol=1e-15)


def test_without_exclusion_one_dimensional_parameters_are_adapted():
    model = small_model()
    twin = copy.deepcopy(model)
    gradients = fixed_gradients(model, 1)[0]
    set_gradients(model, gradients)
    set_gradients(twin, gradients)
    LARS(model.parameters(), lr=0.3, weight_decay=1e-2, exclude_bias_n_norm=False).step()
    torch.optim.SGD(twin.parameters(), lr=0.3, momentum=0.9).step()
    assert (model[0].bias - twin[0].bias).abs().max() > 1e-3


@pytest.mark.parametrize("exclude", [True, False])
@pytest.mark.parametrize("clip", [True, False])
def test_build_optimizer_gives_the_reference_on_the_whole_model(clip, exclude):
    """solo-learn passes all parameters with one weight decay; the groups resmo makes (1-D
    parameters apart) must not change the update."""
    model = small_model()
    reference = copy.deepcopy(model)
    weight_decay = 1e-2
    optimizer = build_optimizer(model.parameters(), name="lars", lr=LRS[0], weight_decay=weight_decay,
                                momentum=0.9, lars_eta=ETA, lars_clip=clip,
                                lars_exclude_bias_and_norm=exclude)
    assert isinstance(optimizer, LARS)
    assert [len(group["params"]) for group in optimizer.param_groups] == [2, 4]
    assert [group["weight_decay"] for group in optimizer.param_groups] == [
        weight_decay, 0.0 if exclude else weight_decay]
    options = {"momentum": 0.9, "dampening": 0.0, "weight_decay": weight_decay, "nesterov": False,
               "eta": ETA, "eps": EPS, "clip_lr": clip, "exclude_bias_n_norm": exclude}
    for _ in lockstep(model, reference, optimizer, options):
        pass
    assert_same_parameters(model, reference)


def test_defaults_are_the_cited_recipes():
    section = OptimizerSection()
    assert (section.lars_eta, section.lars_clip, section.lars_exclude_bias_and_norm) == (0.02, True, True)
    assert section.momentum == 0.9
    optimizer = build_optimizer(small_model().parameters(), name="lars", lr=0.3, weight_decay=1e-6)
    for group in optimizer.param_groups:
        assert group["eta"] == 0.02 and group["clip_lr"] is True
        assert group["exclude_bias_n_norm"] is True and group["momentum"] == 0.9
        assert group["eps"] == 1e-8 and group["dampening"] == 0 and group["nesterov"] is False


def test_invalid_settings_are_refused():
    parameters = list(small_model().parameters())
    with pytest.raises(ValueError, match="lr"):
        LARS(parameters, lr=-1.0)
    with pytest.raises(ValueError, match="eta"):
        LARS(parameters, lr=0.1, eta=float("nan"))
    with pytest.raises(ValueError, match="nesterov"):
        LARS(parameters, lr=0.1, nesterov=True, dampening=0.1)
    with pytest.raises(ValueError, match="optimizer.lars_eta"):
        build_optimizer(parameters, name="lars", lr=0.1, weight_decay=0.0, lars_eta=-1.0)


def test_a_state_saved_before_the_new_settings_loads_with_the_current_ones():
    model = small_model()
    set_gradients(model, fixed_gradients(model, 1)[0])
    old = LARS(model.parameters(), lr=0.3)
    old.step()
    saved = old.state_dict()
    for group in saved["param_groups"]:
        for key in ("clip_lr", "exclude_bias_n_norm", "eps", "dampening", "nesterov"):
            del group[key]
    fresh = LARS(model.parameters(), lr=0.3, clip_lr=False)
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["clip_lr"] is False and fresh.param_groups[0]["eps"] == EPS
    fresh.step()


def test_a_step_makes_no_host_read():
    from tests.benchmarks.test_benchmark_scripts import load

    host_syncs = load("host_syncs")
    model = small_model()
    optimizer = build_optimizer(model.parameters(), name="lars", lr=0.3, weight_decay=1e-2)
    for gradients in fixed_gradients(model, 2):
        set_gradients(model, gradients)
        with host_syncs.SyncCounter() as counter:
            optimizer.step()
        assert counter.calls == []
    with host_syncs.SyncCounter() as counter:  # the counter does see the reference's reads
        solo_learn_step(list(model.parameters()), {}, lr=0.3, momentum=0.9, dampening=0.0,
                        weight_decay=1e-2, nesterov=False, eta=ETA, eps=EPS, clip_lr=True,
                        exclude_bias_n_norm=True)
    assert counter.calls


def timm_lars(model: nn.Module, *, lr: float, weight_decay: float, clip: bool, exclude: bool):
    """timm's Lars set up to mimic solo-learn: exclusion through groups, adaptation always on."""
    from timm.optim import Lars

    one_dimensional = [p for p in model.parameters() if p.ndim == 1]
    rest = [p for p in model.parameters() if p.ndim != 1]
    groups = [{"params": rest, "weight_decay": weight_decay, "always_adapt": True}]
    groups.append({"params": one_dimensional, "weight_decay": 0.0, "always_adapt": False} if exclude
                  else {"params": one_dimensional, "weight_decay": weight_decay, "always_adapt": True})
    extra = {"foreach": False} if "foreach" in inspect.signature(Lars).parameters else {}
    return Lars(groups, lr=lr, momentum=0.9, trust_coeff=ETA, eps=EPS, trust_clip=clip, **extra)


@pytest.mark.parametrize("exclude", [True, False])
@pytest.mark.parametrize("clip", [True, False])
def test_timm_lars_agrees_where_no_norm_is_zero(clip, exclude):
    pytest.importorskip("timm")
    model = small_model()
    with torch.no_grad():
        model[1].bias.fill_(0.1)  # no zero weight
    other = copy.deepcopy(model)
    ours = LARS(model.parameters(), lr=LRS[0], weight_decay=1e-2, eta=ETA, clip_lr=clip,
                exclude_bias_n_norm=exclude)
    theirs = timm_lars(other, lr=LRS[0], weight_decay=1e-2, clip=clip, exclude=exclude)
    for lr, gradients in zip(LRS, fixed_gradients(model, len(LRS), zero=set()), strict=True):
        set_gradients(model, gradients)
        set_gradients(other, gradients)
        set_lr(ours, lr)
        set_lr(theirs, lr)
        ours.step()
        theirs.step()
    assert_same_parameters(model, other)


@pytest.mark.parametrize("case", ["zero gradient", "zero weight"])
def test_timm_lars_differs_where_a_norm_is_zero(case):
    """Why resmo keeps its own LARS (``resmo.optim.lars`` docstring): the reference steps by
    the raw gradient there, timm by ``(g + wd * w) * min(1 / lr, 1)``."""
    pytest.importorskip("timm")
    weight_decay = 1e-2
    if case == "zero gradient":  # a weight with wd > 0 and an all-zero gradient
        name, lr, exclude, zero = "3.weight", 0.3, True, {(0, "3.weight")}
    else:  # the zero-initialised BatchNorm bias, not excluded, lr > 1, clipped
        name, lr, exclude, zero = "1.bias", 1.5, False, set()
    model = small_model()
    other, start = copy.deepcopy(model), copy.deepcopy(model)
    gradients = fixed_gradients(model, 1, zero=zero)[0]
    set_gradients(model, gradients)
    set_gradients(other, gradients)
    LARS(model.parameters(), lr=lr, weight_decay=weight_decay, eta=ETA, clip_lr=True,
         exclude_bias_n_norm=exclude).step()
    timm_lars(other, lr=lr, weight_decay=weight_decay, clip=True, exclude=exclude).step()
    weight, gradient = dict(start.named_parameters())[name].detach(), gradients[name]
    torch.testing.assert_close(dict(model.named_parameters())[name], weight - lr * gradient,
                               rtol=0, atol=1e-12)
    timm_step = lr * min(1 / lr, 1.0) * (gradient + weight_decay * weight)
    torch.testing.assert_close(dict(other.named_parameters())[name], weight - timm_step,
                               rtol=0, atol=1e-12)
    assert (dict(model.named_parameters())[name] - dict(other.named_parameters())[name]).abs().max() > 1e-4


def test_sgd_decays_norm_and_bias_only_when_asked():
    from torch import nn

    from resmo.optim.optimizers import build_optimizer

    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    for decay, expected in ((False, 0.0), (True, 1e-4)):
        optimizer = build_optimizer(model.parameters(), name="sgd", lr=0.1, weight_decay=1e-4,
                                    weight_decay_norm_and_bias=decay)
        weights, one_dimensional = optimizer.param_groups
        assert weights["weight_decay"] == 1e-4 and all(p.ndim > 1 for p in weights["params"])
        assert one_dimensional["weight_decay"] == expected and len(one_dimensional["params"]) == 3
