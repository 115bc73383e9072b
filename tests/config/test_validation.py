"""Invalid settings raise ValueError naming the setting, the value and what is allowed
(src/resmo/validation.py, src/resmo/registry.py and every place that uses them)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from resmo import EMATeacher, ResMoSettings, create_backbone, create_method, method_names
from resmo.losses import DinoCenter, MoCoQueue
from resmo.losses import residual_momentum_loss as resmo_loss
from resmo.methods import method_options
from resmo.nn import build_mlp
from resmo.registry import Registry
from resmo.validation import (
    check_choice,
    check_non_negative,
    check_non_negative_int,
    check_positive,
    check_positive_int,
    check_unit_interval,
)

NUMBER_GT_0 = "allowed values: a number > 0"
NUMBER_GE_0 = "allowed values: a number >= 0"
UNIT = "allowed values: a number in [0, 1]"


def _raises(call, *fragments: str) -> str:
    """Run ``call``; it must raise ValueError whose message contains every fragment."""
    with pytest.raises(ValueError) as error:
        call()
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def _backbone():
    return create_backbone("resnet_small", width=4)


# ---------------------------------------------------------------------------------------
# the checks themselves
# ---------------------------------------------------------------------------------------
def test_check_choice():
    assert check_choice("colour", "red", ["red", "blue"]) == "red"
    _raises(lambda: check_choice("colour", "green", ["red", "blue"]),
            "colour='green' is not valid", "allowed values: blue, red")


@pytest.mark.parametrize("good", [0, 0.0, 2, 1e9])
def test_check_non_negative_accepts(good):
    assert check_non_negative("w", good) == float(good)


@pytest.mark.parametrize("bad", [-1e-9, -3, math.nan, math.inf, True, "1", None])
def test_check_non_negative_rejects(bad):
    _raises(lambda: check_non_negative("w", bad), f"w={bad!r}", NUMBER_GE_0)


@pytest.mark.parametrize("bad", [0, 0.0, -1, math.nan, math.inf, False, "0.1"])
def test_check_positive_rejects(bad):
    _raises(lambda: check_positive("t", bad), f"t={bad!r}", NUMBER_GT_0)
    assert check_positive("t", 1e-6) == 1e-6


@pytest.mark.parametrize("bad", [-0.01, 1.0001, 1.5, math.nan, math.inf, True])
def test_check_unit_interval_rejects(bad):
    _raises(lambda: check_unit_interval("m", bad), f"m={bad!r}", UNIT)


@pytest.mark.parametrize("good", [0, 0.0, 0.5, 1, 1.0])
def test_check_unit_interval_accepts(good):
    assert check_unit_interval("m", good) == float(good)


def test_integer_checks():
    assert check_positive_int("n", 1) == 1 and check_non_negative_int("n", 0) == 0
    for bad in (0, -1, 1.0, True, "2"):
        _raises(lambda bad=bad: check_positive_int("n", bad), f"n={bad!r}", "an integer >= 1")
    for bad in (-1, 0.0, False):
        _raises(lambda bad=bad: check_non_negative_int("n", bad), f"n={bad!r}", "an integer >= 0")


def test_registry_errors():
    registry: Registry[int] = Registry("widget")
    registry.register("b")(lambda: 2)
    registry.register("a")(lambda: 1)
    assert registry.names() == ["a", "b"] and "a" in registry and registry.get("b")() == 2
    _raises(lambda: registry.get("c"), "widget='c' is not valid", "allowed values: a, b")
    _raises(lambda: registry.register("a")(lambda: 3), "widget 'a' is already registered")


# ---------------------------------------------------------------------------------------
# registries: methods, backbones, options
# ---------------------------------------------------------------------------------------
def test_unknown_method():
    message = _raises(lambda: create_method("simclr", _backbone()), "method='simclr'", "allowed values:")
    for name in method_names():
        assert name in message


def test_unknown_backbone():
    _raises(lambda: create_backbone("alexnet"), "backbone='alexnet'", "allowed values: resnet18")


@pytest.mark.parametrize("name", method_names())
def test_unknown_method_option(name, make_method):
    message = _raises(
        lambda: make_method(name, hidden_dims=32),
        f"unknown key 'method_options.{name}.hidden_dims' (did you mean method_options.{name}.hidden_dim?)",
        f"valid keys in 'method_options.{name}':",
    )
    for option in method_options(name):
        assert option in message


# ---------------------------------------------------------------------------------------
# ResMo settings
# ---------------------------------------------------------------------------------------
def test_resmo_level_unknown(make_method):
    _raises(lambda: ResMoSettings(level="logits"), "resmo.level='logits'",
            "allowed values: features, output, projection")
    _raises(lambda: make_method("byol", resmo={"level": "head"}), "resmo.level='head'")


def test_resmo_distance_unknown():
    allowed = "allowed values: cosine, kd, mse"
    _raises(lambda: ResMoSettings(distance="l1"), "resmo.distance='l1'", allowed)
    x = [torch.randn(2, 3)]
    _raises(lambda: resmo_loss(x, teacher=x, distance="l1"), "resmo.distance='l1'", allowed)


@pytest.mark.parametrize("weight", [-0.5, -1, math.nan])
def test_resmo_weight_invalid(weight):
    _raises(lambda: ResMoSettings(weight=weight), f"resmo.weight={float(weight)!r}", NUMBER_GE_0)


def test_resmo_weight_not_finite():
    _raises(lambda: ResMoSettings(weight=math.inf), "'resmo.weight' expects a finite number, got inf")


def test_resmo_weight_zero_is_valid():
    assert not ResMoSettings(weight=0).enabled


def test_resmo_warmup_epochs_invalid():
    _raises(lambda: ResMoSettings(warmup_epochs=-1), "resmo.warmup_epochs=-1.0", NUMBER_GE_0)
    _raises(lambda: ResMoSettings(warmup_step=2), "unknown key 'resmo.warmup_step' (did you mean resmo.warmup_epochs?)")


# ---------------------------------------------------------------------------------------
# temperatures
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("temperature", [0, 0.0, -0.1])
def test_temperature_must_be_positive(temperature, make_method):
    # checked where the setting is read; the losses (info_nce, dino_cross_entropy,
    # residual_momentum_loss) use the checked value at every step without checking it again
    value = f"={temperature!r}"
    for role in ("student_temperature", "teacher_temperature"):
        _raises(lambda role=role: make_method("dino", **{role: temperature}),
                role + value, NUMBER_GT_0)
    _raises(lambda: ResMoSettings(temperature=temperature), "resmo.temperature" + value, NUMBER_GT_0)
    for name in ("mocov2", "mocov3"):
        _raises(lambda name=name: make_method(name, temperature=temperature),
                "temperature" + value, NUMBER_GT_0)


# ---------------------------------------------------------------------------------------
# momentum and other settings
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("momentum", [1.5, -0.1, math.nan])
def test_momentum_outside_unit_interval(momentum, make_method):
    # checked where the setting is read; the schedule and EMATeacher.update trust it per step
    _raises(lambda: make_method("byol", momentum=momentum),
            f"momentum={momentum!r}", UNIT)
    _raises(lambda: make_method("mocov3", final_momentum=momentum),
            f"final_momentum={momentum!r}", UNIT)
    _raises(lambda: DinoCenter(4, momentum=momentum), f"center_momentum={momentum!r}", UNIT)


def test_other_settings(make_method):
    _raises(lambda: EMATeacher(nn.Linear(2, 2), buffer_policy="average"),
            "buffer_policy='average'", "allowed values: copy, ema, own")
    _raises(lambda: make_method("byol", buffer_policy="x"), "buffer_policy='x'")
    _raises(lambda: make_method("byol", num_teacher_views=0), "num_teacher_views=0")
    _raises(lambda: MoCoQueue(4, 0), "queue_size=0", "an integer >= 1")
    _raises(lambda: make_method("mocov2", queue_size=-5), "queue_size=-5")
    _raises(lambda: make_method("dino", num_prototypes=0), "num_prototypes=0")
    _raises(lambda: build_mlp(4, 8, 2, activation="tanh"), "activation='tanh'",
            "allowed values: gelu, relu")
    _raises(lambda: build_mlp(4, 8, 2, layers=0), "layers=0")
    _raises(lambda: create_backbone("resnet_small", width=0), "width=0")
