"""optimizer.lr_scaling: the learning rate the optimizer and its schedule use."""

from __future__ import annotations

import math

import pytest

from resmo.config import load_config
from resmo.config.schema import OptimizerSection
from resmo.optim.optimizers import effective_lr, lr_note
from resmo.recipes import recipe_names
from resmo.train.pretrain import prepare_run
from tests.pretrain_helpers import tiny_overrides


def test_effective_lr_follows_the_global_batch():
    linear = OptimizerSection(lr=0.3, lr_scaling="linear", lr_reference_batch=256)
    assert effective_lr(linear, 256) == 0.3
    assert effective_lr(linear, 1024) == pytest.approx(1.2, rel=1e-15)  # 4 GPUs x 256 (solo-learn: x4)
    assert effective_lr(linear, 64) == pytest.approx(0.075, rel=1e-15)
    root = OptimizerSection(lr=0.3, lr_scaling="sqrt", lr_reference_batch=256)
    assert effective_lr(root, 1024) == pytest.approx(0.6, rel=1e-15)
    assert effective_lr(OptimizerSection(lr=0.3), 1024) == 0.3  # none: as given


def test_the_note_says_the_global_batch_and_the_learning_rate():
    linear = OptimizerSection(lr=0.3, lr_scaling="linear", lr_reference_batch=256)
    assert lr_note(linear, 1024, 4) == ("global batch 1024 (256 per process x 4 processes); learning rate 1.2 = "
                                        "optimizer.lr 0.3 x 1024/256 (optimizer.lr_scaling=linear)")
    assert lr_note(OptimizerSection(), 64, 1) == ("global batch 64 (64 per process x 1 process); learning rate "
                                                  "0.02 as given (optimizer.lr_scaling=none: not scaled with the batch)")


def test_the_quickstart_does_not_scale_and_the_solo_learn_recipes_scale_linearly_by_256():
    assert load_config(None, []).optimizer.lr_scaling == "none"
    for name in recipe_names():
        optimizer = load_config(name, []).optimizer
        expected = ("none", 256) if name == "coco/densecl" else ("linear", 256)
        assert (optimizer.lr_scaling, optimizer.lr_reference_batch) == expected, name


def test_optimizer_and_schedule_use_the_effective_lr(tmp_path):
    config = load_config(None, [*tiny_overrides(tmp_path / "run"), "train.accelerator=cpu",
                                "optimizer.lr=0.3", "optimizer.lr_scaling=sqrt", "optimizer.lr_reference_batch=8"])
    run = prepare_run(config)
    expected = 0.3 * math.sqrt(32 / 8)
    assert run.plan.global_batch == 32 and run.plan.effective_lr == pytest.approx(expected, rel=1e-15)
    groups = run.loop.optimizer.param_groups
    assert [group["initial_lr"] for group in groups] == [run.plan.effective_lr] * len(groups)
    assert "global batch 32 (32 per process x 1 process); learning rate 0.6 = optimizer.lr 0.3 x sqrt(32/8)" \
        in run.notes[-1]
