"""The multi-tensor LARS step and DINO's fused clipping against their per-parameter loops.

``LARS(foreach=False)`` is the per-parameter step (checked against solo-learn's step in
``test_lars.py``); the default multi-tensor step must give the same parameters and momentum
buffers to 1e-6 over several steps, in every setting, through the reference's special
cases (a zero weight, an all-zero gradient, a parameter without gradient), keep the same
state dict, and dispatch at most a fifth of the loop's ops for ResNet-18.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from resmo.backbones import create_backbone
from resmo.methods.base import CLIP_EPSILON, clip_gradients_per_parameter
from resmo.optim.lars import LARS
from resmo.optim.optimizers import build_optimizer
from tests.benchmarks.test_benchmark_scripts import load

TOLERANCE = 1e-6
LRS = (0.3, 0.15, 1.5, 0.05, 0.2)  #: one per step of `run`
SGD = {
    "momentum": {"momentum": 0.9, "dampening": 0.0, "nesterov": False},
    "nesterov": {"momentum": 0.9, "dampening": 0.0, "nesterov": True},
    "dampening": {"momentum": 0.9, "dampening": 0.1, "nesterov": False},
    "no-momentum": {"momentum": 0.0, "dampening": 0.0, "nesterov": False},
}


def conv_model(dtype=torch.float32) -> nn.Module:
    """Conv + BatchNorm + Linear with a zero-initialised BatchNorm weight and bias (the
    ``||w|| == 0`` case when 1-D parameters are adapted)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8, 5),
                          nn.Linear(5, 4, bias=False)).to(dtype)
    with torch.no_grad():
        model[1].weight.zero_()
    return model


def gradients_of(model: nn.Module, step: int) -> dict[str, torch.Tensor | None]:
    """Random gradients of very different scales; the last layer has none at step 0 (a
    frozen layer: no buffer yet) and an all-zero gradient at step 2."""
    generator = torch.Generator().manual_seed(100 + step)
    gradients = {}
    for position, (name, parameter) in enumerate(model.named_parameters()):
        scale = 10.0 ** (position % 4 - 3)
        gradients[name] = (torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
                           * scale).to(parameter.dtype)
    last = list(gradients)[-1]
    gradients[last] = None if step == 0 else gradients[last] * (0 if step == 2 else 1)
    return gradients


def run(model: nn.Module, optimizer: torch.optim.Optimizer, steps: range | list[int] = range(5)) -> None:
    for step in steps:
        for name, parameter in model.named_parameters():
            gradient = gradients_of(model, step)[name]
            parameter.grad = None if gradient is None else gradient.clone()
        for group in optimizer.param_groups:
            group["lr"] = LRS[step]
        optimizer.step()


def assert_same_state(ours: nn.Module, ours_opt, theirs: nn.Module, theirs_opt, atol=TOLERANCE) -> None:
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=atol, msg=lambda m, name=name: f"{name}: {m}")
        state_a, state_b = ours_opt.state.get(a, {}), theirs_opt.state.get(b, {})
        assert state_a.keys() == state_b.keys(), name
        for key in state_a:
            torch.testing.assert_close(state_a[key], state_b[key], rtol=0, atol=atol)


@pytest.mark.parametrize("sgd", sorted(SGD))
@pytest.mark.parametrize("exclude", [True, False])
@pytest.mark.parametrize("clip", [True, False])
def test_foreach_step_equals_the_per_parameter_step(clip, exclude, sgd):
    model = conv_model()
    twin, start = copy.deepcopy(model), copy.deepcopy(model)
    options = {"weight_decay": 1e-2, "eta": 0.02, "clip_lr": clip, "exclude_bias_n_norm": exclude, **SGD[sgd]}
    ours = LARS(model.parameters(), lr=LRS[0], **options)
    loop = LARS(twin.parameters(), lr=LRS[0], foreach=False, **options)
    assert ours.foreach and not loop.foreach
    for step in range(len(LRS)):
        run(model, ours, [step])
        run(twin, loop, [step])
        assert_same_state(model, ours, twin, loop)
    for (name, parameter), before in zip(model.named_parameters(), start.parameters(), strict=True):
        assert (parameter - before).abs().max() > 1e-5, f"{name} did not move: the check is empty"


def test_groups_of_two_dtypes_and_the_recipe_groups():
    """resmo's two LARS groups (weights; 1-D parameters) over parameters of two dtypes."""
    model = conv_model()
    model[3].double()
    twin = copy.deepcopy(model)
    ours = build_optimizer(model.parameters(), name="lars", lr=LRS[0], weight_decay=1e-2)
    loop = build_optimizer(twin.parameters(), name="lars", lr=LRS[0], weight_decay=1e-2)
    loop.foreach = False
    run(model, ours)
    run(twin, loop)
    assert model[3].weight.dtype == torch.float64 and model[0].weight.dtype == torch.float32
    assert_same_state(model, ours, twin, loop)


