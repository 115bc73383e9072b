"""The teacher-leads search builds valid ``resmo pretrain`` commands for every schedule."""

from __future__ import annotations

import pytest

from benchmarks.teacher_leads import SCHEDULES, pretrain_arguments
from resmo.cli import _flag_settings, build_parser
from resmo.config.loader import load_config
from resmo.train.plan import plan_run


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_plans_a_plain_run_on_the_held_out_split(name, tmp_path):
    data = tmp_path / "cifar"
    for split in ("train",):
        for label in ("a", "b"):
            (data / split / label).mkdir(parents=True)
    args = build_parser().parse_args(pretrain_arguments(SCHEDULES[name], 3, data, tmp_path / "run"))
    config = load_config(args.config, list(args.overrides), settings=_flag_settings(args))
    plan = plan_run(config)
    schedule = SCHEDULES[name]
    assert plan.config.resmo.weight == 0 and plan.config.seed == 3
    assert plan.config.data.val_fraction == 0.1
    assert plan.config.monitor.knn_every_epochs == schedule.knn_every_epochs
    assert (plan.config.train.epochs, plan.config.train.batch_size) == (schedule.epochs, schedule.batch_size)
    options = plan.config.method_options["mocov3"]
    assert (options["momentum"], options["final_momentum"]) == (schedule.momentum, schedule.final_momentum)
    assert (plan.config.optimizer.min_lr == plan.config.optimizer.lr) == schedule.constant_lr