def test_state_dicts_are_interchangeable():
    """A checkpoint of the per-parameter step (every resmo checkpoint so far) resumes in the
    multi-tensor step with the same result as never stopping, and the layouts are equal."""
    model = conv_model()
    twin = copy.deepcopy(model)
    loop = LARS(twin.parameters(), lr=0.3, weight_decay=1e-2, foreach=False)
    run(twin, loop, range(2))
    saved_model, saved = copy.deepcopy(twin.state_dict()), copy.deepcopy(loop.state_dict())
    run(twin, loop, range(2, len(LRS)))

    model.load_state_dict(saved_model)
    resumed = LARS(model.parameters(), lr=0.3, weight_decay=1e-2)
    resumed.load_state_dict(saved)
    run(model, resumed, range(2, len(LRS)))
    assert_same_state(model, resumed, twin, loop)
    ours, theirs = resumed.state_dict(), loop.state_dict()
    assert {k: sorted(v) for k, v in ours["state"].items()} == {k: sorted(v) for k, v in theirs["state"].items()}


def test_the_state_dict_layout_is_the_per_parameter_steps():
    model = conv_model()
    twin = copy.deepcopy(model)
    ours = LARS(model.parameters(), lr=0.3, weight_decay=1e-2)
    loop = LARS(twin.parameters(), lr=0.3, weight_decay=1e-2, foreach=False)
    run(model, ours)
    run(twin, loop)
    saved, expected = ours.state_dict(), loop.state_dict()
    assert saved["param_groups"] == expected["param_groups"]
    assert "foreach" not in saved["param_groups"][0]
    assert {k: sorted(v) for k, v in saved["state"].items()} == {k: sorted(v) for k, v in expected["state"].items()}
    assert sorted(saved["state"]) == list(range(7))


def test_a_resnet18_step_dispatches_at_most_a_fifth_of_the_loops_ops():
    lars_ops = load("lars_ops")
    parameters = list(create_backbone("resnet18").parameters())
    counts = {}
    for foreach in (False, True):
        optimizer = build_optimizer(parameters, name="lars", lr=0.3, weight_decay=1e-6)
        optimizer.foreach = foreach
        lars_ops.with_gradients(parameters, seed=0)
        optimizer.step()
        counter = lars_ops.OpCounter()
        with counter:
            optimizer.step()
        counts[foreach] = counter
    # the loop: ~23 ops per adapted weight, 6 per excluded 1-D parameter (20 + 40 of them)
    assert counts[False].total > 450
    assert counts[True].total * 5 <= counts[False].total
    assert counts[True].ops["_foreach_norm"] == 2 and "linalg_vector_norm" not in counts[True].ops
    # the one per-tensor CUDA op is the multiply by the 20 trust ratios
    assert counts[True].kernels_estimate * 5 <= counts[False].kernels_estimate


def clip_loop(parameters, max_norm):
    """``clip_gradients_per_parameter`` before it was fused (the per-parameter loop)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norms = torch._foreach_norm(grads)
    for grad, norm in zip(grads, norms, strict=True):
        grad.mul_((max_norm / (norm + CLIP_EPSILON)).clamp(max=1.0))
    return list(norms)


def test_fused_clipping_equals_the_loop_bit_for_bit():
    model = conv_model()
    model[3].double()
    for step in (1, 2):  # step 2: one all-zero gradient
        for name, parameter in model.named_parameters():
            parameter.grad = gradients_of(model, step)[name]
        model[0].bias.grad = None  # a parameter without gradient is skipped
        twin = copy.deepcopy(model)
        for ours, theirs in zip(model.parameters(), twin.parameters(), strict=True):
            theirs.grad = None if ours.grad is None else ours.grad.clone()
        norms = clip_gradients_per_parameter(model.parameters(), 0.05)
        expected = clip_loop(list(twin.parameters()), 0.05)
        assert len(norms) == len(expected) == 6
        for norm, reference in zip(norms, expected, strict=True):
            assert torch.equal(norm, reference)
        scaled = 0
        for ours, theirs, before in zip(model.parameters(), twin.parameters(), norms_before(step), strict=True):
            assert (ours.grad is None) == (theirs.grad is None)
            if ours.grad is not None:
                assert torch.equal(ours.grad, theirs.grad)
                scaled += bool(before > 0.05)
                if before > 0.05:  # scaled down to the threshold
                    torch.testing.assert_close(ours.grad.norm().double(), torch.tensor(0.05, dtype=torch.float64),
                                               rtol=1e-5, atol=0)
        assert scaled >= 2


def norms_before(step: int) -> list[float]:
    model = conv_model()
    model[3].double()
    gradients = gradients_of(model, step)
    return [float("nan") if name == "0.bias" else float(gradients[name].norm())
            for name, _ in model.named_parameters()]
